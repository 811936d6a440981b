//! The background refresher: refreshes a pool every interval on its own thread.

use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind};
use crate::pool::Pool;
use crate::source::{CancelFlag, Context};
use crate::sync::{Arc, Condvar, Mutex, thread};

/// Refreshes a pool on a background thread, first at once and then every `interval`.
///
/// Dropping it (or calling [`Refresher::stop`]) cancels a refresh in progress at its next
/// source boundary, wakes the thread and joins it. Refresh errors are logged by the pool.
///
/// ```
/// use std::time::Duration;
/// use leastconn::{Pool, Refresher, Static};
/// let pool = Pool::builder(Static::from_addresses(["10.0.0.1:80"])).build()?;
/// let refresher = Refresher::spawn(&pool, Duration::from_secs(30))?;
/// drop(refresher); // stops and joins
/// # Ok::<(), leastconn::Error>(())
/// ```
pub struct Refresher {
    signal: Arc<Signal>,
    thread: Option<thread::JoinHandle<()>>,
}

struct Signal {
    stopped: Mutex<bool>,
    wake: Condvar,
    cancel: CancelFlag,
}

impl Refresher {
    /// Starts refreshing `pool` every `interval` (at least 1 ms).
    pub fn spawn(pool: &Pool, interval: Duration) -> Result<Refresher, Error> {
        if interval < Duration::from_millis(1) {
            return Err(Error::new(ErrorKind::InvalidLimit, "refresh interval must be at least 1 ms"));
        }
        let signal = Arc::new(Signal { stopped: Mutex::new(false), wake: Condvar::new(), cancel: CancelFlag::new() });
        let pool = pool.clone();
        let sig = Arc::clone(&signal);
        let thread = thread::Builder::new()
            .name("leastconn-refresh".into())
            .spawn(move || run(&pool, &sig, interval))
            .map_err(|e| Error::new(ErrorKind::Os, format!("cannot spawn the refresher thread: {e}")))?;
        Ok(Refresher { signal, thread: Some(thread) })
    }

    /// Stops the refresher and waits for its thread to end.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.signal.cancel.cancel();
        *self.signal.stopped.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = true;
        self.signal.wake.notify_all();
        if let Some(t) = self.thread.take() {
            // A source that drops its own refresher would otherwise join itself.
            if t.thread().id() != thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

impl Drop for Refresher {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn run(pool: &Pool, signal: &Signal, interval: Duration) {
    loop {
        if *signal.stopped.lock().unwrap_or_else(std::sync::PoisonError::into_inner) {
            return;
        }
        // Skips the round if another refresh is in progress (see `refresh_unless_busy`).
        let _ = pool.refresh_unless_busy(&Context::with_cancel(&signal.cancel));
        let deadline = Instant::now() + interval;
        let mut stopped = signal.stopped.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while !*stopped {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            stopped = match signal.wake.wait_timeout(stopped, left) {
                Ok((g, _)) => g,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}
