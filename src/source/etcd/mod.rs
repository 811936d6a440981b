//! The `etcd` source: upstreams kept under a key prefix in etcd (the Caddy module
//! deanchou/caddy_etcd), followed with a watch instead of read per request.
//!
//! ```no_run
//! use std::time::Duration;
//! use leastconn::{Grace, Multi, Pool, Static, etcd::Etcd};
//!
//! let etcd = Etcd::builder(["http://10.0.0.5:2379", "http://10.0.0.6:2379"], "/services/api/").build()?;
//! let sources = Multi::new()
//!     .with(Static::from_addresses(["10.0.0.1:8080"]))
//!     .with(Grace::new(etcd, Duration::from_secs(30)));
//! let pool = Pool::builder(sources).build()?;
//! # Ok::<(), leastconn::Error>(())
//! ```
//!
//! # Values
//!
//! Each key under the prefix holds either a dial address (`10.0.0.1:8080`) or the JSON of
//! the Caddy module, `{"endpoints":["http://10.0.0.1:8080", ...], "version":"v"}`, where
//! everything up to `://` of an endpoint is dropped. The JSON form may also carry `weight`,
//! `max_requests` and `tier` for all its endpoints (otherwise the source's
//! [template](EtcdConfig::template) applies). Upstreams are ordered by key, then by endpoint
//! order. A value that is neither is logged at `warn` level, naming its key, and skipped: one
//! bad key does not hide the others.
//!
//! The *version key* (default: the prefix followed by `.version`, Caddy's default) switches
//! between blue and green: when it holds a non-empty value, only JSON entries whose `version`
//! equals it count (a plain-address entry has no version and then does not count). The
//! version key itself is never an entry.
//!
//! # Watching
//!
//! The first fetch starts a background thread (`leastconn-etcd`) that reads the prefix (and
//! the version key) with one range read, then watches from the next revision and applies every
//! put and delete. When the stream ends, breaks or is cancelled (its revision was compacted),
//! the thread reads again and watches again, trying the endpoints in order and starting from
//! the one that worked last. It also re-reads every `resync` (default 5 minutes) as a safety
//! net. A fetch only copies the current list: it never waits for etcd, except the very first,
//! which waits up to `timeout` for the first read.
//!
//! While the cluster cannot be read (every endpoint refused, timed out, or answered with an
//! error), a fetch returns that error, so a [`Multi`](crate::Multi) logs and skips the
//! source and a [`Grace`](crate::Grace) can keep its last list. The thread keeps retrying,
//! with a pause growing from 100 ms to 5 s; once a read succeeds the list is served again.
//! A watch that ends early is followed by the same growing pause before the next read (so a
//! server that refuses every watch is read at most every 5 s, and its list still served).
//!
//! The watcher belongs to the process that started it: after a `fork` (nginx's master
//! process forking workers), the first fetch in the child starts a watcher of its own.
//! Dropping the source stops its watcher and waits for the thread to end (at once: every
//! wait of the thread is cut short).
//!
//! # Transport
//!
//! etcd's v3 JSON gateway (`/v3/kv/range`, `/v3/watch`: etcd 3.4 and later; 3.3 served it
//! under `/v3beta`) over plain HTTP/1.1, with hyper on a
//! current-thread tokio runtime owned by the watcher thread: no gRPC and no `protoc` at build
//! time. TLS and authentication are not supported.

mod client;
mod watcher;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::error::{Error, ErrorKind, SourceError};
use crate::source::background::Background;
use crate::source::{Context, Source, validate_template};
use crate::upstream::Upstream;

use client::Endpoint;

/// Default time limit of each call to etcd (connecting and reading a range, or opening a
/// watch), and how long the first fetch waits for the first read.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default interval of the safety-net re-read.
pub const DEFAULT_RESYNC: Duration = Duration::from_secs(300);

/// Upstreams under a key prefix in etcd, followed with a watch. Built by [`Etcd::builder`];
/// see the [module docs](self) for the value formats and the watching.
pub struct Etcd {
    config: Arc<Settings>,
    watch: Background,
}

/// The settings the watcher needs.
pub(crate) struct Settings {
    pub(crate) endpoints: Vec<Endpoint>,
    pub(crate) prefix: Vec<u8>,
    pub(crate) version_key: Vec<u8>,
    pub(crate) timeout: Duration,
    pub(crate) resync: Duration,
    pub(crate) template: Upstream,
}

impl Settings {
    /// Is the version key outside the prefix (so that it is read and watched on its own)?
    pub(crate) fn version_key_apart(&self) -> bool {
        !self.version_key.starts_with(&self.prefix)
    }
}

/// The configuration of an [`Etcd`] source; see [`Etcd::builder`].
#[derive(Clone, Debug)]
#[must_use = "a configuration does nothing until built"]
pub struct EtcdConfig {
    endpoints: Vec<String>,
    prefix: String,
    version_key: Option<String>,
    timeout: Duration,
    resync: Duration,
    template: Upstream,
}

impl Etcd {
    /// Starts configuring a source for the keys under `prefix`, read from the etcd client
    /// URLs `endpoints` (`http://host:port`; port 2379 if absent), tried in order.
    pub fn builder<I: IntoIterator<Item = S>, S: Into<String>>(endpoints: I, prefix: impl Into<String>) -> EtcdConfig {
        EtcdConfig {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            prefix: prefix.into(),
            version_key: None,
            timeout: DEFAULT_TIMEOUT,
            resync: DEFAULT_RESYNC,
            template: Upstream::new(""),
        }
    }
}

impl Source for Etcd {
    fn fetch(&self, ctx: &Context<'_>, out: &mut Vec<Upstream>) -> Result<(), SourceError> {
        let settings = Arc::clone(&self.config);
        self.watch.fetch(ctx, out, self.config.timeout, move |published| watcher::run(settings, published))
    }
}

impl std::fmt::Debug for Etcd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Etcd")
            .field("endpoints", &self.config.endpoints)
            .field("prefix", &String::from_utf8_lossy(&self.config.prefix))
            .finish_non_exhaustive()
    }
}

impl EtcdConfig {
    /// The key whose value selects the entries that count (default: the prefix followed by
    /// `.version`). See the [module docs](self).
    pub fn version_key(mut self, key: impl Into<String>) -> Self {
        self.version_key = Some(key.into());
        self
    }

    /// Time limit of each call to etcd, and of the first fetch's wait (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Interval of the safety-net re-read (default 5 minutes).
    pub fn resync(mut self, resync: Duration) -> Self {
        self.resync = resync;
        self
    }

    /// The weight, `max_requests`, tier and tag of every upstream that its entry does not
    /// set; the template's address is ignored. Default: weight 1, no limit, tier 0, tag 0.
    pub fn template(mut self, template: Upstream) -> Self {
        self.template = template;
        self
    }

    /// Checks the configuration and builds the source. Nothing is read yet: the first fetch
    /// starts the watcher.
    ///
    /// Fails with [`ErrorKind::InvalidArgument`] without endpoints or with an endpoint that
    /// is not `http://host:port`, with [`ErrorKind::InvalidLimit`] for a zero timeout or
    /// resync, and as [`Upstream::validate`] for an invalid template.
    pub fn build(self) -> Result<Etcd, Error> {
        if self.endpoints.is_empty() {
            return Err(Error::new(ErrorKind::InvalidArgument, "etcd: no endpoints"));
        }
        let endpoints = self
            .endpoints
            .iter()
            .map(|e| Endpoint::parse(e))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::new(ErrorKind::InvalidArgument, e))?;
        if self.timeout.is_zero() || self.resync.is_zero() {
            return Err(Error::new(ErrorKind::InvalidLimit, "etcd: timeout and resync must be above 0"));
        }
        validate_template(&self.template)?;
        let version_key = self.version_key.unwrap_or_else(|| format!("{}.version", self.prefix));
        Ok(Etcd {
            config: Arc::new(Settings {
                endpoints,
                prefix: self.prefix.into_bytes(),
                version_key: version_key.into_bytes(),
                timeout: self.timeout,
                resync: self.resync,
                template: self.template,
            }),
            watch: Background::new("leastconn-etcd", "etcd".to_owned()),
        })
    }
}

/// The upstreams that `kvs` (every key read or watched) stand for: entries under the prefix,
/// by key, filtered by the version key's value. Bad entries are logged and skipped.
pub(crate) fn upstreams(settings: &Settings, kvs: &BTreeMap<Vec<u8>, Vec<u8>>) -> Vec<Upstream> {
    let version =
        kvs.get(&settings.version_key).map(|v| String::from_utf8_lossy(v).trim().to_owned()).filter(|v| !v.is_empty());
    let mut out = Vec::new();
    for (key, value) in kvs.range(settings.prefix.clone()..) {
        if !key.starts_with(&settings.prefix) {
            break;
        }
        if *key == settings.version_key {
            continue;
        }
        let start = out.len();
        if let Err(why) = parse_entry(value, version.as_deref(), &settings.template, &mut out) {
            out.truncate(start);
            log::warn!("etcd: key {:?}: {why}; skipping it", String::from_utf8_lossy(key));
        }
    }
    out
}

/// Appends the upstreams of one value.
fn parse_entry(
    value: &[u8],
    version: Option<&str>,
    template: &Upstream,
    out: &mut Vec<Upstream>,
) -> Result<(), String> {
    let text = std::str::from_utf8(value).map_err(|_| "value is not UTF-8".to_owned())?.trim();
    if !text.starts_with('{') {
        if version.is_some() {
            return Ok(());
        }
        let u = Upstream { address: text.to_owned(), ..template.clone() };
        u.validate().map_err(|e| e.message().to_owned())?;
        out.push(u);
        return Ok(());
    }
    let v: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let Value::Object(map) = &v else { return Err("expected a JSON object".to_owned()) };
    for field in map.keys() {
        if !matches!(field.as_str(), "endpoints" | "version" | "weight" | "max_requests" | "tier") {
            return Err(format!("unknown field {field:?}"));
        }
    }
    let entry_version = match &v["version"] {
        Value::Null => "",
        Value::String(s) => s.as_str(),
        _ => return Err("version: expected a string".to_owned()),
    };
    if version.is_some_and(|want| want != entry_version) {
        return Ok(());
    }
    let number = |field: &str, default: u32| -> Result<u32, String> {
        match &v[field] {
            Value::Null => Ok(default),
            n => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| format!("{field}: expected a non-negative integer")),
        }
    };
    let template = Upstream {
        weight: number("weight", template.weight)?,
        max_requests: number("max_requests", template.max_requests)?,
        tier: number("tier", template.tier)?,
        ..template.clone()
    };
    let Value::Array(endpoints) = &v["endpoints"] else {
        return Err("endpoints: expected an array of strings".to_owned());
    };
    for (i, e) in endpoints.iter().enumerate() {
        let Value::String(e) = e else {
            return Err(format!("endpoints[{i}]: expected a string"));
        };
        let address = e.split_once("://").map_or(e.as_str(), |(_, rest)| rest);
        let u = Upstream { address: address.to_owned(), ..template.clone() };
        u.validate().map_err(|e| format!("endpoints[{i}]: {}", e.message()))?;
        out.push(u);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
