//! A signal that cuts the push loop's waits short. When the platform learns that the network is
//! back (a browser's `online` event, a phone's connectivity callback), the client reconnects and
//! retries its outbox at once instead of after its backoff, which may have grown to 30 seconds
//! while it was offline.

use futures_channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};
use futures_util::StreamExt;
use futures_util::lock::Mutex;

pub(crate) struct WakeSignal {
    sender: UnboundedSender<()>,
    receiver: Mutex<UnboundedReceiver<()>>,
}

impl Default for WakeSignal {
    fn default() -> Self {
        let (sender, receiver) = unbounded();
        WakeSignal {
            sender,
            receiver: Mutex::new(receiver),
        }
    }
}

impl WakeSignal {
    /// Wakes the current or next [`WakeSignal::wait`].
    pub fn wake(&self) {
        // The receiver lives as long as the sender (both are ours): this cannot fail.
        let _ = self.sender.unbounded_send(());
    }

    /// Resolves at the next wake, or at once if one came since the last wait. Several wakes in
    /// a row count as one.
    pub async fn wait(&self) {
        let mut receiver = self.receiver.lock().await;
        if receiver.next().await.is_some() {
            while receiver.try_recv().is_ok() {}
        }
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
