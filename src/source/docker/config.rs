//! The configuration of a [`Docker`](super::Docker) source as Caddy's JSON writes it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer, de};

use super::{Docker, DockerBuilder};
use crate::error::{Error, ErrorKind};

/// The `docker` member of a Caddy `dynamic_upstreams` (module
/// `http.reverse_proxy.upstreams.docker`), deserialised with serde; unknown fields are an
/// error.
///
/// ```json
/// {"labels": {"com.example.role": ["web", "api"]}, "port": "8080",
///  "host": "unix:///run/podman/podman.sock", "refresh": "30s", "timeout": "5s"}
/// ```
///
/// * `labels`: label key to accepted values (a list, or one string). A container must carry
///   every key (ANDed) with one of its values (ORed); an empty list accepts any value.
/// * `port`: the port of every upstream (a string, as Caddy writes it, or a number); without
///   it each container's `com.caddyserver.http.upstream.port` label.
///
/// Our extensions:
/// * `host`: the daemon's socket, `unix:///path`; without it `DOCKER_HOST`, else
///   `unix:///var/run/docker.sock`.
/// * `refresh`: the safety-net re-list period (default 30 s); `timeout`: the bound on each
///   request to the daemon (default 5 s). Durations as Caddy writes them: an integer of
///   nanoseconds or a string such as `"1m30s"`, `"500ms"`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerConfig {
    /// Label filter: key to accepted values.
    #[serde(default)]
    pub labels: BTreeMap<String, Values>,
    /// The port of every upstream; `None`: the container's port label.
    #[serde(default, deserialize_with = "port")]
    pub port: Option<u16>,
    /// The daemon's socket (`unix:///path`).
    #[serde(default)]
    pub host: Option<String>,
    /// The safety-net re-list period.
    #[serde(default, deserialize_with = "duration")]
    pub refresh: Option<Duration>,
    /// The bound on each request to the daemon.
    #[serde(default, deserialize_with = "duration")]
    pub timeout: Option<Duration>,
}

/// The accepted values of one label: one string or a list of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Values(pub Vec<String>);

impl<'de> Deserialize<'de> for Values {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged, expecting = "a string or a list of strings")]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        Ok(Values(match OneOrMany::deserialize(d)? {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }))
    }
}

impl DockerConfig {
    /// A builder with these settings (the host defaults are read here: `DOCKER_HOST`).
    pub fn builder(&self) -> DockerBuilder {
        let mut b = Docker::builder();
        for (key, values) in &self.labels {
            b = b.label(key.clone(), values.0.iter().cloned());
        }
        if let Some(port) = self.port {
            b = b.port(port);
        }
        if let Some(host) = &self.host {
            b = b.host(host.clone());
        }
        if let Some(refresh) = self.refresh {
            b = b.refresh(refresh);
        }
        if let Some(timeout) = self.timeout {
            b = b.timeout(timeout);
        }
        b
    }

    /// Builds the source.
    pub fn build(&self) -> Result<Docker, Error> {
        self.builder().build()
    }
}

fn port<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged, expecting = "a port, 1 to 65535, as a string or a number")]
    enum Port {
        Number(u64),
        Text(String),
    }
    let n = match Port::deserialize(d)? {
        Port::Number(n) => n,
        Port::Text(s) => s.parse().map_err(|_| de::Error::custom(format!("port {s:?}: expected 1 to 65535")))?,
    };
    match u16::try_from(n) {
        Ok(p) if p != 0 => Ok(Some(p)),
        _ => Err(de::Error::custom(format!("port {n}: expected 1 to 65535"))),
    }
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    // One parser for every duration in a configuration: the Caddy JSON loader's.
    let raw = serde_json::Value::deserialize(d)?;
    crate::config::duration(&raw).map(Some).map_err(de::Error::custom)
}

/// The socket path of a `unix:///path` host (`DOCKER_HOST`'s form).
pub(crate) fn socket_path(host: &str) -> Result<String, Error> {
    match host.strip_prefix("unix://") {
        Some(path) if path.starts_with('/') => Ok(path.to_owned()),
        _ => Err(Error::new(
            ErrorKind::InvalidArgument,
            format!("docker host {host:?}: expected a Unix socket, unix:///path (tcp:// and ssh:// are not supported)"),
        )),
    }
}
