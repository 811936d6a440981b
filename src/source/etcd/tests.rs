use std::collections::BTreeMap;

use super::*;

fn settings(prefix: &str) -> Settings {
    Settings {
        endpoints: Vec::new(),
        prefix: prefix.as_bytes().to_vec(),
        version_key: format!("{prefix}.version").into_bytes(),
        timeout: DEFAULT_TIMEOUT,
        resync: DEFAULT_RESYNC,
        template: Upstream::new("").weight(2),
    }
}

fn kvs(pairs: &[(&str, &str)]) -> BTreeMap<Vec<u8>, Vec<u8>> {
    pairs.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec())).collect()
}

fn addresses(list: &[Upstream]) -> Vec<&str> {
    list.iter().map(|u| u.address.as_str()).collect()
}

#[test]
fn entries_are_ordered_by_key_then_endpoint_and_outside_keys_ignored() {
    let s = settings("/svc/");
    let list = upstreams(
        &s,
        &kvs(&[
            ("/svc/b", r#"{"endpoints":["http://10.0.0.3:80","10.0.0.4:80"]}"#),
            ("/svc/a", " 10.0.0.1:80\n"),
            ("/svc0", "10.9.9.9:80"),
            ("/other", "10.9.9.8:80"),
        ]),
    );
    assert_eq!(addresses(&list), ["10.0.0.1:80", "10.0.0.3:80", "10.0.0.4:80"]);
    assert!(list.iter().all(|u| u.weight == 2), "the template applies");
}

#[test]
fn version_key_selects_json_entries_of_that_version_only() {
    let s = settings("/svc/");
    let mut map = kvs(&[
        ("/svc/blue", r#"{"endpoints":["http://10.0.0.1:80"],"version":"blue"}"#),
        ("/svc/green", r#"{"endpoints":["http://10.0.0.2:80"],"version":"green"}"#),
        ("/svc/plain", "10.0.0.3:80"),
    ]);
    assert_eq!(addresses(&upstreams(&s, &map)), ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]);
    map.insert(b"/svc/.version".to_vec(), b"green".to_vec());
    assert_eq!(addresses(&upstreams(&s, &map)), ["10.0.0.2:80"]);
    map.insert(b"/svc/.version".to_vec(), b" ".to_vec());
    assert_eq!(upstreams(&s, &map).len(), 3, "an empty version selects everything");
}

#[test]
fn json_entries_carry_weight_max_requests_and_tier() {
    let s = settings("/svc/");
    let list = upstreams(&s, &kvs(&[("/svc/a", r#"{"endpoints":["h1:80"],"weight":5,"max_requests":10,"tier":1}"#)]));
    assert_eq!(list, [Upstream::new("h1:80").weight(5).max_requests(10).tier(1)]);
}

#[test]
fn bad_entries_are_refused_with_a_reason() {
    // `upstreams` logs these and skips them; the reasons are checked here, without logging.
    let template = Upstream::new("");
    for (value, why) in [
        ("not an address", "contains whitespace"),
        (r#"{"endpoints":"h:80"}"#, "endpoints: expected an array of strings"),
        (r#"{"endpoints":["h:80"],"colour":"red"}"#, "unknown field \"colour\""),
        (r#"{"endpoints":["ok:80","bad"]}"#, "endpoints[1]: \"bad\": missing ':port'"),
        (r#"{"endpoints":["h:80"],"weight":0}"#, "weight 0 of \"h:80\" is outside"),
        (r#"{"endpoints":["h:80"],"tier":-1}"#, "tier: expected a non-negative integer"),
        ("{broken", "invalid JSON"),
        ("\u{ff}", "missing ':port'"),
    ] {
        let err = parse_entry(value.as_bytes(), None, &template, &mut Vec::new()).unwrap_err();
        assert!(err.contains(why), "{value}: {err}");
    }
    assert_eq!(parse_entry(b"\xff", None, &template, &mut Vec::new()).unwrap_err(), "value is not UTF-8");
    let mut out = Vec::new();
    parse_entry(b"good:81", None, &template, &mut out).unwrap();
    assert_eq!(out, [Upstream::new("good:81")]);
}

#[test]
fn build_refuses_bad_configurations() {
    let e = Etcd::builder(Vec::<String>::new(), "/p/").build().unwrap_err();
    assert_eq!((e.kind(), e.message()), (ErrorKind::InvalidArgument, "etcd: no endpoints"));
    let e = Etcd::builder(["ftp://h:1"], "/p/").build().unwrap_err();
    assert_eq!(e.message(), "etcd endpoint \"ftp://h:1\": scheme \"ftp\" is not supported (only http)");
    let e = Etcd::builder(["h:1"], "/p/").timeout(Duration::ZERO).build().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidLimit);
    let e = Etcd::builder(["h:1"], "/p/").template(Upstream::new("").weight(0)).build().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidWeight);
}
