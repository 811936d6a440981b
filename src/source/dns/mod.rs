//! DNS sources: [`A`] (A/AAAA records) and [`Srv`] (SRV records), Caddy's two standard
//! dynamic upstream sources, usually combined with a static list in a [`Multi`](crate::Multi).
//!
//! ```no_run
//! use std::time::Duration;
//! use leastconn::{Multi, Pool, Static, dns};
//!
//! let sources = Multi::new()
//!     .with(Static::from_addresses(["10.0.0.1:8080"]))
//!     .with(dns::A::builder("api.internal").port(8080).resolvers(["10.0.0.53:53"]).build()?)
//!     .with(dns::Srv::builder("_api._tcp.internal").grace_period(Duration::from_secs(30)).build()?);
//! let pool = Pool::builder(sources).build()?;
//! # Ok::<(), leastconn::Error>(())
//! ```
//!
//! # Where lookups run
//!
//! Only in [`Source::fetch`](crate::Source::fetch), that is in a refresh (the background
//! [`Refresher`](crate::Refresher) or [`Pool::refresh`](crate::Pool::refresh)); a pick never
//! waits for DNS. A fetch within `refresh` of the last successful lookup serves that lookup's
//! result without asking anyone (Caddy's cache). A failed lookup is not cached: it is the
//! fetch's error (so `multi` logs and skips the source) and the next fetch asks again.
//!
//! # Resolution
//!
//! DNS messages and transport are [hickory-resolver]'s (UDP with TCP fallback on
//! truncation). Its own record cache is switched off: freshness is decided by `refresh`
//! alone, as in Caddy, whose Go resolver has no cache.
//!
//! With explicit resolvers (`ip` or `ip:port`; port 53 by default) the servers are asked in
//! the given order, and `/etc/hosts` is not consulted. Without them:
//! * [`A`] uses the operating system's resolution, `getaddrinfo(3)` (through
//!   [`std::net::ToSocketAddrs`]), so `/etc/hosts`, `nsswitch.conf`, `resolv.conf` and
//!   anything else the system is configured with apply exactly as for every other program;
//! * [`Srv`] (which `getaddrinfo` cannot do) asks the name servers of `/etc/resolv.conf`,
//!   with its timeout, attempts, search list and `ndots`, as Go's resolver does for Caddy.
//!
//! Each lookup builds a small current-thread tokio runtime and a resolver, and drops both when
//! it ends. That costs an epoll instance and a few allocations per lookup, besides the network
//! round trip, once per `refresh` at most; it buys three things: nothing to share between
//! threads; nothing inherited across `fork` (nginx loads its configuration, and may refresh,
//! in the master process before forking its workers, which would otherwise share one epoll
//! instance); and no runtime to drop inside someone's async context. A fetch called from
//! inside a tokio runtime does its lookup on a scoped helper thread, since a runtime cannot be
//! entered from another.
//!
//! [hickory-resolver]: https://docs.rs/hickory-resolver

mod a;
mod srv;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts, ServerOrderingStrategy};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol;

pub use a::{A, AConfig};
pub use srv::{Srv, SrvConfig};

use crate::clock::{Clock, duration_ns};
use crate::error::{Error, ErrorKind, SourceError};
use crate::upstream::Upstream;

/// How long a result is reused when no `refresh` is configured (Caddy's default).
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(60);

/// Which address families an [`A`] source asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum IpVersions {
    /// A records only.
    V4,
    /// AAAA records only.
    V6,
    /// A and AAAA records, asked in parallel; IPv4 addresses come first. The default.
    #[default]
    Both,
}

impl IpVersions {
    fn wants(self, ip: IpAddr) -> bool {
        match self {
            IpVersions::V4 => ip.is_ipv4(),
            IpVersions::V6 => ip.is_ipv6(),
            IpVersions::Both => true,
        }
    }
}

/// How to ask DNS: the settings [`A`] and [`Srv`] share.
#[derive(Clone, Debug, Default)]
struct LookupOptions {
    /// Explicit name servers, in the order asked; empty: the system's configuration.
    servers: Vec<SocketAddr>,
    /// Per-attempt timeout; `None`: the system's (or hickory's 5 s default).
    timeout: Option<Duration>,
    /// Retries after a failed attempt; `None`: the system's (or hickory's default of 2).
    retries: Option<usize>,
}

impl LookupOptions {
    fn new(resolvers: &[String], timeout: Option<Duration>, retries: Option<usize>) -> Result<Self, Error> {
        let servers = resolvers.iter().map(|r| parse_resolver(r)).collect::<Result<_, _>>()?;
        if timeout.is_some_and(|t| t.is_zero()) {
            return Err(Error::new(ErrorKind::InvalidLimit, "DNS timeout must be above 0"));
        }
        Ok(Self { servers, timeout, retries })
    }

    /// A resolver for one lookup; must be called inside the lookup's runtime.
    fn resolver(&self) -> Result<TokioResolver, SourceError> {
        let provider = TokioConnectionProvider::default();
        let mut builder = if self.servers.is_empty() {
            TokioResolver::builder(provider).map_err(|e| format!("cannot read the system DNS configuration: {e}"))?
        } else {
            let mut config = ResolverConfig::new();
            for &addr in &self.servers {
                config.add_name_server(NameServerConfig::new(addr, Protocol::Udp));
                config.add_name_server(NameServerConfig::new(addr, Protocol::Tcp));
            }
            let mut builder = TokioResolver::builder_with_config(config, provider);
            let opts = builder.options_mut();
            opts.use_hosts_file = ResolveHosts::Never;
            opts.server_ordering_strategy = ServerOrderingStrategy::UserProvidedOrder;
            builder
        };
        let opts: &mut ResolverOpts = builder.options_mut();
        // Freshness is `refresh`'s business alone: every lookup goes to the servers.
        opts.cache_size = 0;
        opts.positive_max_ttl = Some(Duration::ZERO);
        opts.negative_max_ttl = Some(Duration::ZERO);
        if let Some(t) = self.timeout {
            opts.timeout = t;
        }
        if let Some(n) = self.retries {
            opts.attempts = n;
        }
        Ok(builder.build())
    }

    /// Runs `lookup` with a fresh resolver on a fresh current-thread runtime (see the module
    /// docs for why fresh).
    fn run<T, F, Fut>(&self, lookup: F) -> Result<T, SourceError>
    where
        T: Send,
        F: FnOnce(TokioResolver) -> Fut + Send,
        Fut: Future<Output = Result<T, SourceError>>,
    {
        let go = move || -> Result<T, SourceError> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .enable_time()
                .build()
                .map_err(|e| format!("cannot start the DNS runtime: {e}"))?;
            runtime.block_on(async move { lookup(self.resolver()?).await })
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return go();
        }
        std::thread::scope(|s| match s.spawn(go).join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        })
    }
}

/// Parses a resolver address: `ip`, `ip:port`, `[ipv6]` or `[ipv6]:port` (port 53 if absent).
fn parse_resolver(s: &str) -> Result<SocketAddr, Error> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let bare = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')).unwrap_or(s);
    match bare.parse::<IpAddr>() {
        Ok(ip) => Ok(SocketAddr::new(ip, 53)),
        Err(_) => Err(Error::new(
            ErrorKind::InvalidAddress,
            format!("resolver {s:?}: expected an IP address with an optional port, e.g. 10.0.0.53:53 or [fd00::53]"),
        )),
    }
}

/// An upstream at `address` with the template's other fields.
fn from_template(template: &Upstream, address: String) -> Upstream {
    Upstream { address, ..template.clone() }
}

/// The result of the last successful lookup and when it was made, reused until `refresh`.
struct Cache {
    clock: Clock,
    refresh_ns: u64,
    last: Mutex<Option<(u64, Vec<Upstream>)>>,
}

impl Cache {
    fn new(clock: Clock, refresh: Duration) -> Self {
        Self { clock, refresh_ns: duration_ns(refresh), last: Mutex::new(None) }
    }

    /// Appends the cached list if fresh; otherwise runs `lookup` and caches what it returns.
    /// The lock is held across the lookup, so concurrent fetches of one source ask DNS once.
    fn fetch(
        &self,
        out: &mut Vec<Upstream>,
        lookup: impl FnOnce() -> Result<Vec<Upstream>, SourceError>,
    ) -> Result<(), SourceError> {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((at, list)) = &*last {
            if self.clock.now_ns() - at < self.refresh_ns {
                out.extend_from_slice(list);
                return Ok(());
            }
        }
        let fresh = lookup()?;
        out.extend_from_slice(&fresh);
        *last = Some((self.clock.now_ns(), fresh));
        Ok(())
    }
}

#[cfg(test)]
mod tests;
