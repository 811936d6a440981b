use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use super::a::merge_families as merge;
use super::srv::{Record, order};
use super::{A, Cache, IpVersions, Srv, parse_resolver};
use crate::clock::{Clock, ManualClock};
use crate::error::ErrorKind;
use crate::upstream::Upstream;

fn rec(priority: u16, weight: u16, target: &str) -> Record {
    Record { priority, weight, target: target.to_owned(), port: 1 }
}

fn targets(records: &[Record]) -> Vec<&str> {
    records.iter().map(|r| r.target.as_str()).collect()
}

#[test]
fn srv_order_puts_lower_priorities_first_whatever_the_draw() {
    for seed in 0..500 {
        let mut records = vec![rec(20, 5, "c"), rec(10, 1, "a"), rec(30, 0, "d"), rec(10, 100, "b")];
        order(&mut records, &mut fastrand::Rng::with_seed(seed));
        let priorities: Vec<u16> = records.iter().map(|r| r.priority).collect();
        assert_eq!(priorities, [10, 10, 20, 30], "seed {seed}");
    }
}

#[test]
fn srv_order_keeps_the_server_order_when_all_weights_are_zero() {
    let mut records = vec![rec(1, 0, "x"), rec(1, 0, "y"), rec(1, 0, "z")];
    order(&mut records, &mut fastrand::Rng::with_seed(3));
    assert_eq!(targets(&records), ["x", "y", "z"]);
}

#[test]
fn srv_order_draws_the_first_record_in_proportion_to_weight() {
    // RFC 2782: zero weights first, then a draw in 0..=sum against the running sums.
    // Weights [0, 1, 3]: the running sums are 0, 1, 4 for a draw in 0..=4, so the
    // zero-weight record leads 1/5 of the time, the weight-1 record 1/5, the weight-3 one 3/5.
    let mut rng = fastrand::Rng::with_seed(42);
    let mut first = std::collections::HashMap::new();
    for _ in 0..10_000 {
        let mut records = vec![rec(1, 3, "heavy"), rec(1, 0, "zero"), rec(1, 1, "light")];
        order(&mut records, &mut rng);
        *first.entry(records[0].target.clone()).or_insert(0u32) += 1;
    }
    let share = |t: &str| first[t];
    // Expected 2000 / 2000 / 6000; the bounds are > 5 standard deviations (sd ~ 40 and 49).
    assert!((1800..=2200).contains(&share("zero")), "{first:?}");
    assert!((1800..=2200).contains(&share("light")), "{first:?}");
    assert!((5750..=6250).contains(&share("heavy")), "{first:?}");
}

#[test]
fn srv_order_is_reproducible_with_a_seed() {
    let draw = |seed| {
        let mut rng = fastrand::Rng::with_seed(seed);
        (0..50)
            .map(|_| {
                let mut records = vec![rec(1, 10, "a"), rec(1, 20, "b"), rec(1, 30, "c"), rec(2, 1, "d")];
                order(&mut records, &mut rng);
                targets(&records).join(",")
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(draw(9), draw(9));
    assert_ne!(draw(9), draw(10));
}

#[test]
fn resolvers_take_an_ip_with_an_optional_port() {
    assert_eq!(parse_resolver("10.0.0.53:5353").unwrap().to_string(), "10.0.0.53:5353");
    assert_eq!(parse_resolver("10.0.0.53").unwrap().to_string(), "10.0.0.53:53");
    assert_eq!(parse_resolver("[fd00::53]:5353").unwrap().to_string(), "[fd00::53]:5353");
    assert_eq!(parse_resolver("[fd00::53]").unwrap().to_string(), "[fd00::53]:53");
    assert_eq!(parse_resolver("fd00::53").unwrap().to_string(), "[fd00::53]:53");
    for bad in ["dns.example:53", "", "10.0.0.53:99999", "udp/10.0.0.53"] {
        assert_eq!(parse_resolver(bad).unwrap_err().kind(), ErrorKind::InvalidAddress, "{bad}");
    }
}

#[test]
fn builders_reject_what_cannot_work() {
    let kind = |r: Result<A, crate::Error>| r.unwrap_err().kind();
    assert_eq!(kind(A::builder("").build()), ErrorKind::InvalidAddress);
    assert_eq!(kind(A::builder("bad name").build()), ErrorKind::InvalidAddress);
    assert_eq!(kind(A::builder("ok.test").port(0).build()), ErrorKind::InvalidAddress);
    assert_eq!(kind(A::builder("ok.test").resolvers(["nameserver"]).build()), ErrorKind::InvalidAddress);
    assert_eq!(kind(A::builder("ok.test").timeout(Duration::ZERO).build()), ErrorKind::InvalidLimit);
    assert_eq!(kind(A::builder("192.0.2.1").versions(IpVersions::V6).build()), ErrorKind::InvalidArgument);
    assert!(A::builder("ok.test.").resolvers(["127.0.0.1"]).build().is_ok());

    let kind = |r: Result<Srv, crate::Error>| r.unwrap_err().kind();
    assert_eq!(kind(Srv::builder("").build()), ErrorKind::InvalidAddress);
    assert_eq!(kind(Srv::builder("10.0.0.1").build()), ErrorKind::InvalidAddress);
    assert_eq!(kind(Srv::builder("_a._tcp.ok.test").resolvers(["x"]).build()), ErrorKind::InvalidAddress);
    assert_eq!(Srv::service("http", "tcp", "ok.test").build().unwrap().name(), "_http._tcp.ok.test");
    assert_eq!(Srv::service("", "", "_x._udp.ok.test").build().unwrap().name(), "_x._udp.ok.test");
}

#[test]
fn cache_reuses_a_result_for_refresh_and_never_caches_a_failure() {
    let time = ManualClock::new();
    let cache = Cache::new(Clock::Manual(time.clone()), Duration::from_secs(10));
    let calls = Cell::new(0);
    let lookup = |result: Result<&str, &str>| {
        calls.set(calls.get() + 1);
        result.map(|a| vec![Upstream::new(a)]).map_err(Into::into)
    };
    let mut out = Vec::new();
    cache.fetch(&mut out, || lookup(Ok("a:1"))).unwrap();
    time.advance(Duration::from_secs(9));
    cache.fetch(&mut out, || lookup(Ok("b:1"))).unwrap();
    assert_eq!((out.len(), out[1].address.as_str(), calls.get()), (2, "a:1", 1));

    time.advance(Duration::from_secs(1));
    assert!(cache.fetch(&mut out, || lookup(Err("down"))).is_err());
    assert_eq!(out.len(), 2, "a failure appends nothing");
    cache.fetch(&mut out, || lookup(Ok("c:1"))).unwrap();
    assert_eq!((out[2].address.as_str(), calls.get()), ("c:1", 3), "the failure was not cached");
}

#[test]
fn both_families_merge_ipv4_first_and_survive_one_failing() {
    let v4 = |ips: &[u8]| Some(Ok(ips.iter().map(|&i| IpAddr::V4(Ipv4Addr::new(10, 0, 0, i))).collect()));
    let v6 =
        |ips: &[u16]| Some(Ok(ips.iter().map(|&i| IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, i))).collect()));
    let timeout = || Some(Err(hickory_resolver::ResolveError::from("request timed out")));
    let shown = |r: (Vec<IpAddr>, Option<String>)| (r.0.iter().map(ToString::to_string).collect::<Vec<_>>(), r.1);

    let (ips, failure) = shown(merge("n", v4(&[2, 1]), v6(&[1])).unwrap());
    assert_eq!((ips, failure), (vec!["10.0.0.2".into(), "10.0.0.1".into(), "fd00::1".into()], None));
    let (ips, failure) = shown(merge("n", v4(&[1]), timeout()).unwrap());
    assert_eq!(
        (ips, failure.as_deref()),
        (vec!["10.0.0.1".into()], Some("AAAA lookup of n failed: request timed out"))
    );
    let (ips, failure) = shown(merge("n", None, v6(&[3])).unwrap());
    assert_eq!((ips, failure), (vec!["fd00::3".into()], None));
    let err = merge("n", timeout(), timeout()).unwrap_err().to_string();
    assert_eq!(err, "A lookup of n failed: request timed out; AAAA lookup of n failed: request timed out");
}

#[test]
fn every_upstream_gets_the_template_but_its_own_address() {
    use crate::source::{Context, Source};
    let template = Upstream::new("ignored:1").weight(3).max_requests(100).tier(1).tag(7);
    let a = A::builder("192.0.2.7").port(8080).template(template.clone()).build().unwrap();
    let mut out = Vec::new();
    a.fetch(&Context::new(), &mut out).unwrap();
    assert_eq!(out, [Upstream { address: "192.0.2.7:8080".into(), ..template }]);

    let bad = Upstream::new("").weight(0);
    assert_eq!(A::builder("ok.test").template(bad.clone()).build().unwrap_err().kind(), ErrorKind::InvalidWeight);
    assert_eq!(Srv::builder("_a._tcp.ok.test").template(bad).build().unwrap_err().kind(), ErrorKind::InvalidWeight);
}

#[test]
fn a_cancelled_refresh_asks_no_server() {
    use crate::source::{CancelFlag, Context, fetch_checked};
    let flag = CancelFlag::new();
    flag.cancel();
    // Nothing listens on port 9: a lookup would time out after a second, not fail at once.
    let dead = ["127.0.0.1:9"];
    let a = A::builder("ok.test").resolvers(dead).timeout(Duration::from_secs(1)).retries(0).build().unwrap();
    let srv =
        Srv::builder("_a._tcp.ok.test").resolvers(dead).timeout(Duration::from_secs(1)).retries(0).build().unwrap();
    let mut out = Vec::new();
    assert_eq!(fetch_checked(&a, &Context::with_cancel(&flag), &mut out).unwrap_err().kind(), ErrorKind::Cancelled);
    assert_eq!(fetch_checked(&srv, &Context::with_cancel(&flag), &mut out).unwrap_err().kind(), ErrorKind::Cancelled);
}
