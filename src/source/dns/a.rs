//! The `a` source: one upstream per A/AAAA address of a name.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use hickory_resolver::ResolveError;

use super::{Cache, DEFAULT_REFRESH, IpVersions, LookupOptions, from_template};
use crate::clock::Clock;
use crate::error::{Error, ErrorKind, SourceError};
use crate::source::{Cancelled, Context, Source, validate_template};
use crate::upstream::{Upstream, validate_address};

/// Resolves a name and yields `ip:port` (`[ipv6]:port`) for each address, in the order the
/// resolver gave them (Caddy's `a` upstreams). Built by [`A::builder`].
///
/// An IP literal yields itself without any lookup. Results are reused for `refresh`; a
/// failed lookup, or one that finds no address of the wanted versions, is the fetch's error
/// and is not cached. With [`IpVersions::Both`] the A and AAAA queries go out in parallel and
/// the IPv4 addresses come first; one family failing while the other answers is logged and
/// the answer used. Every upstream gets the weight, `max_requests`, tier and tag of the
/// configured [template](AConfig::template) (by default weight 1, no limit, tier 0, tag 0).
///
/// ```
/// use leastconn::{dns, source::{Context, Source}};
/// let a = dns::A::builder("10.0.0.7").port(8080).build()?; // a literal: no DNS at all
/// let mut out = Vec::new();
/// a.fetch(&Context::new(), &mut out).unwrap();
/// assert_eq!(out[0].address, "10.0.0.7:8080");
/// # Ok::<(), leastconn::Error>(())
/// ```
pub struct A {
    name: String,
    port: u16,
    versions: IpVersions,
    literal: Option<IpAddr>,
    template: Upstream,
    lookup: LookupOptions,
    cache: Cache,
}

/// The configuration of an [`A`] source; see [`A::builder`].
#[derive(Clone, Debug)]
#[must_use = "a configuration does nothing until built"]
pub struct AConfig {
    name: String,
    port: u16,
    refresh: Duration,
    versions: IpVersions,
    resolvers: Vec<String>,
    timeout: Option<Duration>,
    retries: Option<usize>,
    clock: Clock,
    template: Upstream,
}

impl A {
    /// Starts configuring a source for `name` (a DNS name, or an IP literal), with port 80,
    /// a refresh of one minute, both IP versions and the system's resolution.
    pub fn builder(name: impl Into<String>) -> AConfig {
        AConfig {
            name: name.into(),
            port: 80,
            refresh: DEFAULT_REFRESH,
            versions: IpVersions::Both,
            resolvers: Vec::new(),
            timeout: None,
            retries: None,
            clock: Clock::System,
            template: Upstream::new(""),
        }
    }

    /// The name (or literal) this source resolves.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn resolve(&self) -> Result<Vec<Upstream>, SourceError> {
        let ips = if self.lookup.servers.is_empty() { self.system_lookup()? } else { self.dns_lookup()? };
        let addrs: Vec<Upstream> =
            ips.into_iter().map(|addr| from_template(&self.template, addr.to_string())).collect();
        if addrs.is_empty() {
            return Err(format!("no {} address for {}", family(self.versions), self.name).into());
        }
        Ok(addrs)
    }

    /// `getaddrinfo(3)`: the system's own resolution, in its order.
    fn system_lookup(&self) -> Result<Vec<SocketAddr>, SourceError> {
        let found =
            (self.name.as_str(), self.port).to_socket_addrs().map_err(|e| format!("resolving {}: {e}", self.name))?;
        Ok(found.filter(|a| self.versions.wants(a.ip())).collect())
    }

    fn dns_lookup(&self) -> Result<Vec<SocketAddr>, SourceError> {
        let (name, versions) = (self.name.as_str(), self.versions);
        let (v4, v6) = self.lookup.run(|resolver| async move {
            let v4 = async {
                match versions {
                    IpVersions::V6 => None,
                    _ => Some(resolver.ipv4_lookup(name).await.map(|l| l.iter().map(|a| IpAddr::V4(a.0)).collect())),
                }
            };
            let v6 = async {
                match versions {
                    IpVersions::V4 => None,
                    _ => Some(resolver.ipv6_lookup(name).await.map(|l| l.iter().map(|a| IpAddr::V6(a.0)).collect())),
                }
            };
            Ok(futures_util::future::join(v4, v6).await)
        })?;
        let (ips, failure) = merge_families(name, v4, v6)?;
        if let Some(failure) = failure {
            log::warn!("dns a: {failure}; using the {} addresses found", ips.len());
        }
        Ok(ips.into_iter().map(|ip| SocketAddr::new(ip, self.port)).collect())
    }
}

type FamilyResult = Option<Result<Vec<IpAddr>, ResolveError>>;

/// Combines the A and AAAA answers: IPv4 first. "No records" for one family is an ordinary
/// answer; a real failure of one family is given back, to be logged, with the other's
/// addresses.
pub(super) fn merge_families(
    name: &str,
    v4: FamilyResult,
    v6: FamilyResult,
) -> Result<(Vec<IpAddr>, Option<String>), SourceError> {
    let mut ips = Vec::new();
    let mut failures = Vec::new();
    for (kind, result) in [("A", v4), ("AAAA", v6)] {
        match result {
            None => {}
            Some(Ok(found)) => ips.extend(found),
            Some(Err(e)) if e.is_no_records_found() => {}
            Some(Err(e)) => failures.push(format!("{kind} lookup of {name} failed: {e}")),
        }
    }
    if failures.is_empty() {
        return Ok((ips, None));
    }
    let failure = failures.join("; ");
    if ips.is_empty() {
        return Err(failure.into());
    }
    Ok((ips, Some(failure)))
}

fn family(versions: IpVersions) -> &'static str {
    match versions {
        IpVersions::V4 => "IPv4",
        IpVersions::V6 => "IPv6",
        IpVersions::Both => "IPv4 or IPv6",
    }
}

impl AConfig {
    /// The port every upstream gets (default 80).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// How long a successful lookup is reused (default one minute; zero: look up on every
    /// fetch).
    pub fn refresh(mut self, refresh: Duration) -> Self {
        self.refresh = refresh;
        self
    }

    /// Which address families to ask for (default both).
    pub fn versions(mut self, versions: IpVersions) -> Self {
        self.versions = versions;
        self
    }

    /// Name servers to ask, in order: `ip` or `ip:port` (`[ipv6]:port`), port 53 if absent.
    /// Without any, the system's resolution is used (see the [module docs](super)).
    pub fn resolvers<I: IntoIterator<Item = S>, S: Into<String>>(mut self, resolvers: I) -> Self {
        self.resolvers = resolvers.into_iter().map(Into::into).collect();
        self
    }

    /// Timeout of each query attempt to explicit resolvers (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Retries after a failed query attempt to explicit resolvers (default 2; 0: one attempt).
    pub fn retries(mut self, retries: usize) -> Self {
        self.retries = Some(retries);
        self
    }

    /// The clock `refresh` is measured with (default the system's monotonic clock; tests use
    /// a [`ManualClock`](crate::ManualClock)).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The weight, `max_requests`, tier and tag every upstream of this source gets; the
    /// template's address is ignored. Default: `Upstream::new("")` (weight 1, no limit,
    /// tier 0, tag 0).
    ///
    /// ```
    /// use leastconn::{Upstream, dns};
    /// // These hosts are a backup tier of at most 100 requests in flight each.
    /// let a = dns::A::builder("backup.internal").template(Upstream::new("").tier(1).max_requests(100));
    /// ```
    pub fn template(mut self, template: Upstream) -> Self {
        self.template = template;
        self
    }

    /// Checks the configuration and builds the source. Nothing is looked up yet.
    ///
    /// Fails with [`ErrorKind::InvalidAddress`] for an invalid name, port 0 or an invalid
    /// resolver address, with [`ErrorKind::InvalidArgument`] for an IP literal of a version
    /// that `versions` excludes, and as [`Upstream::validate`] for an invalid template.
    pub fn build(self) -> Result<A, Error> {
        let bare = self.name.strip_prefix('[').and_then(|n| n.strip_suffix(']')).unwrap_or(&self.name);
        let literal = bare.parse::<IpAddr>().ok();
        match literal {
            Some(ip) if !self.versions.wants(ip) => {
                return Err(Error::new(
                    ErrorKind::InvalidArgument,
                    format!("{} is not an {} address", self.name, family(self.versions)),
                ));
            }
            Some(ip) => validate_address(&SocketAddr::new(ip, self.port).to_string())?,
            None => validate_address(&format!("{}:{}", self.name, self.port))?,
        }
        validate_template(&self.template)?;
        let lookup = LookupOptions::new(&self.resolvers, self.timeout, self.retries)?;
        Ok(A {
            name: self.name,
            port: self.port,
            versions: self.versions,
            literal,
            template: self.template,
            lookup,
            cache: Cache::new(self.clock, self.refresh),
        })
    }
}

impl Source for A {
    fn fetch(&self, ctx: &Context<'_>, out: &mut Vec<Upstream>) -> Result<(), SourceError> {
        if let Some(ip) = self.literal {
            out.push(from_template(&self.template, SocketAddr::new(ip, self.port).to_string()));
            return Ok(());
        }
        if ctx.is_cancelled() {
            return Err(Box::new(Cancelled));
        }
        self.cache.fetch(out, || self.resolve())
    }
}

impl std::fmt::Debug for A {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("A")
            .field("name", &self.name)
            .field("port", &self.port)
            .field("versions", &self.versions)
            .field("resolvers", &self.lookup.servers)
            .finish_non_exhaustive()
    }
}
