//! A grace period for any source: on failure, keep its last good result for a while.

use std::sync::Mutex;
use std::time::Duration;

use super::{Context, Source, fetch_checked};
use crate::clock::{Clock, duration_ns};
use crate::error::{ErrorKind, SourceError};
use crate::upstream::Upstream;

/// Wraps a source so that when it fails, its last good result is served for up to `period`
/// from the first failure (Caddy has this for `srv` only; here any source can have it).
///
/// After the grace period the failure is reported as usual (so `multi` logs and skips the
/// source) and the old result is let go. A success, even an empty one, replaces the kept
/// result and ends the failure episode.
pub struct Grace<S> {
    inner: S,
    period_ns: u64,
    clock: Clock,
    state: Mutex<GraceState>,
}

#[derive(Default)]
struct GraceState {
    last_good: Option<Vec<Upstream>>,
    failing_since: Option<u64>,
}

impl<S: Source> Grace<S> {
    /// Wraps `inner` with a grace period of `period`, timed by the system clock.
    pub fn new(inner: S, period: Duration) -> Self {
        Self::with_clock(inner, period, Clock::System)
    }

    /// As [`Grace::new`], timed by `clock`.
    pub fn with_clock(inner: S, period: Duration, clock: Clock) -> Self {
        Self { inner, period_ns: duration_ns(period), clock, state: Mutex::default() }
    }
}

impl<S: Source> Source for Grace<S> {
    fn fetch(&self, ctx: &Context<'_>, out: &mut Vec<Upstream>) -> Result<(), SourceError> {
        let mut fresh = Vec::new();
        let result = fetch_checked(&self.inner, ctx, &mut fresh);
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match result {
            Ok(()) => {
                out.extend_from_slice(&fresh);
                *state = GraceState { last_good: Some(fresh), failing_since: None };
                Ok(())
            }
            Err(e) if e.kind() == ErrorKind::Cancelled => Err(Box::new(super::Cancelled)),
            Err(e) => {
                let now = self.clock.now_ns();
                let since = *state.failing_since.get_or_insert(now);
                match &state.last_good {
                    Some(good) if now - since < self.period_ns => {
                        log::warn!(
                            "source failed ({}); serving its last good result ({} upstreams) within the grace period",
                            e.message(),
                            good.len()
                        );
                        out.extend_from_slice(good);
                        Ok(())
                    }
                    _ => {
                        state.last_good = None;
                        // The inner message alone: `multi` adds its own "failed:" context.
                        Err(e.message().into())
                    }
                }
            }
        }
    }
}
