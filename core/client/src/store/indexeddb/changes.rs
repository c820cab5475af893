//! How followers learn that the writer committed: a `BroadcastChannel` per database.
//!
//! After every commit the writer posts an empty message on `sotto-store:<database>`; every other
//! handle on the database, in this tab or another, counts it and wakes whoever waits. The
//! message carries nothing (no ids, no versions): a follower re-reads what it shows. A channel
//! never delivers to the object that posted, so a handle is not woken by its own commits.

use core::cell::RefCell;
use core::task::{Poll, Waker};
use std::rc::Rc;

use wasm_bindgen::prelude::*;
use web_sys::BroadcastChannel;

use super::request::js_error;
use crate::Result;

#[derive(Default)]
struct Seen {
    /// Commits announced by others since this handle opened.
    count: u64,
    waiting: Vec<Waker>,
}

pub(super) struct ChangeFeed {
    channel: BroadcastChannel,
    seen: Rc<RefCell<Seen>>,
    _on_message: Closure<dyn FnMut(JsValue)>,
}

impl Drop for ChangeFeed {
    fn drop(&mut self) {
        self.channel.set_onmessage(None);
        self.channel.close();
    }
}

impl ChangeFeed {
    pub(super) fn open(database: &str) -> Result<Self> {
        let channel =
            BroadcastChannel::new(&format!("sotto-store:{database}")).map_err(js_error)?;
        let seen = Rc::new(RefCell::new(Seen::default()));
        let on_message = {
            let seen = Rc::clone(&seen);
            Closure::<dyn FnMut(JsValue)>::new(move |_| {
                let mut seen = seen.borrow_mut();
                seen.count = seen.count.wrapping_add(1);
                for waker in seen.waiting.drain(..) {
                    waker.wake();
                }
            })
        };
        channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        Ok(ChangeFeed {
            channel,
            seen,
            _on_message: on_message,
        })
    }

    /// Tells the other handles that a commit landed. Best effort: a follower that misses it
    /// re-reads on its next change or when it takes over.
    pub(super) fn announce(&self) {
        let _ = self.channel.post_message(&JsValue::NULL);
    }

    /// Waits until another handle announces a commit made after this call.
    pub(super) async fn next(&self) {
        let start = self.seen.borrow().count;
        core::future::poll_fn(|cx| {
            let mut seen = self.seen.borrow_mut();
            if seen.count != start {
                return Poll::Ready(());
            }
            if !seen.waiting.iter().any(|w| w.will_wake(cx.waker())) {
                seen.waiting.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await;
    }
}
