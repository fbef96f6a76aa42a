//! The runtime a phone's samod repo runs its tasks on: the current tokio
//! runtime, behind a gate that lets a dialer be registered while none of those
//! tasks is being polled.
//!
//! Why: samod 0.16's `Repo::dial` hands the hub's first dial request to the
//! repo's IO loop *before* it records the dialer the IO loop then looks up. On a
//! multi-threaded runtime an idle worker may poll the IO loop in between: the
//! request fails ("no dialer registered", logged as a `dial failed` warning)
//! and the first connection waits for the first backoff delay. Every phone's
//! first connection ran that race, and `fieldkit sync` printed the warning on
//! syncs that then succeeded. [`RepoRuntime::exclusively`] closes the gate
//! around `dial`, which makes the registration atomic for the repo's tasks; a
//! task polled meanwhile waits the microseconds `dial` takes. Drop this module
//! once samod registers a dialer before dispatching its first dial.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, RwLock},
    task::{Context, Poll},
    time::Duration,
};

use samod::{runtime::RuntimeHandle, storage::InMemoryStorage, Repo, RepoBuilder, ShareConfig};
use tokio::runtime::Handle;

/// Cheap to clone: clones share the gate.
#[derive(Clone)]
pub(crate) struct RepoRuntime {
    handle: Handle,
    /// Read-held for the duration of each poll of a repo task; write-held by
    /// [`RepoRuntime::exclusively`]. A std lock, not tokio's: polls are
    /// synchronous, and the write side is held only around a synchronous call.
    gate: Arc<RwLock<()>>,
}

impl RepoRuntime {
    /// On the current tokio runtime; panics outside one, as
    /// `Repo::build_tokio` does.
    pub(crate) fn current() -> RepoRuntime {
        RepoRuntime {
            handle: Handle::current(),
            gate: Arc::default(),
        }
    }

    /// A repo whose tasks run on this runtime.
    pub(crate) fn repo_builder(&self) -> RepoBuilder<InMemoryStorage, RepoRuntime, ShareConfig> {
        Repo::builder(self.clone())
    }

    /// Runs `register` while no task of the repo is being polled (waiting for
    /// polls under way to return). Never call it from inside such a task.
    pub(crate) fn exclusively<T>(&self, register: impl FnOnce() -> T) -> T {
        let _closed = self.gate.write().unwrap_or_else(|p| p.into_inner());
        register()
    }
}

impl RuntimeHandle for RepoRuntime {
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send + 'static>>) {
        self.handle.spawn(Gated {
            gate: self.gate.clone(),
            future,
        });
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// A repo task, polled only while the gate is open.
struct Gated {
    gate: Arc<RwLock<()>>,
    future: Pin<Box<dyn Future<Output = ()> + Send + 'static>>,
}

impl Future for Gated {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let gate = self.gate.clone();
        let _open = gate.read().unwrap_or_else(|p| p.into_inner());
        self.future.as_mut().poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_task_woken_during_exclusively_runs_only_after_it() {
        let runtime = RepoRuntime::current();
        let registered = Arc::new(AtomicBool::new(false));
        let (wake, woken) = tokio::sync::oneshot::channel::<()>();
        let (report, seen) = tokio::sync::oneshot::channel::<bool>();
        let observed = registered.clone();
        runtime.spawn(Box::pin(async move {
            let _ = woken.await;
            let _ = report.send(observed.load(Ordering::SeqCst));
        }));
        runtime.exclusively(|| {
            let _ = wake.send(());
            // Long enough for an idle worker to poll the task, were it allowed.
            std::thread::sleep(Duration::from_millis(50));
            registered.store(true, Ordering::SeqCst);
        });
        assert!(
            seen.await.expect("the task reports"),
            "the task ran before the registration finished"
        );
    }
}
