//! The Docker Engine API over its Unix socket: one HTTP/1.1 connection per request
//! (hyper), the container listing and its translation into upstreams.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::net::UnixStream;

use super::Settings;
use crate::upstream::Upstream;

/// The API version every request is pinned to: served by current Docker, Debian's
/// docker.io 20.10 and Podman 4.
const API: &str = "/v1.41";
/// The most a listing (or an error body) may be; a bigger one is the daemon's error.
const MAX_BODY: usize = 64 << 20;

/// The label that opts a container in.
pub(crate) const LABEL_ENABLE: &str = "com.caddyserver.http.enable";
/// The label naming the network whose address to use.
pub(crate) const LABEL_NETWORK: &str = "com.caddyserver.http.network";
/// The label giving the port when the source has none.
pub(crate) const LABEL_PORT: &str = "com.caddyserver.http.upstream.port";
/// Docker Compose's project label (networks are named `<project>_<network>`).
pub(crate) const LABEL_COMPOSE_PROJECT: &str = "com.docker.compose.project";

/// Sends `GET /v1.41<path>` on a new connection and returns the response body once the
/// daemon answered 2xx; another status is an error carrying the daemon's message. (Errors
/// do not name the socket: the watcher prefixes it to each.)
pub(crate) async fn get(settings: &Settings, path: &str) -> Result<Incoming, String> {
    let stream = UnixStream::connect(&settings.socket).await.map_err(|e| format!("cannot connect: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    // The connection task ends when the response body is dropped or read to its end.
    tokio::spawn(conn);
    let request = Request::get(format!("{API}{path}"))
        .header(hyper::header::HOST, "docker")
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("GET {path}: {e}"))?;
    let response = sender.send_request(request).await.map_err(|e| format!("GET {path}: {e}"))?;
    let status = response.status();
    if status.is_success() {
        return Ok(response.into_body());
    }
    let body = collect(response.into_body()).await.unwrap_or_default();
    Err(daemon_error(path, status, &body))
}

/// Reads a whole body, at most [`MAX_BODY`] bytes.
pub(crate) async fn collect(body: Incoming) -> Result<Bytes, String> {
    Limited::new(body, MAX_BODY).collect().await.map(|c| c.to_bytes()).map_err(|e| format!("reading the response: {e}"))
}

fn daemon_error(path: &str, status: StatusCode, body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Message {
        message: String,
    }
    match serde_json::from_slice::<Message>(body) {
        Ok(m) => format!("GET {path}: {status}: {}", m.message),
        Err(_) => format!("GET {path}: {status}"),
    }
}

/// `?filters=<json>`, percent-encoded.
pub(crate) fn filters_query(filters: &serde_json::Value) -> String {
    let json = filters.to_string();
    let mut q = String::from("?filters=");
    for b in json.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            q.push(char::from(b));
        } else {
            q.push_str(&format!("%{b:02X}"));
        }
    }
    q
}

/// One container of `GET /containers/json` (the fields we read).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Summary {
    pub id: String,
    #[serde(default)]
    pub names: Vec<String>,
    #[serde(default)]
    pub labels: Option<HashMap<String, String>>,
    #[serde(default)]
    pub network_settings: Option<NetworkSettings>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct NetworkSettings {
    #[serde(default)]
    pub networks: Option<BTreeMap<String, Network>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Network {
    #[serde(rename = "IPAddress", default)]
    pub ip_address: Option<String>,
    #[serde(rename = "GlobalIPv6Address", default)]
    pub global_ipv6_address: Option<String>,
}

/// Lists the running, opted-in containers that are healthy or have no healthcheck.
///
/// Two listings: every running container labelled `com.caddyserver.http.enable=true`, less
/// those the daemon reports `unhealthy` or `starting`. (Docker's `health=none` filter would
/// do it in one, but Podman's never matches, and the summaries carry no health field.)
pub(crate) async fn list(settings: &Settings) -> Result<Vec<Summary>, String> {
    let enabled = serde_json::json!({"label": [format!("{LABEL_ENABLE}=true")], "status": ["running"]});
    let mut sick = enabled.clone();
    sick["health"] = serde_json::json!(["unhealthy", "starting"]);
    let all: Vec<Summary> = list_one(settings, &enabled).await?;
    let sick: HashSet<String> = list_one(settings, &sick).await?.into_iter().map(|c| c.id).collect();
    Ok(all.into_iter().filter(|c| !sick.contains(&c.id)).collect())
}

async fn list_one(settings: &Settings, filters: &serde_json::Value) -> Result<Vec<Summary>, String> {
    let path = format!("/containers/json{}", filters_query(filters));
    let body = collect(get(settings, &path).await?).await?;
    serde_json::from_slice(&body).map_err(|e| format!("GET /containers/json: unexpected answer: {e}"))
}

/// The upstreams of a listing, ordered by container name (then ID) so that the order, which
/// the `first` policy follows, does not depend on the daemon's. Containers the label filter
/// rejects are left out silently; those without an address or a port with a warning.
pub(crate) fn upstreams(settings: &Settings, mut containers: Vec<Summary>) -> Vec<Upstream> {
    containers.sort_by(|a, b| (a.names.first(), &a.id).cmp(&(b.names.first(), &b.id)));
    let mut out = Vec::with_capacity(containers.len());
    for c in &containers {
        let empty = HashMap::new();
        let labels = c.labels.as_ref().unwrap_or(&empty);
        if !settings.labels.iter().all(|(key, values)| {
            labels.get(key).is_some_and(|v| values.is_empty() || values.iter().any(|want| want == v))
        }) {
            continue;
        }
        match address(settings.port, labels, c) {
            Ok(address) => out.push(Upstream { address, ..settings.template.clone() }),
            Err(why) => log::warn!("docker: container {} skipped: {why}", display_name(c)),
        }
    }
    out
}

fn display_name(c: &Summary) -> &str {
    c.names.first().map_or(&c.id, |n| n.trim_start_matches('/'))
}

/// `ip:port` (`[ipv6]:port`) of one container.
fn address(port: Option<u16>, labels: &HashMap<String, String>, c: &Summary) -> Result<String, String> {
    let port = match port {
        Some(p) => p,
        None => match labels.get(LABEL_PORT) {
            None => return Err(format!("no port: neither the source's port nor label {LABEL_PORT}")),
            Some(v) => match v.parse::<u16>() {
                Ok(p) if p != 0 => p,
                _ => return Err(format!("label {LABEL_PORT}={v:?} is not a port (1 to 65535)")),
            },
        },
    };
    let ip = ip(labels, c)?;
    Ok(match ip {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    })
}

/// The container's address: on the network its label names (or `<project>_<name>`), else on
/// the first network in name order that has an IPv4 address, else the first with a global
/// IPv6 address.
fn ip(labels: &HashMap<String, String>, c: &Summary) -> Result<IpAddr, String> {
    let empty = BTreeMap::new();
    let networks = c.network_settings.as_ref().and_then(|n| n.networks.as_ref()).unwrap_or(&empty);
    if let Some(name) = labels.get(LABEL_NETWORK) {
        let compose = labels.get(LABEL_COMPOSE_PROJECT).map(|p| format!("{p}_{name}"));
        let net = networks.get(name).or_else(|| compose.as_ref().and_then(|n| networks.get(n)));
        let Some(net) = net else {
            return Err(format!("not attached to network {name:?} named by label {LABEL_NETWORK}"));
        };
        return net_ip(net).ok_or_else(|| format!("no IP address on network {name:?}"));
    }
    networks
        .values()
        .find_map(|n| parse_ip(n.ip_address.as_deref()))
        .or_else(|| networks.values().find_map(|n| parse_ip(n.global_ipv6_address.as_deref())))
        .ok_or_else(|| "no IP address on any network".to_owned())
}

fn net_ip(net: &Network) -> Option<IpAddr> {
    parse_ip(net.ip_address.as_deref()).or_else(|| parse_ip(net.global_ipv6_address.as_deref()))
}

fn parse_ip(s: Option<&str>) -> Option<IpAddr> {
    s.filter(|s| !s.is_empty()).and_then(|s| s.parse().ok())
}
