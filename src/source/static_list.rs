//! A fixed list.

use super::{Context, Source};
use crate::error::SourceError;
use crate::upstream::Upstream;

/// A source that always returns the same list (nginx's `server` lines, Caddy's `to`).
///
/// ```
/// use leastconn::{Static, Upstream};
/// let s = Static::new(vec![Upstream::new("10.0.0.1:80"), Upstream::new("10.0.0.2:80")]);
/// assert_eq!(s.upstreams().len(), 2);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Static(Vec<Upstream>);

impl Static {
    /// A source returning `upstreams`, in this order.
    pub fn new(upstreams: Vec<Upstream>) -> Self {
        Self(upstreams)
    }

    /// A source of weight-1 upstreams, one per address.
    pub fn from_addresses<I: IntoIterator<Item = S>, S: Into<String>>(addresses: I) -> Self {
        Self(addresses.into_iter().map(Upstream::new).collect())
    }

    /// The list.
    pub fn upstreams(&self) -> &[Upstream] {
        &self.0
    }
}

impl Source for Static {
    fn fetch(&self, _ctx: &Context<'_>, out: &mut Vec<Upstream>) -> Result<(), SourceError> {
        out.extend_from_slice(&self.0);
        Ok(())
    }
}
