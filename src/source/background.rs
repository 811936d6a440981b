//! The background watcher of the sources that follow a service (`docker`, `etcd`): one thread
//! per source and process, with its own current-thread tokio runtime, that keeps publishing
//! the latest list (or error); a fetch only copies what was published.
//!
//! * Started by the first fetch, which waits (at most `first_wait`, watching for
//!   cancellation) for the first outcome.
//! * Per process: after a `fork` (nginx's master builds, its workers fetch) the parent's
//!   watcher has no thread in the child, so the child's first fetch starts its own. The
//!   parent's record is forgotten, not dropped: nothing of the parent's runtime is touched.
//! * A task that panics (or ends by itself) publishes that as the source's error, and the
//!   next fetch starts a new one: a watcher that died never leaves the source failing for good.
//! * Dropping the source stops the task at its next await point and joins the thread, so no
//!   thread outlives the source. The runtime is shut down without waiting for blocking work
//!   (a name lookup still running on its blocking pool).

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::error::SourceError;
use crate::source::{Cancelled, Context};
use crate::upstream::Upstream;

/// What a watcher publishes: the upstreams, or why the service cannot be read now.
pub(crate) type Outcome = Result<Vec<Upstream>, String>;

/// The latest outcome of a watcher, `None` until the first.
pub(crate) struct Published {
    latest: Mutex<Option<Outcome>>,
    changed: Condvar,
    /// The task ended without being stopped (it panicked or returned): start a new one.
    ended: AtomicBool,
}

impl Published {
    /// Replaces the published outcome (and wakes a first fetch waiting for it).
    pub(crate) fn set(&self, outcome: Outcome) {
        *self.latest.lock().unwrap_or_else(PoisonError::into_inner) = Some(outcome);
        self.changed.notify_all();
    }

    /// The task ended by itself: have the next fetch start a new task, and publish `error` if
    /// there is one. The flag comes first, so a fetch that has seen the error starts a new
    /// task on its next call.
    fn end(&self, error: Option<String>) {
        // Release: the fetch that sees the flag joins this thread and starts another; the
        // mutex in `set` also orders the flag before the error for whoever reads the error.
        self.ended.store(true, Ordering::Release);
        if let Some(e) = error {
            self.set(Err(e));
        }
    }
}

/// A source's watcher: none until the first fetch, then this process's one.
pub(crate) struct Background {
    /// The thread's name (`leastconn-docker`).
    thread_name: &'static str,
    /// What is watched, for the error of a first fetch that got no outcome in time.
    what: String,
    running: Mutex<Option<Running>>,
}

/// A watcher thread of the process `pid`.
struct Running {
    pid: u32,
    published: Arc<Published>,
    stop: oneshot::Sender<()>,
    thread: JoinHandle<()>,
}

impl Background {
    pub(crate) fn new(thread_name: &'static str, what: String) -> Self {
        Self { thread_name, what, running: Mutex::new(None) }
    }

    /// Appends the latest published list, or returns the latest error. Without a watcher in
    /// this process, starts one running `task` and waits up to `first_wait` for its first
    /// outcome (seeing a cancellation of `ctx` within 50 ms).
    pub(crate) fn fetch<F, Fut>(
        &self,
        ctx: &Context<'_>,
        out: &mut Vec<Upstream>,
        first_wait: Duration,
        task: F,
    ) -> Result<(), SourceError>
    where
        F: FnOnce(Arc<Published>) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let published = self.published(task)?;
        let deadline = Instant::now() + first_wait;
        let mut latest = published.latest.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            match latest.as_ref() {
                Some(Ok(list)) => {
                    out.extend_from_slice(list);
                    return Ok(());
                }
                Some(Err(e)) => return Err(e.clone().into()),
                None => {}
            }
            if ctx.is_cancelled() {
                return Err(Box::new(Cancelled));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(format!("{}: no answer within {first_wait:?}", self.what).into());
            }
            // Woken by the first outcome; the slice bounds how late a cancellation is seen.
            let slice = (deadline - now).min(Duration::from_millis(50));
            latest = published.changed.wait_timeout(latest, slice).unwrap_or_else(PoisonError::into_inner).0;
        }
    }

    /// The published state of this process's watcher, starting it if there is none.
    fn published<F, Fut>(&self, task: F) -> Result<Arc<Published>, SourceError>
    where
        F: FnOnce(Arc<Published>) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let pid = std::process::id();
        if let Some(r) = running.as_ref().filter(|r| r.pid == pid) {
            // Acquire: pairs with the Release store of a thread that has finished its task.
            if !r.published.ended.load(Ordering::Acquire) {
                return Ok(Arc::clone(&r.published));
            }
            // Its thread has nothing left to run: join it, then start a new watcher.
            if let Some(dead) = running.take() {
                let _ = dead.thread.join();
            }
        }
        // A watcher of the parent process (before a fork) has no thread here: forget it
        // without signalling or joining.
        if let Some(stale) = running.take() {
            std::mem::forget(stale);
        }
        let fail = |e: std::io::Error| format!("cannot start the {} thread: {e}", self.thread_name);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_io().enable_time().build().map_err(fail)?;
        let published =
            Arc::new(Published { latest: Mutex::new(None), changed: Condvar::new(), ended: AtomicBool::new(false) });
        let (stop, stopped) = oneshot::channel::<()>();
        let shared = Arc::clone(&published);
        let watched = Arc::clone(&published);
        let what = self.what.clone();
        let thread = std::thread::Builder::new()
            .name(self.thread_name.to_owned())
            .spawn(move || {
                let run = catch_unwind(AssertUnwindSafe(|| {
                    runtime.block_on(async move {
                        tokio::select! {
                            _ = stopped => true,
                            () = task(shared) => false,
                        }
                    })
                }));
                match run {
                    Ok(true) => {}
                    Ok(false) => watched.end(None),
                    Err(panic) => watched
                        .end(Some(format!("{what}: the watcher panicked: {}", crate::source::panic_message(&*panic)))),
                }
                runtime.shutdown_background();
            })
            .map_err(fail)?;
        *running = Some(Running { pid, published: Arc::clone(&published), stop, thread });
        Ok(published)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let Some(running) = self.running.get_mut().unwrap_or_else(PoisonError::into_inner).take() else { return };
        if running.pid != std::process::id() {
            std::mem::forget(running);
            return;
        }
        // Sending (or the sender's drop) ends the task at its next await point.
        let _ = running.stop.send(());
        let _ = running.thread.join();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::source::CancelFlag;

    const WAIT: Duration = Duration::from_secs(5);

    /// Sets its flag when dropped: when the task's future is dropped, at the latest.
    struct SetOnDrop(Arc<AtomicBool>);

    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    fn fetch(bg: &Background, ctx: &Context<'_>, outcome: Outcome) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        bg.fetch(ctx, &mut out, WAIT, move |published| async move {
            published.set(outcome);
            std::future::pending::<()>().await;
        })
        .map_err(|e| e.to_string())?;
        Ok(out.into_iter().map(|u| u.address).collect())
    }

    #[test]
    fn the_first_fetch_waits_for_the_first_outcome_then_later_fetches_copy_it() {
        let bg = Background::new("leastconn-test", "test".to_owned());
        let list = vec![Upstream::new("10.0.0.1:80")];
        assert_eq!(fetch(&bg, &Context::new(), Ok(list)).unwrap(), ["10.0.0.1:80"]);
        // The watcher is running: a second task is not started, its outcome not seen.
        assert_eq!(fetch(&bg, &Context::new(), Err("unused".to_owned())).unwrap(), ["10.0.0.1:80"]);
    }

    #[test]
    fn a_published_error_is_the_fetch_error() {
        let bg = Background::new("leastconn-test", "test".to_owned());
        assert_eq!(fetch(&bg, &Context::new(), Err("daemon down".to_owned())).unwrap_err(), "daemon down");
    }

    #[test]
    fn no_outcome_in_time_is_an_error_and_a_cancellation_ends_the_wait() {
        let bg = Background::new("leastconn-test", "test service".to_owned());
        let silent = |_| std::future::pending::<()>();
        let mut out = Vec::new();
        let err = bg.fetch(&Context::new(), &mut out, Duration::from_millis(100), silent).unwrap_err();
        assert_eq!(err.to_string(), "test service: no answer within 100ms");
        let flag = CancelFlag::new();
        flag.cancel();
        let started = Instant::now();
        let err = bg.fetch(&Context::with_cancel(&flag), &mut out, WAIT, silent).unwrap_err();
        assert!(err.is::<Cancelled>(), "{err}");
        assert!(started.elapsed() < WAIT, "the cancelled wait ended early");
        assert!(out.is_empty());
    }

    #[test]
    fn drop_stops_the_task_and_joins_its_thread() {
        let bg = Background::new("leastconn-test", "test".to_owned());
        let dropped = Arc::new(AtomicBool::new(false));
        let guard = SetOnDrop(Arc::clone(&dropped));
        let mut out = Vec::new();
        bg.fetch(&Context::new(), &mut out, WAIT, move |published| async move {
            let _guard = guard;
            published.set(Ok(Vec::new()));
            // A task that never ends by itself, waiting on the runtime's timer.
            loop {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
        })
        .unwrap();
        drop(bg);
        // The join returned, so the task's future (and its guard) is gone.
        assert!(dropped.load(Ordering::SeqCst));
    }

    #[test]
    fn a_panicking_watcher_is_the_fetch_error_and_the_next_fetch_starts_a_new_one() {
        let bg = Background::new("leastconn-test", "test service".to_owned());
        let mut out = Vec::new();
        let err = bg
            .fetch(&Context::new(), &mut out, WAIT, |_: Arc<Published>| async move { panic!("boom") })
            .unwrap_err()
            .to_string();
        assert_eq!(err, "test service: the watcher panicked: boom");
        // The watcher that died is replaced: this fetch's task answers.
        assert_eq!(fetch(&bg, &Context::new(), Ok(vec![Upstream::new("10.0.0.3:80")])).unwrap(), ["10.0.0.3:80"]);
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "forgets the recorded watcher on purpose (as after a fork), which Miri reports as a leak"
    )]
    fn a_watcher_of_another_process_is_replaced_not_joined() {
        let bg = Background::new("leastconn-test", "test".to_owned());
        // A task that ends by itself, so the forgotten thread does not outlive the test.
        let once = |list: Vec<Upstream>| move |published: Arc<Published>| async move { published.set(Ok(list)) };
        let mut out = Vec::new();
        bg.fetch(&Context::new(), &mut out, WAIT, once(vec![Upstream::new("10.0.0.1:80")])).unwrap();
        // As after a fork: the recorded watcher belongs to the parent.
        bg.running.lock().unwrap().as_mut().unwrap().pid ^= 1;
        out.clear();
        bg.fetch(&Context::new(), &mut out, WAIT, once(vec![Upstream::new("10.0.0.2:80")])).unwrap();
        assert_eq!(out, [Upstream::new("10.0.0.2:80")], "the child's own watcher answers");
        assert_eq!(bg.running.lock().unwrap().as_ref().unwrap().pid, std::process::id());
    }
}
