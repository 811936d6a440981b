//! The upstream spec: what a source says about one backend.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::error::{Error, ErrorKind};
use crate::host::MAX_REQUESTS_LIMIT;

/// The largest weight accepted.
pub const MAX_WEIGHT: u32 = 1_000_000;
/// The largest tier accepted (0 is the primary tier; 1.. are backup tiers).
pub const MAX_TIER: u32 = 255;
/// The longest dial address accepted, in bytes.
pub const MAX_ADDRESS_LEN: usize = 1024;

/// One upstream as a source reports it.
///
/// The address is the host's identity: state (in-flight count, failures, down flag) is
/// keyed by the exact string, as in Caddy, so `127.0.0.1:80` and `localhost:80` are two
/// hosts. Fields are validated when a refresh takes the list in (see [`Upstream::validate`]).
///
/// ```
/// use leastconn::Upstream;
/// let u = Upstream::new("10.0.0.1:8080").weight(3).max_requests(100).tier(1).tag(7);
/// assert!(u.validate().is_ok());
/// assert!(Upstream::new("10.0.0.1").validate().is_err()); // no port
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Upstream {
    /// Dial address: `host:port`, `[v6]:port`, or `unix/PATH`.
    pub address: String,
    /// Relative capacity, 1..=[`MAX_WEIGHT`]; default 1.
    pub weight: u32,
    /// Most requests in flight at once; 0 = unlimited; at most [`MAX_REQUESTS_LIMIT`].
    pub max_requests: u32,
    /// 0 = primary; hosts of tier `t` are used only when no host of a lower tier is available.
    pub tier: u32,
    /// Opaque value returned with every pick of this entry (the C API stores a `void *`).
    pub tag: usize,
}

impl Upstream {
    /// An upstream with weight 1, no request limit, tier 0 and tag 0.
    pub fn new(address: impl Into<String>) -> Self {
        Self { address: address.into(), weight: 1, max_requests: 0, tier: 0, tag: 0 }
    }

    /// Sets the weight.
    pub fn weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }

    /// Sets `max_requests` (0 = unlimited).
    pub fn max_requests(mut self, max: u32) -> Self {
        self.max_requests = max;
        self
    }

    /// Sets the tier (0 = primary).
    pub fn tier(mut self, tier: u32) -> Self {
        self.tier = tier;
        self
    }

    /// Sets the opaque tag.
    pub fn tag(mut self, tag: usize) -> Self {
        self.tag = tag;
        self
    }

    /// Checks every field; the error names the field and the offending value.
    pub fn validate(&self) -> Result<(), Error> {
        validate_address(&self.address)?;
        if self.weight == 0 || self.weight > MAX_WEIGHT {
            return Err(Error::new(
                ErrorKind::InvalidWeight,
                format!("weight {} of {:?} is outside 1..={MAX_WEIGHT}", self.weight, self.address),
            ));
        }
        if self.max_requests > MAX_REQUESTS_LIMIT {
            return Err(Error::new(
                ErrorKind::InvalidLimit,
                format!(
                    "max_requests {} of {:?} is above {MAX_REQUESTS_LIMIT} (use 0 for unlimited)",
                    self.max_requests, self.address
                ),
            ));
        }
        if self.tier > MAX_TIER {
            return Err(Error::new(
                ErrorKind::InvalidLimit,
                format!("tier {} of {:?} is above {MAX_TIER}", self.tier, self.address),
            ));
        }
        Ok(())
    }

    /// The reservation limit the hot path compares against.
    pub(crate) fn limit(&self) -> u32 {
        if self.max_requests == 0 { MAX_REQUESTS_LIMIT } else { self.max_requests }
    }
}

/// Checks a dial address: `host:port` (DNS name or IPv4 literal), `[IPv6]:port`, or
/// `unix/PATH` (Caddy's network-address form for Unix sockets).
pub fn validate_address(addr: &str) -> Result<(), Error> {
    let bad = |why: &str| Err(Error::new(ErrorKind::InvalidAddress, format!("{addr:?}: {why}")));
    if addr.is_empty() {
        return bad("empty address");
    }
    if addr.len() > MAX_ADDRESS_LEN {
        return bad("longer than 1024 bytes");
    }
    if addr.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return bad("contains whitespace or control characters");
    }
    if let Some(path) = addr.strip_prefix("unix/") {
        return if path.is_empty() { bad("empty unix socket path") } else { Ok(()) };
    }
    let Some((host, port)) = addr.rsplit_once(':') else {
        return bad("missing ':port'");
    };
    match port.parse::<u16>() {
        Ok(p) if p != 0 && !port.starts_with('+') => {}
        _ => return bad("port must be a number in 1..=65535"),
    }
    if let Some(inner) = host.strip_prefix('[') {
        let Some(v6) = inner.strip_suffix(']') else {
            return bad("unterminated '[' in IPv6 literal");
        };
        // A zone (`%eth0`) is allowed after the address, as in dial strings.
        let ip = v6.split_once('%').map_or(v6, |(ip, _)| ip);
        return match ip.parse::<Ipv6Addr>() {
            Ok(_) => Ok(()),
            Err(_) => bad("invalid IPv6 literal"),
        };
    }
    if host.contains(':') {
        return bad("IPv6 literals must be bracketed: [addr]:port");
    }
    if host.is_empty() {
        return bad("empty host");
    }
    if host.parse::<Ipv4Addr>().is_ok() {
        return Ok(());
    }
    if host.len() > 253 {
        return bad("host name longer than 253 bytes");
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    for label in host.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return bad("invalid host name");
        }
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return bad("invalid IPv4 literal");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dial_addresses() {
        for a in [
            "127.0.0.1:80",
            "localhost:8080",
            "backend-1.example.com:443",
            "example.com.:443",
            "[::1]:80",
            "[fe80::1%eth0]:80",
            "_srv-target.local:9000",
            "unix//run/app.sock",
        ] {
            assert_eq!(validate_address(a), Ok(()), "{a}");
        }
    }

    #[test]
    fn rejects_malformed_addresses_with_reason() {
        for (a, why) in [
            ("", "empty address"),
            ("127.0.0.1", "missing ':port'"),
            ("127.0.0.1:0", "port must be"),
            ("127.0.0.1:65536", "port must be"),
            ("127.0.0.1:+80", "port must be"),
            ("127.0.0.1:http", "port must be"),
            (":80", "empty host"),
            ("::1:80", "must be bracketed"),
            ("[::1:80", "unterminated"),
            ("[not-v6]:80", "invalid IPv6"),
            ("bad host:80", "whitespace"),
            ("a\u{0}b:80", "control"),
            ("-bad.example:80", "invalid host name"),
            ("a..b:80", "invalid host name"),
            ("999.1.1.1:80", "invalid IPv4"),
            ("unix/", "empty unix"),
        ] {
            let err = validate_address(a).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidAddress, "{a}");
            assert!(err.message().contains(why), "{a}: {}", err.message());
        }
        let long = format!("{}:80", "a".repeat(2000));
        assert!(validate_address(&long).unwrap_err().message().contains("1024"));
    }

    #[test]
    fn rejects_absurd_weights_limits_and_tiers() {
        let u = Upstream::new("h:1");
        assert_eq!(u.clone().weight(0).validate().unwrap_err().kind(), ErrorKind::InvalidWeight);
        assert_eq!(u.clone().weight(MAX_WEIGHT + 1).validate().unwrap_err().kind(), ErrorKind::InvalidWeight);
        assert!(u.clone().weight(MAX_WEIGHT).validate().is_ok());
        assert_eq!(
            u.clone().max_requests(MAX_REQUESTS_LIMIT + 1).validate().unwrap_err().kind(),
            ErrorKind::InvalidLimit
        );
        assert!(u.clone().max_requests(MAX_REQUESTS_LIMIT).validate().is_ok());
        assert_eq!(u.clone().tier(MAX_TIER + 1).validate().unwrap_err().kind(), ErrorKind::InvalidLimit);
        assert_eq!(u.limit(), MAX_REQUESTS_LIMIT);
        assert_eq!(u.max_requests(5).limit(), 5);
    }
}
