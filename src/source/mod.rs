//! Where upstream lists come from.
//!
//! A [`Source`] appends the upstreams it currently knows to a list. Sources compose:
//! [`Multi`] asks several in order and appends their results (Caddy's `multi`), and
//! [`Grace`] keeps serving a source's last good result for a while when it fails. Sources run
//! only on refresh (on demand or in the background refresher), never on the pick path.
//!
//! Every source result passes through one checkpoint, [`fetch_checked`], which catches
//! panics and validates every upstream, so that a source that panics or returns garbage
//! becomes a logged, skipped source error instead of a crash or a corrupt list.

#[cfg(not(loom))]
mod background;
mod closure;
// Not in loom builds, which leave out tokio (see Cargo.toml); no protocol of the pick path
// lives there.
#[cfg(not(loom))]
pub mod dns;
#[cfg(not(loom))]
pub mod docker;
#[cfg(not(loom))]
pub mod etcd;
mod grace;
mod multi;
mod static_list;

use std::panic::{AssertUnwindSafe, catch_unwind};

pub use closure::{FromFn, from_fn};
pub use grace::Grace;
pub use multi::Multi;
pub use static_list::Static;

use crate::error::{Error, ErrorKind, SourceError};
use crate::sync::{AtomicBool, Ordering};
use crate::upstream::Upstream;

/// A provider of upstreams.
///
/// `fetch` appends this source's current upstreams to `out`, in the order that matters for
/// the `first` policy, and returns `Err` if it cannot say what they are. Implementations
/// must be thread-safe: the background refresher calls them from its own thread.
///
/// `fetch` runs while the pool's refresh lock is held: it may read the pool (select, stats,
/// `set_down`), but a refresh of the same pool from inside it returns
/// [`ErrorKind::InvalidArgument`] rather than waiting for itself.
pub trait Source: Send + Sync {
    /// Appends the current upstreams to `out`.
    fn fetch(&self, ctx: &Context<'_>, out: &mut Vec<Upstream>) -> Result<(), SourceError>;
}

impl<S: Source + ?Sized> Source for Box<S> {
    fn fetch(&self, ctx: &Context<'_>, out: &mut Vec<Upstream>) -> Result<(), SourceError> {
        (**self).fetch(ctx, out)
    }
}

impl<S: Source + ?Sized> Source for std::sync::Arc<S> {
    fn fetch(&self, ctx: &Context<'_>, out: &mut Vec<Upstream>) -> Result<(), SourceError> {
        (**self).fetch(ctx, out)
    }
}

/// A flag that cancels a refresh in progress (set by a stopping refresher).
#[derive(Debug, Default)]
pub struct CancelFlag(AtomicBool);

impl CancelFlag {
    /// A flag that is not set.
    pub fn new() -> Self {
        Self(AtomicBool::new(false))
    }

    /// Sets the flag.
    pub fn cancel(&self) {
        // Release: a refresh that sees the flag also sees what the canceller did before.
        self.0.store(true, Ordering::Release);
    }

    /// Is the flag set?
    pub fn is_cancelled(&self) -> bool {
        // Acquire: pairs with `cancel`.
        self.0.load(Ordering::Acquire)
    }
}

/// What a source is given for one fetch.
#[derive(Clone, Copy, Debug, Default)]
pub struct Context<'a> {
    cancel: Option<&'a CancelFlag>,
}

impl<'a> Context<'a> {
    /// A context that is never cancelled.
    pub fn new() -> Self {
        Self { cancel: None }
    }

    /// A context cancelled when `flag` is set.
    pub fn with_cancel(flag: &'a CancelFlag) -> Self {
        Self { cancel: Some(flag) }
    }

    /// Should the fetch stop early? Long-running sources should check this.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_some_and(CancelFlag::is_cancelled)
    }
}

/// The error a source returns when it stopped because its [`Context`] was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled;

impl std::fmt::Display for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("refresh cancelled")
    }
}

impl std::error::Error for Cancelled {}

/// Runs `source`, catching panics and validating what it appended.
///
/// On success `out` has the source's upstreams appended. On a failure, panic or invalid
/// upstream, `out` is restored to its length on entry and the error says which. On
/// cancellation the partial list is left in `out` (Caddy's `multi` returns it with the error).
pub fn fetch_checked(source: &dyn Source, ctx: &Context<'_>, out: &mut Vec<Upstream>) -> Result<(), Error> {
    let start = out.len();
    let result = catch_unwind(AssertUnwindSafe(|| source.fetch(ctx, out)));
    let err = match result {
        Ok(Ok(())) => match out[start..].iter().try_for_each(Upstream::validate) {
            Ok(()) => return Ok(()),
            Err(e) => Error::new(ErrorKind::SourceFailed, format!("returned an invalid upstream: {e}")),
        },
        Ok(Err(e)) if e.is::<Cancelled>() => return Err(Error::new(ErrorKind::Cancelled, "refresh cancelled")),
        Ok(Err(e)) => Error::new(ErrorKind::SourceFailed, e.to_string()),
        Err(panic) => Error::new(ErrorKind::SourceFailed, format!("panicked: {}", panic_message(&*panic))),
    };
    out.truncate(start);
    Err(err)
}

/// Checks a source's template: the weight, `max_requests` and tier its upstreams get (its
/// address is ignored).
#[cfg(not(loom))]
pub(crate) fn validate_template(template: &Upstream) -> Result<(), Error> {
    Upstream { address: "template:1".to_owned(), ..template.clone() }.validate()
}

pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
