//! The `srv` source: one upstream per SRV record, in RFC 2782 order.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use super::{Cache, DEFAULT_REFRESH, LookupOptions, from_template};
use crate::clock::Clock;
use crate::error::{Error, ErrorKind, SourceError};
use crate::source::{Cancelled, Context, Grace, Source, validate_template};
use crate::upstream::{Upstream, validate_address};

/// Looks up SRV records and yields `target:port` for each, ordered by priority and, within a
/// priority, by RFC 2782's weighted random selection (Caddy's `srv` upstreams). Built by
/// [`Srv::builder`] or [`Srv::service`].
///
/// The target is written as the DNS answer has it, fully qualified with its final dot
/// (`backend-1.example.com.:8080`), as Caddy does; note that this is a different host
/// identity from `backend-1.example.com:8080` in a static list. A record whose target is `.`
/// ("service decidedly not available", RFC 2782) yields nothing. A record whose target or
/// port cannot make a valid dial address is dropped with a warning and the other records are
/// used (Go's resolver, under Caddy, filters such records and returns an error alongside the
/// rest); if that leaves none, the lookup fails.
///
/// The order is drawn once per lookup and kept while the result is reused (for `refresh`).
/// A failed lookup is not cached; within `grace_period` of the first failure the last good
/// list is served instead (this is the core's [`Grace`] wrapper). Every upstream gets the
/// weight, `max_requests`, tier and tag of the configured [template](SrvConfig::template)
/// (by default weight 1, no limit, tier 0, tag 0): the SRV weight only orders.
///
/// ```no_run
/// use std::time::Duration;
/// use leastconn::dns;
/// let srv = dns::Srv::service("api", "tcp", "example.internal")   // _api._tcp.example.internal
///     .resolvers(["10.0.0.53"])
///     .refresh(Duration::from_secs(30))
///     .grace_period(Duration::from_secs(120))
///     .build()?;
/// # Ok::<(), leastconn::Error>(())
/// ```
pub struct Srv {
    name: String,
    inner: Grace<SrvLookup>,
}

struct SrvLookup {
    name: String,
    lookup: LookupOptions,
    cache: Cache,
    rng: Mutex<fastrand::Rng>,
    template: Upstream,
}

/// The configuration of an [`Srv`] source; see [`Srv::builder`].
#[derive(Clone, Debug)]
#[must_use = "a configuration does nothing until built"]
pub struct SrvConfig {
    name: String,
    refresh: Duration,
    grace_period: Duration,
    resolvers: Vec<String>,
    timeout: Option<Duration>,
    retries: Option<usize>,
    clock: Clock,
    seed: Option<u64>,
    template: Upstream,
}

impl Srv {
    /// Starts configuring a source for the full SRV name (`_service._proto.name`), with a
    /// refresh of one minute, no grace period and the system's name servers.
    pub fn builder(name: impl Into<String>) -> SrvConfig {
        SrvConfig {
            name: name.into(),
            refresh: DEFAULT_REFRESH,
            grace_period: Duration::ZERO,
            resolvers: Vec::new(),
            timeout: None,
            retries: None,
            clock: Clock::System,
            seed: None,
            template: Upstream::new(""),
        }
    }

    /// As [`Srv::builder`] for `_service._proto.name`. With `service` and `proto` both empty,
    /// `name` is taken as the full name (as Go's `LookupSRV` and Caddy do).
    pub fn service(service: &str, proto: &str, name: &str) -> SrvConfig {
        if service.is_empty() && proto.is_empty() {
            Self::builder(name)
        } else {
            Self::builder(format!("_{service}._{proto}.{name}"))
        }
    }

    /// The full SRV name this source looks up.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl SrvConfig {
    /// How long a successful lookup is reused (default one minute; zero: look up on every
    /// fetch).
    pub fn refresh(mut self, refresh: Duration) -> Self {
        self.refresh = refresh;
        self
    }

    /// How long after the first failed lookup the last good list is still served (default
    /// zero: a failure is reported at once).
    pub fn grace_period(mut self, grace_period: Duration) -> Self {
        self.grace_period = grace_period;
        self
    }

    /// Name servers to ask, in order: `ip` or `ip:port` (`[ipv6]:port`), port 53 if absent.
    /// Without any, those of `/etc/resolv.conf` are asked.
    pub fn resolvers<I: IntoIterator<Item = S>, S: Into<String>>(mut self, resolvers: I) -> Self {
        self.resolvers = resolvers.into_iter().map(Into::into).collect();
        self
    }

    /// Timeout of each query attempt (default: `resolv.conf`'s, or 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Retries after a failed query attempt (default: `resolv.conf`'s, or 2; 0: one attempt).
    pub fn retries(mut self, retries: usize) -> Self {
        self.retries = Some(retries);
        self
    }

    /// The clock `refresh` and `grace_period` are measured with (default the system's
    /// monotonic clock; tests use a [`ManualClock`](crate::ManualClock)).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Seeds the generator of the weighted order, for reproducible tests (default: random).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The weight, `max_requests`, tier and tag every upstream of this source gets; the
    /// template's address is ignored. Default: `Upstream::new("")` (weight 1, no limit,
    /// tier 0, tag 0).
    pub fn template(mut self, template: Upstream) -> Self {
        self.template = template;
        self
    }

    /// Checks the configuration and builds the source. Nothing is looked up yet.
    ///
    /// Fails with [`ErrorKind::InvalidAddress`] for an invalid name or resolver address, and
    /// as [`Upstream::validate`] for an invalid template.
    pub fn build(self) -> Result<Srv, Error> {
        if self.name.parse::<std::net::IpAddr>().is_ok() {
            return Err(Error::new(
                ErrorKind::InvalidAddress,
                format!("{:?} is an IP address, not an SRV name", self.name),
            ));
        }
        validate_address(&format!("{}:1", self.name))
            .map_err(|_| Error::new(ErrorKind::InvalidAddress, format!("{:?} is not a valid SRV name", self.name)))?;
        validate_template(&self.template)?;
        let lookup = SrvLookup {
            name: self.name.clone(),
            lookup: LookupOptions::new(&self.resolvers, self.timeout, self.retries)?,
            cache: Cache::new(self.clock.clone(), self.refresh),
            rng: Mutex::new(self.seed.map_or_else(fastrand::Rng::new, fastrand::Rng::with_seed)),
            template: self.template,
        };
        Ok(Srv { name: self.name, inner: Grace::with_clock(lookup, self.grace_period, self.clock) })
    }
}

/// One SRV answer record, as far as ordering cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Record {
    pub(super) priority: u16,
    pub(super) weight: u16,
    pub(super) target: String,
    pub(super) port: u16,
}

impl SrvLookup {
    fn resolve(&self) -> Result<Vec<Upstream>, SourceError> {
        let name = self.name.as_str();
        let records: Vec<Record> = self.lookup.run(|resolver| async move {
            let answer = resolver.srv_lookup(name).await.map_err(|e| format!("SRV lookup of {name} failed: {e}"))?;
            Ok(answer
                .iter()
                .map(|r| Record {
                    priority: r.priority(),
                    weight: r.weight(),
                    target: r.target().to_string(),
                    port: r.port(),
                })
                .collect())
        })?;
        let mut usable = Vec::with_capacity(records.len());
        let mut dropped = Vec::new();
        for r in records {
            if r.target == "." {
                log::debug!("dns srv: {name}: a record with target \".\" says the service is not available here");
                continue;
            }
            match validate_address(&format!("{}:{}", r.target, r.port)) {
                Ok(()) => usable.push(r),
                Err(e) => dropped.push(e.message().to_owned()),
            }
        }
        if !dropped.is_empty() {
            let why = dropped.join("; ");
            if usable.is_empty() {
                return Err(format!("SRV lookup of {name}: no usable record ({why})").into());
            }
            log::warn!(
                "dns srv: {name}: dropped {} unusable record(s) ({why}); using the other {}",
                dropped.len(),
                usable.len()
            );
        }
        let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
        order(&mut usable, &mut rng);
        Ok(usable.into_iter().map(|r| from_template(&self.template, format!("{}:{}", r.target, r.port))).collect())
    }
}

/// Orders records by priority (lowest first), and each priority's records by RFC 2782's
/// weighted selection: with the zero-weight records placed first, pick a random number in
/// `0..=sum of weights` and take the first record whose running weight sum reaches it;
/// repeat with the rest. All-zero weights keep the server's order.
pub(super) fn order(records: &mut [Record], rng: &mut fastrand::Rng) {
    records.sort_by_key(|r| r.priority);
    for group in records.chunk_by_mut(|a, b| a.priority == b.priority) {
        // Stable: zero weights first, each part in server order.
        group.sort_by_key(|r| r.weight != 0);
        for start in 0..group.len() {
            let rest = &mut group[start..];
            let sum: u32 = rest.iter().map(|r| u32::from(r.weight)).sum();
            let pick = rng.u32(0..=sum);
            let mut running = 0;
            let chosen = rest
                .iter()
                .position(|r| {
                    running += u32::from(r.weight);
                    running >= pick
                })
                .unwrap_or(0);
            // Keep the remaining records in their relative order, as the RFC's list does.
            rest[..=chosen].rotate_right(1);
        }
    }
}

impl Source for SrvLookup {
    fn fetch(&self, ctx: &Context<'_>, out: &mut Vec<Upstream>) -> Result<(), SourceError> {
        if ctx.is_cancelled() {
            return Err(Box::new(Cancelled));
        }
        self.cache.fetch(out, || self.resolve())
    }
}

impl Source for Srv {
    fn fetch(&self, ctx: &Context<'_>, out: &mut Vec<Upstream>) -> Result<(), SourceError> {
        self.inner.fetch(ctx, out)
    }
}

impl std::fmt::Debug for Srv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Srv").field("name", &self.name).finish_non_exhaustive()
    }
}
