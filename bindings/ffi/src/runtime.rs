//! The crate's one tokio runtime, and the panic boundary.
//!
//! The client's futures need tokio (SQLite through sqlx, reqwest, the WebSocket), but the
//! foreign side polls futures on its own executor (Kotlin coroutines, asyncio, Swift tasks).
//! So every async call is spawned onto this runtime and the foreign side awaits the task's
//! handle: the work always runs inside tokio, whichever thread polls the handle.
//!
//! Cancelling a call on the foreign side (a cancelled coroutine or task) stops waiting for it;
//! the work itself runs to completion on the runtime, so a send is either queued or not, never
//! half done.
//!
//! A panic never crosses the boundary: spawned tasks catch theirs, synchronous calls go through
//! [`guard`], and both become `SottoError::Internal` with code `panic`.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;

use futures_util::FutureExt;
use tokio::runtime::{Builder, Runtime};
use tokio::task::JoinHandle;

use crate::error::{CANCELLED, PANIC, RUNTIME, SottoError};

/// Worker threads: the work is I/O and short crypto, and phones have few cores to spare.
const WORKER_THREADS: usize = 2;

static RUNTIME_CELL: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// The runtime, started on first use.
pub(crate) fn runtime() -> Result<&'static Runtime, SottoError> {
    RUNTIME_CELL
        .get_or_init(|| {
            Builder::new_multi_thread()
                .worker_threads(WORKER_THREADS)
                .thread_name("sotto-ffi")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| SottoError::internal(RUNTIME, e))
}

fn panicked() -> SottoError {
    SottoError::internal(
        PANIC,
        "a panic in the Sotto library was caught at the boundary",
    )
}

/// Runs `work` on the runtime and waits for it; a panic in it becomes an error.
pub(crate) async fn run<T, E, F>(work: F) -> Result<T, SottoError>
where
    F: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: Into<SottoError> + Send + 'static,
{
    let task = runtime()?.spawn(AssertUnwindSafe(work).catch_unwind());
    match task.await {
        Ok(Ok(result)) => result.map_err(Into::into),
        Ok(Err(_panic)) => Err(panicked()),
        Err(e) if e.is_panic() => Err(panicked()),
        Err(_) => Err(SottoError::internal(
            CANCELLED,
            "the task ended before finishing",
        )),
    }
}

/// Starts `work` on the runtime without waiting for it.
pub(crate) fn spawn<F>(work: F) -> Result<JoinHandle<()>, SottoError>
where
    F: Future<Output = ()> + Send + 'static,
{
    Ok(runtime()?.spawn(async move {
        // A panic in a background task ends the task only; nothing else to report it to.
        let _ = AssertUnwindSafe(work).catch_unwind().await;
    }))
}

/// Runs a synchronous call; a panic in it becomes an error.
pub(crate) fn guard<T>(work: impl FnOnce() -> Result<T, SottoError>) -> Result<T, SottoError> {
    catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|_| Err(panicked()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: Future>(f: F) -> F::Output {
        futures_executor::block_on(f)
    }

    #[test]
    fn panics_become_internal_errors() {
        let e = guard::<()>(|| panic!("boom")).unwrap_err();
        assert_eq!(e.code(), "panic");
        assert!(matches!(e, SottoError::Internal { .. }));
        assert_eq!(guard(|| Ok(7)).unwrap(), 7);

        let e = block_on(run::<(), SottoError, _>(async { panic!("boom") })).unwrap_err();
        assert_eq!(e.code(), "panic");
        let ok = block_on(run::<_, SottoError, _>(async { Ok(3) })).unwrap();
        assert_eq!(ok, 3);
    }

    #[test]
    fn work_runs_inside_the_runtime_whoever_polls() {
        // Polled by a plain executor (as foreign executors do), the work still sees tokio.
        let inside = block_on(run::<_, SottoError, _>(async {
            Ok(tokio::runtime::Handle::try_current().is_ok())
        }))
        .unwrap();
        assert!(inside);
        let slept = block_on(run::<_, SottoError, _>(async {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            Ok(true)
        }));
        assert_eq!(slept, Ok(true));
    }
}
