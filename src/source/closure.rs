//! A source made from a closure.

use super::{Context, Source};
use crate::error::SourceError;
use crate::upstream::Upstream;

/// A source that calls a closure; see [`from_fn`].
pub struct FromFn<F>(F);

/// Makes a source from a closure that returns the current list or an error.
///
/// ```
/// use leastconn::{Upstream, source::{self, Source, Context}};
/// let s = source::from_fn(|_ctx| Ok(vec![Upstream::new("10.0.0.1:80")]));
/// let mut out = Vec::new();
/// s.fetch(&Context::new(), &mut out).unwrap();
/// assert_eq!(out[0].address, "10.0.0.1:80");
/// ```
pub fn from_fn<F>(f: F) -> FromFn<F>
where
    F: Fn(&Context<'_>) -> Result<Vec<Upstream>, SourceError> + Send + Sync,
{
    FromFn(f)
}

impl<F> Source for FromFn<F>
where
    F: Fn(&Context<'_>) -> Result<Vec<Upstream>, SourceError> + Send + Sync,
{
    fn fetch(&self, ctx: &Context<'_>, out: &mut Vec<Upstream>) -> Result<(), SourceError> {
        out.extend((self.0)(ctx)?);
        Ok(())
    }
}
