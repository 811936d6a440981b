//! Caddy's `dynamic_upstreams` modules as sources: `multi`, `a`, `srv`, `docker`, `etcd`.

use serde_json::Value;

use super::json::{Obj, error, join};
use crate::SourceError;
use crate::error::Error;
use crate::source::dns::{A, IpVersions, Srv};
use crate::source::docker::Docker;
use crate::source::etcd::Etcd;
use crate::source::{Context, Grace, Multi, Source, Static, fetch_checked};
use crate::upstream::Upstream;

/// Our extensions, accepted on every source: `grace` (a [`Grace`] period) and, on the sources
/// that make upstreams, the `weight`, `max_requests` and `tier` of each.
const GRACE: &str = "grace";
const TEMPLATE: [&str; 3] = ["weight", "max_requests", "tier"];
/// Caddy's dial settings of `a` and `srv`: they concern connecting, not choosing.
const DIAL: [&str; 2] = ["dial_timeout", "dial_fallback_delay"];

/// The source kinds this build knows, for error messages.
pub(crate) const KINDS: &str = "multi, static, a, srv, docker, etcd";

/// Builds the source described by the `dynamic_upstreams`-style object `value` at `path`.
pub(crate) fn source(value: &Value, path: String) -> Result<Box<dyn Source>, Error> {
    let obj = Obj::new(value, path)?;
    let kind = obj.required_str("source")?;
    let built = source_of_kind(kind, &obj)?;
    match obj.duration(GRACE)? {
        Some(period) if !period.is_zero() => Ok(Box::new(Grace::new(built, period))),
        _ => Ok(built),
    }
}

/// The one dispatch point from a `"source"` name to the code that builds it. A new kind is
/// one more arm here and one more name in [`KINDS`].
fn source_of_kind(kind: &str, obj: &Obj<'_>) -> Result<Box<dyn Source>, Error> {
    match kind {
        "multi" => multi(obj),
        "static" => static_list(obj),
        "a" => a(obj),
        "srv" => srv(obj),
        "docker" => docker(obj),
        "etcd" => etcd(obj),
        other => Err(error(&join(&obj.path, "source"), format!("unknown source {other:?} (known: {KINDS})"))),
    }
}

/// Wraps a build error of a source's own checks into one that names the source's path.
fn at(path: &str, e: Error) -> Error {
    error(path, e.message())
}

fn fields<'a>(own: &[&'a str], template: bool) -> Vec<&'a str> {
    let mut all = vec!["source", GRACE];
    all.extend_from_slice(own);
    if template {
        all.extend_from_slice(&TEMPLATE);
    }
    all
}

/// The weight, `max_requests` and tier of the upstreams an object makes.
pub(crate) fn template(obj: &Obj<'_>) -> Result<Upstream, Error> {
    let mut u = Upstream::new("");
    let field = |name: &str, min: u32, max: u32| -> Result<Option<u32>, Error> {
        match obj.u32(name)? {
            Some(n) if n < min || n > max => {
                Err(error(&join(&obj.path, name), format!("{n} is outside {min}..={max}")))
            }
            n => Ok(n),
        }
    };
    if let Some(w) = field("weight", 1, crate::MAX_WEIGHT)? {
        u.weight = w;
    }
    if let Some(m) = field("max_requests", 0, crate::MAX_REQUESTS_LIMIT)? {
        u.max_requests = m;
    }
    if let Some(t) = field("tier", 0, crate::MAX_TIER)? {
        u.tier = t;
    }
    Ok(u)
}

fn multi(obj: &Obj<'_>) -> Result<Box<dyn Source>, Error> {
    obj.only(&fields(&["sources"], false), &[])?;
    let mut multi = Multi::new();
    for (path, value) in obj.array("sources")? {
        multi.push(source(value, path)?);
    }
    Ok(Box::new(multi))
}

/// Our extension: a fixed list inside a `multi`, its entries as in the handler's `upstreams`.
fn static_list(obj: &Obj<'_>) -> Result<Box<dyn Source>, Error> {
    obj.only(&fields(&["upstreams"], false), &[])?;
    Ok(Box::new(Static::new(upstream_list(obj)?)))
}

/// The entries of an `upstreams` array: `dial`, `max_requests`, and our `weight` and `tier`.
pub(crate) fn upstream_list(obj: &Obj<'_>) -> Result<Vec<Upstream>, Error> {
    let mut list = Vec::new();
    for (path, value) in obj.array("upstreams")? {
        let u = Obj::new(value, path)?;
        u.only(&["dial", "max_requests", "weight", "tier"], &[])?;
        let dial = u.required_str("dial")?;
        crate::upstream::validate_address(dial).map_err(|e| error(&join(&u.path, "dial"), e.message()))?;
        list.push(Upstream { address: dial.to_owned(), ..template(&u)? });
    }
    Ok(list)
}

/// Caddy's `resolver.addresses` (network addresses such as `udp/10.0.0.53:53` or
/// `10.0.0.53`), reduced to what the DNS sources take.
fn resolvers(obj: &Obj<'_>) -> Result<Vec<String>, Error> {
    let Some(resolver) = obj.obj("resolver")? else { return Ok(Vec::new()) };
    resolver.only(&["addresses"], &[])?;
    Ok(resolver
        .strings("addresses")?
        .into_iter()
        .map(|a| a.strip_prefix("udp/").or_else(|| a.strip_prefix("tcp/")).map_or(a.clone(), str::to_owned))
        .collect())
}

/// Caddy writes `port` as a string; `numbers` also accepts a JSON number (`docker`'s module
/// takes either).
fn port(obj: &Obj<'_>, numbers: bool) -> Result<Option<u16>, Error> {
    let text = match obj.value("port") {
        None => return Ok(None),
        Some(Value::Number(n)) if numbers => n.to_string(),
        Some(_) => obj.required_str("port")?.to_owned(),
    };
    match text.parse::<u16>() {
        Ok(n) if n != 0 => Ok(Some(n)),
        _ => Err(error(&join(&obj.path, "port"), format!("{text:?}: expected a port number from 1 to 65535"))),
    }
}

fn a(obj: &Obj<'_>) -> Result<Box<dyn Source>, Error> {
    let mut known = vec!["name", "port", "refresh", "resolver", "versions"];
    known.extend(DIAL);
    obj.only(&fields(&known, true), &[])?;
    let mut builder = A::builder(obj.required_str("name")?).template(template(obj)?).resolvers(resolvers(obj)?);
    if let Some(p) = port(obj, false)? {
        builder = builder.port(p);
    }
    if let Some(r) = obj.duration("refresh")? {
        builder = builder.refresh(r);
    }
    if let Some(v) = obj.obj("versions")? {
        v.only(&["ipv4", "ipv6"], &[])?;
        builder = builder.versions(match (v.bool("ipv4")?, v.bool("ipv6")?) {
            (Some(true), Some(true)) | (None, None) => IpVersions::Both,
            (Some(true), _) => IpVersions::V4,
            (_, Some(true)) => IpVersions::V6,
            _ => return Err(error(&v.path, "at least one of ipv4 and ipv6 must be true")),
        });
    }
    Ok(Box::new(builder.build().map_err(|e| at(&obj.path, e))?))
}

fn srv(obj: &Obj<'_>) -> Result<Box<dyn Source>, Error> {
    let mut known = vec!["service", "proto", "name", "refresh", "resolver", "grace_period"];
    known.extend(DIAL);
    obj.only(&fields(&known, true), &[])?;
    let name = obj.required_str("name")?;
    let mut builder = match (obj.str("service")?, obj.str("proto")?) {
        (None, None) => Srv::builder(name),
        (Some(s), Some(p)) => Srv::service(s, p, name),
        _ => return Err(error(&obj.path, "service and proto go together: set both or neither")),
    };
    builder = builder.template(template(obj)?).resolvers(resolvers(obj)?);
    if let Some(r) = obj.duration("refresh")? {
        builder = builder.refresh(r);
    }
    if let Some(g) = obj.duration("grace_period")? {
        builder = builder.grace_period(g);
    }
    Ok(Box::new(builder.build().map_err(|e| at(&obj.path, e))?))
}

/// Caddy's `docker` module (invzhi/caddy-docker-upstreams): `labels` (label key to one
/// accepted value or a list of them) and `port` (a string, as Caddy writes it, or a number);
/// our `host`, `refresh`, `timeout` as in [`DockerConfig`](crate::docker::DockerConfig).
fn docker(obj: &Obj<'_>) -> Result<Box<dyn Source>, Error> {
    obj.only(&fields(&["labels", "port", "host", "refresh", "timeout"], true), &[])?;
    let mut builder = Docker::builder().template(template(obj)?);
    if let Some(labels) = obj.value("labels") {
        let path = join(&obj.path, "labels");
        let Value::Object(map) = labels else {
            return Err(error(&path, "expected an object of label keys to accepted values"));
        };
        for (key, values) in map {
            let values = match values {
                Value::String(v) => vec![v.clone()],
                Value::Array(list) => list
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        v.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| error(&format!("{path}.{key}[{i}]"), "expected a string"))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                _ => return Err(error(&join(&path, key), "expected a string or a list of strings")),
            };
            builder = builder.label(key.clone(), values);
        }
    }
    if let Some(p) = port(obj, true)? {
        builder = builder.port(p);
    }
    if let Some(h) = obj.str("host")? {
        builder = builder.host(h);
    }
    if let Some(r) = obj.duration("refresh")? {
        builder = builder.refresh(r);
    }
    if let Some(t) = obj.duration("timeout")? {
        builder = builder.timeout(t);
    }
    Ok(Box::new(builder.build().map_err(|e| at(&obj.path, e))?))
}

fn etcd(obj: &Obj<'_>) -> Result<Box<dyn Source>, Error> {
    obj.only(&fields(&["endpoints", "key", "version_key", "timeout", "resync"], true), &[])?;
    let mut builder = Etcd::builder(obj.strings("endpoints")?, obj.required_str("key")?).template(template(obj)?);
    if let Some(k) = obj.str("version_key")? {
        builder = builder.version_key(k);
    }
    if let Some(t) = obj.duration("timeout")? {
        builder = builder.timeout(t);
    }
    if let Some(r) = obj.duration("resync")? {
        builder = builder.resync(r);
    }
    Ok(Box::new(builder.build().map_err(|e| at(&obj.path, e))?))
}

/// Caddy's choice between `dynamic_upstreams` and `upstreams`: the dynamic list when its
/// source answers, the static list when it fails.
pub(crate) struct DynamicOrStatic {
    pub(crate) dynamic: Box<dyn Source>,
    pub(crate) fallback: Vec<Upstream>,
}

impl Source for DynamicOrStatic {
    fn fetch(&self, ctx: &Context<'_>, out: &mut Vec<Upstream>) -> Result<(), SourceError> {
        match fetch_checked(&*self.dynamic, ctx, out) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == crate::ErrorKind::Cancelled => Err(Box::new(crate::source::Cancelled)),
            Err(e) if !self.fallback.is_empty() => {
                log::error!("dynamic upstreams failed: {}; using the static upstreams", e.message());
                out.extend_from_slice(&self.fallback);
                Ok(())
            }
            Err(e) => Err(e.message().into()),
        }
    }
}

/// `health_checks.passive.unhealthy_request_count`: every upstream gets at most this many
/// requests in flight (its own `max_requests`, when lower, still applies).
pub(crate) struct Capped {
    pub(crate) inner: Box<dyn Source>,
    pub(crate) limit: u32,
}

impl Source for Capped {
    fn fetch(&self, ctx: &Context<'_>, out: &mut Vec<Upstream>) -> Result<(), SourceError> {
        let start = out.len();
        self.inner.fetch(ctx, out)?;
        for u in &mut out[start..] {
            u.max_requests = cap(u.max_requests, self.limit);
        }
        Ok(())
    }
}

/// The tighter of two limits where 0 means none.
pub(crate) fn cap(max_requests: u32, limit: u32) -> u32 {
    match (max_requests, limit) {
        (0, l) => l,
        (m, 0) => m,
        (m, l) => m.min(l),
    }
}
