//! `multi`: several sources asked in order, results appended (Caddy's `multi` upstreams).

use super::{Cancelled, Context, Source, fetch_checked};
use crate::error::{ErrorKind, SourceError};
use crate::upstream::Upstream;

/// Asks each source in configured order and appends its results in the order it returned
/// them: no de-duplication, no shuffling.
///
/// A source that fails (error, panic, invalid upstream) is logged at `error` level with its
/// index and skipped; a source that returns nothing is logged at `debug` level and skipped;
/// the others still run. All failing or empty gives an empty list, not an error. Cancellation
/// is checked before each source: the partial list is left in place and `Cancelled` returned.
/// `Multi` is itself a [`Source`], so it nests.
///
/// ```
/// use leastconn::{Multi, Static, Upstream, source::{self, Context, Source}};
/// let multi = Multi::new()
///     .with(Static::from_addresses(["10.0.0.1:80"]))
///     .with(source::from_fn(|_| Err("registry unreachable".into())))
///     .with(Static::from_addresses(["10.0.1.1:80"]));
/// let mut out = Vec::new();
/// multi.fetch(&Context::new(), &mut out).unwrap();
/// let addrs: Vec<_> = out.iter().map(|u| u.address.as_str()).collect();
/// assert_eq!(addrs, ["10.0.0.1:80", "10.0.1.1:80"]);
/// ```
#[derive(Default)]
pub struct Multi {
    sources: Vec<Box<dyn Source>>,
}

impl Multi {
    /// An empty `multi` (yields an empty list).
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a source; it is asked after all the sources added before it.
    pub fn with(mut self, source: impl Source + 'static) -> Self {
        self.push(source);
        self
    }

    /// Appends a source in place.
    pub fn push(&mut self, source: impl Source + 'static) {
        self.sources.push(Box::new(source));
    }

    /// Number of sources.
    pub fn len(&self) -> usize {
        self.sources.len()
    }

    /// No sources at all?
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }
}

impl Source for Multi {
    fn fetch(&self, ctx: &Context<'_>, out: &mut Vec<Upstream>) -> Result<(), SourceError> {
        for (index, source) in self.sources.iter().enumerate() {
            if ctx.is_cancelled() {
                return Err(Box::new(Cancelled));
            }
            let before = out.len();
            match fetch_checked(&**source, ctx, out) {
                Ok(()) if out.len() == before => {
                    log::debug!("multi: source {index} returned no upstreams; skipping");
                }
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::Cancelled => return Err(Box::new(Cancelled)),
                Err(e) => log::error!("multi: source {index} failed: {}; skipping", e.message()),
            }
        }
        Ok(())
    }
}
