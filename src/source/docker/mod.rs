//! The `docker` source: upstreams from the labels of running containers, read from the
//! Docker Engine API (or Podman's compatible service) over its Unix socket, like the Caddy
//! module `http.reverse_proxy.upstreams.docker` (invzhi/caddy-docker-upstreams) with its
//! known defects fixed.
//!
//! ```no_run
//! use leastconn::{Multi, Pool, Static, docker::Docker};
//!
//! let sources = Multi::new()
//!     .with(Static::from_addresses(["10.0.0.1:8080"]))
//!     .with(Docker::builder().label("com.example.role", ["web"]).build()?);
//! let pool = Pool::builder(sources).build()?;
//! # Ok::<(), leastconn::Error>(())
//! ```
//!
//! # Which containers, which address
//!
//! Running containers labelled `com.caddyserver.http.enable=true` (filtered by the daemon)
//! that are `healthy` or have no healthcheck: `unhealthy` and `starting` ones are left out.
//! With [`label`](DockerBuilder::label)s, a container must also carry every configured key
//! (ANDed) with one of its accepted values (ORed).
//!
//! * Port: the source's [`port`](DockerBuilder::port), else the container's label
//!   `com.caddyserver.http.upstream.port`.
//! * IP: on the network named by label `com.caddyserver.http.network`, or if the container
//!   is not on that one, on `<com.docker.compose.project>_<network>` (the name Compose
//!   gives). Without the label: the first network in name order that has an IPv4 address,
//!   else the first with a global IPv6 address. (The Caddy module takes whichever network a
//!   Go map yields first, a random choice.)
//! * A container without a usable port or address is skipped with a warning (`log`).
//!
//! Upstreams are ordered by container name (the order the `first` policy follows) and carry
//! the weight, `max_requests`, tier and tag of the [template](DockerBuilder::template).
//!
//! # Following changes, off the pick path
//!
//! The first fetch starts a watcher thread (one per source, with its own current-thread
//! tokio runtime) and waits for its first listing. The watcher follows `GET /events`
//! (container events), re-lists 100 ms after an event (debounced), after every
//! (re)subscription, every `refresh` (30 s by default) as a safety net, and 1 s after a
//! failed listing; see `watch.rs`.
//! A fetch never talks to the daemon: it returns the latest listing, or the daemon's latest
//! error (unreachable socket, error status, timeout), which a [`Multi`](crate::Multi) logs
//! and skips and a [`Grace`](crate::Grace) can cover with the last good list.
//!
//! The watcher is started in the process that fetches: after a `fork` (nginx's master
//! builds, its workers fetch) the child's first fetch starts its own watcher and waits for
//! its own listing. Dropping the source stops its watcher and waits for the thread to end.
//!
//! # Protocol
//!
//! HTTP/1.1 over the Unix socket of `DOCKER_HOST` (`unix:///path`; default
//! `unix:///var/run/docker.sock`), or of [`host`](DockerBuilder::host); API version
//! pinned to 1.41 (`/v1.41/...`), which current Docker, Debian's docker.io 20.10 and
//! Podman 4 all serve. Each request has its own connection and is bounded by `timeout`.

mod api;
mod config;
mod watch;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub use config::{DockerConfig, Values};

use crate::error::{Error, SourceError};
use crate::source::background::Background;
use crate::source::{Context, Source, validate_template};
use crate::upstream::Upstream;

/// The socket used when neither `DOCKER_HOST` nor [`DockerBuilder::host`] says otherwise.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";
/// The default safety-net re-list period.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(30);
/// The default bound on each request to the daemon.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long after an event the re-list runs (the Caddy module's debounce).
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(100);
/// The longest refresh, timeout or debounce accepted (so that deadlines cannot overflow).
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// Upstreams from container labels (see the [module docs](self)). Built by
/// [`Docker::builder`] or from a [`DockerConfig`].
pub struct Docker {
    settings: Arc<Settings>,
    watcher: Background,
}

/// What the watcher needs; immutable once built.
pub(crate) struct Settings {
    socket: String,
    port: Option<u16>,
    labels: BTreeMap<String, Vec<String>>,
    refresh: Duration,
    timeout: Duration,
    debounce: Duration,
    template: Upstream,
}

/// The configuration of a [`Docker`] source; see [`Docker::builder`].
#[derive(Clone, Debug)]
#[must_use = "a configuration does nothing until built"]
pub struct DockerBuilder {
    host: Option<String>,
    port: Option<u16>,
    labels: BTreeMap<String, Vec<String>>,
    refresh: Duration,
    timeout: Duration,
    debounce: Duration,
    template: Upstream,
}

impl Docker {
    /// Starts configuring a source: the socket of `DOCKER_HOST` (read at build), ports from
    /// labels, no label filter, a refresh of 30 s, a request timeout of 5 s.
    pub fn builder() -> DockerBuilder {
        DockerBuilder {
            host: None,
            port: None,
            labels: BTreeMap::new(),
            refresh: DEFAULT_REFRESH,
            timeout: DEFAULT_TIMEOUT,
            debounce: DEFAULT_DEBOUNCE,
            template: Upstream::new(""),
        }
    }

    /// The socket path this source talks to.
    pub fn socket(&self) -> &str {
        &self.settings.socket
    }
}

impl Source for Docker {
    /// Appends the latest listing, or returns the daemon's latest error. The first fetch (in
    /// a process) waits for the first listing, at most twice the request timeout.
    fn fetch(&self, ctx: &Context<'_>, out: &mut Vec<Upstream>) -> Result<(), SourceError> {
        let settings = Arc::clone(&self.settings);
        self.watcher.fetch(ctx, out, 2 * self.settings.timeout, move |published| watch::watch(settings, published))
    }
}

impl std::fmt::Debug for Docker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Docker").field("socket", &self.settings.socket).finish_non_exhaustive()
    }
}

impl DockerBuilder {
    /// The daemon's socket, `unix:///path` (`DOCKER_HOST`'s form).
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// The port of every upstream, instead of each container's port label.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Requires label `key` with one of `values` (any value if `values` is empty). Several
    /// calls with different keys are ANDed; a second call with the same key adds values.
    pub fn label<V: Into<String>>(mut self, key: impl Into<String>, values: impl IntoIterator<Item = V>) -> Self {
        self.labels.entry(key.into()).or_default().extend(values.into_iter().map(Into::into));
        self
    }

    /// The safety-net re-list period (events trigger re-lists in between).
    pub fn refresh(mut self, refresh: Duration) -> Self {
        self.refresh = refresh;
        self
    }

    /// The bound on each request to the daemon.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long after an event the re-list runs (events meanwhile join it). Default 100 ms.
    pub fn debounce(mut self, debounce: Duration) -> Self {
        self.debounce = debounce;
        self
    }

    /// Weight, `max_requests`, tier and tag of every upstream (its address is ignored).
    pub fn template(mut self, template: Upstream) -> Self {
        self.template = template;
        self
    }

    /// Checks the settings and builds the source. Nothing is contacted here.
    ///
    /// Errors: [`InvalidArgument`](crate::ErrorKind::InvalidArgument) for a host (or
    /// `DOCKER_HOST`) that is not `unix:///path`; [`InvalidLimit`](crate::ErrorKind::InvalidLimit)
    /// for a port 0, a zero refresh or timeout, or a refresh, timeout or debounce above
    /// [`MAX_DURATION`]; the template's own errors.
    pub fn build(self) -> Result<Docker, Error> {
        use crate::error::ErrorKind::InvalidLimit;
        let host = match self.host {
            Some(h) => h,
            None => std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| DEFAULT_HOST.into()),
        };
        let socket = config::socket_path(&host)?;
        if self.port == Some(0) {
            return Err(Error::new(InvalidLimit, "docker port must be 1 to 65535"));
        }
        if self.refresh.is_zero() || self.timeout.is_zero() {
            return Err(Error::new(InvalidLimit, "docker refresh and timeout must be above 0"));
        }
        if [self.refresh, self.timeout, self.debounce].iter().any(|d| *d > MAX_DURATION) {
            return Err(Error::new(InvalidLimit, "docker refresh, timeout and debounce must be at most 365 days"));
        }
        validate_template(&self.template)?;
        let settings = Settings {
            socket,
            port: self.port,
            labels: self.labels,
            refresh: self.refresh,
            timeout: self.timeout,
            debounce: self.debounce,
            template: self.template,
        };
        let watcher = Background::new("leastconn-docker", format!("docker daemon at {}", settings.socket));
        Ok(Docker { settings: Arc::new(settings), watcher })
    }
}

#[cfg(test)]
mod tests;
