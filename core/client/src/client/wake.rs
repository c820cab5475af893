//! A signal that cuts the push loop's waits short. When the platform learns that the network is
//! back (a browser's `online` event, a phone's connectivity callback), the client reconnects and
//! retries its outbox at once instead of after its backoff, which may have grown to 30 seconds
//! while it was offline.

use core::future::poll_fn;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::Poll;

use futures_util::task::AtomicWaker;

/// One flag and the waker of the one task waiting on it (the push loop).
#[derive(Default)]
pub(crate) struct WakeSignal {
    woken: AtomicBool,
    waiter: AtomicWaker,
}

impl WakeSignal {
    /// Wakes the current or next [`WakeSignal::wait`].
    pub fn wake(&self) {
        self.woken.store(true, Ordering::Release);
        self.waiter.wake();
    }

    /// Resolves at the next wake, or at once if one came since the last wait. Several wakes in
    /// a row count as one. One task waits at a time.
    pub async fn wait(&self) {
        poll_fn(|cx| {
            if self.woken.swap(false, Ordering::AcqRel) {
                return Poll::Ready(());
            }
            self.waiter.register(cx.waker());
            // A wake between the first check and the registration found no waker to wake.
            if self.woken.swap(false, Ordering::AcqRel) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::WakeSignal;
    use futures_util::FutureExt;

    #[test]
    fn a_wake_resolves_one_wait_and_a_burst_counts_once() {
        let signal = WakeSignal::default();
        assert!(signal.wait().now_or_never().is_none(), "no wake yet");
        signal.wake();
        signal.wake();
        signal.wake();
        assert!(signal.wait().now_or_never().is_some(), "woken");
        assert!(
            signal.wait().now_or_never().is_none(),
            "the burst was one wake"
        );
    }
}
