//! Caddy's JSON as the configuration: a pool from the JSON of a `reverse_proxy` handler, as
//! `caddy adapt` prints it.
//!
//! ```
//! use leastconn::Pool;
//! let pool = Pool::from_caddy_json(r#"{
//!     "handler": "reverse_proxy",
//!     "upstreams": [{"dial": "10.0.0.1:8080"}, {"dial": "10.0.0.2:8080", "max_requests": 100}],
//!     "load_balancing": {"selection_policy": {"policy": "least_conn"}},
//!     "health_checks": {"passive": {"fail_duration": "30s", "max_fails": 3}}
//! }"#)?;
//! assert_eq!(pool.len(), 2);
//! # Ok::<(), leastconn::Error>(())
//! ```
//!
//! # What is read
//!
//! * `upstreams`: `dial` (a dial address) and `max_requests` of each.
//! * `dynamic_upstreams`: a source object, `{"source": KIND, ...}`, with KIND one of
//!   `multi` (`sources`: a list of source objects, nested freely), `static` (our
//!   extension, below), `a` (`name`, `port` as a
//!   string, `refresh`, `resolver.addresses`, `versions.ipv4`/`ipv6`), `srv` (`service`,
//!   `proto`, `name`, `refresh`, `resolver.addresses`, `grace_period`) and `etcd`
//!   (`endpoints`, `key`, `version_key`, `timeout`; see [`Etcd`](crate::etcd::Etcd)). As in
//!   Caddy, when both are given the dynamic list is used and `upstreams` is the fallback for
//!   when the dynamic source fails.
//! * `load_balancing.selection_policy`: `policy` `least_conn` ([`Policy::LeastConn`]),
//!   `first` ([`Policy::First`]) or `random_choose` with `choose` 2 (the default;
//!   [`Policy::P2c`]). Other policies are refused. Without a policy: `least_conn` (Caddy's
//!   own default is `random`, which leastconn does not offer).
//! * `health_checks.passive`: `fail_duration` and `max_fails` (default 1) become the pool's
//!   [`PassiveHealth`]; without `fail_duration` (or with 0) failures are not counted, as in
//!   Caddy, and without a `passive` object too (unlike [`Pool::builder`]'s default).
//!   `unhealthy_request_count` N makes every upstream unavailable while it has N requests in
//!   flight, which is a `max_requests` of N on every upstream (the lower of the two where an
//!   upstream has its own). What counts as a failure is the caller's decision when it
//!   releases a pick, so `unhealthy_status` and `unhealthy_latency` are accepted and left to
//!   the caller.
//!
//! Durations are integers of nanoseconds or strings such as `"30s"`, `"1m30s"`, `"500ms"`.
//!
//! # Extensions
//!
//! * On each entry of `upstreams`: `weight` and `tier`.
//! * A `static` source, `{"source": "static", "upstreams": [...]}` with entries as in the
//!   handler's `upstreams`, so that a `multi` can hold a fixed list next to dynamic sources.
//! * On an `a`, `srv` or `etcd` source: `weight`, `max_requests` and `tier` of every upstream
//!   it makes (an etcd entry's own fields win); on `etcd`: `resync`.
//! * On any source, `multi` included: `grace`, a duration for which the source's last good
//!   list is served when it fails ([`Grace`](crate::Grace)).
//!
//! # Fields that do not matter to selection
//!
//! Accepted and ignored, so that a handler copied from `caddy adapt` loads as it is: on the
//! handler `handler` (if present it must be `"reverse_proxy"`), `transport`, `headers`,
//! `rewrite`, `flush_interval`, `request_buffers`, `response_buffers`, `buffer_requests`,
//! `buffer_responses`, `max_buffer_size`, `stream_timeout`, `stream_close_delay`,
//! `trusted_proxies`, `handle_response`, `verbose_logs`; on `load_balancing` `retries`,
//! `try_duration`, `try_interval`, `retry_match` (retrying is the caller's loop);
//! on `health_checks` `active` (leastconn runs no probes: mark hosts down with
//! [`Pool::set_down`]; a warning is logged); on `a` and `srv` `dial_timeout` and
//! `dial_fallback_delay`. Any other field is an error naming its JSON path, as is a value of
//! the wrong type (`dynamic_upstreams.sources[1].port: expected a string`). Errors have the
//! kind [`ErrorKind::InvalidConfig`].

mod json;
mod sources;

use serde_json::Value;

use crate::error::{Error, ErrorKind};
use crate::policy::Policy;
use crate::pool::{Builder, PassiveHealth, Pool};
use crate::source::{Source, Static};
pub(crate) use json::duration;
use json::{Obj, error, join};
use sources::{Capped, DynamicOrStatic};

const HANDLER_IGNORED: [&str; 14] = [
    "transport",
    "headers",
    "rewrite",
    "flush_interval",
    "request_buffers",
    "response_buffers",
    "buffer_requests",
    "buffer_responses",
    "max_buffer_size",
    "stream_timeout",
    "stream_close_delay",
    "trusted_proxies",
    "handle_response",
    "verbose_logs",
];

fn parse(json: &str) -> Result<Value, Error> {
    serde_json::from_str(json).map_err(|e| Error::new(ErrorKind::InvalidConfig, format!("invalid JSON: {e}")))
}

/// A pool builder from the JSON of a Caddy `reverse_proxy` handler (see the
/// [module docs](self) for what is read). Nothing is fetched until the builder builds. For a
/// pool on a shared zone: `handler_from_json(json)?.zone(&zone, "app").build()` (Linux;
/// `lc_pool_new_json_in_zone()` in C).
pub fn handler_from_json(json: &str) -> Result<Builder, Error> {
    let value = parse(json)?;
    let handler = Obj::new(&value, String::new())?;
    handler
        .only(&["handler", "upstreams", "dynamic_upstreams", "load_balancing", "health_checks"], &HANDLER_IGNORED)?;
    if let Some(name) = handler.str("handler")? {
        if name != "reverse_proxy" {
            return Err(error("handler", format!("{name:?}: expected \"reverse_proxy\"")));
        }
    }
    let policy = match handler.obj("load_balancing")? {
        Some(lb) => policy(&lb)?,
        None => Policy::LeastConn,
    };
    let (health, request_cap) = match handler.obj("health_checks")? {
        Some(hc) => health(&hc)?,
        None => (PassiveHealth::OFF, 0),
    };
    let fixed = sources::upstream_list(&handler)?;
    let source: Box<dyn Source> = match handler.value("dynamic_upstreams") {
        Some(d) => {
            let dynamic = sources::source(d, "dynamic_upstreams".to_owned())?;
            Box::new(DynamicOrStatic { dynamic, fallback: fixed })
        }
        None if fixed.is_empty() => {
            return Err(error("", "no upstreams: set upstreams or dynamic_upstreams"));
        }
        None => Box::new(Static::new(fixed)),
    };
    let source = if request_cap > 0 { Box::new(Capped { inner: source, limit: request_cap }) } else { source };
    Ok(Pool::builder(source).policy(policy).passive_health(health))
}

/// A source from the JSON of one Caddy `dynamic_upstreams` module, e.g.
/// `{"source": "etcd", "endpoints": ["http://10.0.0.5:2379"], "key": "/services/api/"}` or a
/// `multi` of several (see the [module docs](self)). Nothing is fetched yet.
pub fn source_from_json(json: &str) -> Result<Box<dyn Source>, Error> {
    sources::source(&parse(json)?, String::new())
}

impl Pool {
    /// A pool from the JSON of a Caddy `reverse_proxy` handler, refreshed once: see
    /// [`config`](crate::config) for what is read, and [`handler_from_json`] for a builder
    /// (to set a clock, say).
    pub fn from_caddy_json(json: &str) -> Result<Pool, Error> {
        handler_from_json(json)?.build()
    }
}

fn policy(lb: &Obj<'_>) -> Result<Policy, Error> {
    lb.only(&["selection_policy"], &["retries", "try_duration", "try_interval", "retry_match"])?;
    let Some(sp) = lb.obj("selection_policy")? else { return Ok(Policy::LeastConn) };
    let name = sp.required_str("policy")?;
    let policy = match name {
        "least_conn" => Policy::LeastConn,
        "first" => Policy::First,
        "random_choose" => {
            sp.only(&["policy", "choose"], &[])?;
            match sp.u32("choose")? {
                None | Some(2) => Policy::P2c,
                Some(n) => {
                    return Err(error(&join(&sp.path, "choose"), format!("{n}: only 2 is supported")));
                }
            }
        }
        other => {
            return Err(error(
                &join(&sp.path, "policy"),
                format!("{other:?} is not supported (least_conn, first, random_choose)"),
            ));
        }
    };
    sp.only(&["policy", "choose"], &[])?;
    if policy != Policy::P2c && sp.has("choose") {
        return Err(error(&join(&sp.path, "choose"), "only random_choose takes choose"));
    }
    Ok(policy)
}

/// The pool's passive health, and the `unhealthy_request_count` cap (0: none).
fn health(hc: &Obj<'_>) -> Result<(PassiveHealth, u32), Error> {
    hc.only(&["passive"], &["active"])?;
    if hc.has("active") {
        log::warn!("health_checks.active is ignored: leastconn runs no probes (mark hosts down instead)");
    }
    let Some(p) = hc.obj("passive")? else { return Ok((PassiveHealth::OFF, 0)) };
    p.only(&["fail_duration", "max_fails", "unhealthy_request_count"], &["unhealthy_status", "unhealthy_latency"])?;
    let request_cap = p.u32("unhealthy_request_count")?.unwrap_or(0);
    if request_cap > crate::MAX_REQUESTS_LIMIT {
        return Err(error(
            &join(&p.path, "unhealthy_request_count"),
            format!("{request_cap} is above {}", crate::MAX_REQUESTS_LIMIT),
        ));
    }
    let health = match p.duration("fail_duration")? {
        Some(d) if !d.is_zero() => {
            let max_fails = p.u32("max_fails")?.unwrap_or(1);
            if max_fails > crate::MAX_FAILS_LIMIT {
                return Err(error(
                    &join(&p.path, "max_fails"),
                    format!("{max_fails} is above {}", crate::MAX_FAILS_LIMIT),
                ));
            }
            PassiveHealth { max_fails, fail_duration: d }
        }
        _ => {
            p.u32("max_fails")?;
            PassiveHealth::OFF
        }
    };
    Ok((health, request_cap))
}
