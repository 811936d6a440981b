//! The Caddy JSON loader: handlers as `caddy adapt` prints them, and malformed ones with the
//! exact error each gives. (An integration test, not a unit test: loading logs, and the unit
//! tests include one that captures every log record of the process.)

// The sources and the loader are left out of loom builds (see Cargo.toml).
#![cfg(not(loom))]

use leastconn::config::{handler_from_json, source_from_json};
use leastconn::source::{Context, Source};
use leastconn::{ErrorKind, Outcome, Policy, Pool, Upstream};

/// `caddy adapt` output (the `reverse_proxy` handler object) of realistic Caddyfiles.
const LOADS: &[(&str, &str)] = &[
    (
        // reverse_proxy 10.0.0.1:8080 10.0.0.2:8080
        "plain list",
        r#"{"handler":"reverse_proxy","upstreams":[{"dial":"10.0.0.1:8080"},{"dial":"10.0.0.2:8080"}]}"#,
    ),
    (
        // reverse_proxy 10.0.0.1:8080 10.0.0.2:8080 {
        //     lb_policy least_conn
        //     lb_retries 2
        //     lb_try_duration 5s
        //     fail_duration 30s
        //     max_fails 3
        //     unhealthy_request_count 100
        //     unhealthy_status 5xx
        //     header_up Host {upstream_hostport}
        //     transport http { dial_timeout 2s }
        // }
        "least_conn with passive health, retries, headers and transport",
        r#"{"handler":"reverse_proxy","headers":{"request":{"set":{"Host":["{http.reverse_proxy.upstream.hostport}"]}}},
            "health_checks":{"passive":{"fail_duration":30000000000,"max_fails":3,"unhealthy_request_count":100,"unhealthy_status":[5]}},
            "load_balancing":{"retries":2,"selection_policy":{"policy":"least_conn"},"try_duration":5000000000},
            "transport":{"dial_timeout":2000000000,"protocol":"http"},
            "upstreams":[{"dial":"10.0.0.1:8080"},{"dial":"10.0.0.2:8080"}]}"#,
    ),
    (
        // reverse_proxy {
        //     dynamic multi {
        //         a api.internal 8080 { refresh 30s; resolvers 10.0.0.53 }
        //         srv _api._tcp.internal { refresh 1m; grace_period 30s }
        //     }
        //     lb_policy first
        // }
        "dynamic multi of a and srv",
        r#"{"dynamic_upstreams":{"source":"multi","sources":[
              {"name":"api.internal","port":"8080","refresh":30000000000,"resolver":{"addresses":["10.0.0.53"]},"source":"a"},
              {"grace_period":30000000000,"name":"_api._tcp.internal","refresh":60000000000,"source":"srv"}]},
            "handler":"reverse_proxy","load_balancing":{"selection_policy":{"policy":"first"}}}"#,
    ),
    (
        // reverse_proxy 10.0.0.9:80 {
        //     dynamic srv { service api; proto tcp; name internal; resolvers udp/10.0.0.53:53; dial_timeout 1s }
        //     lb_policy random_choose 2
        //     health_checks active (ignored)
        // }
        "srv by parts with a static fallback, random_choose 2 and active checks",
        r#"{"dynamic_upstreams":{"dial_timeout":1000000000,"name":"internal","proto":"tcp",
              "resolver":{"addresses":["udp/10.0.0.53:53"]},"service":"api","source":"srv"},
            "handler":"reverse_proxy","health_checks":{"active":{"uri":"/health","interval":10000000000}},
            "load_balancing":{"selection_policy":{"choose":2,"policy":"random_choose"}},
            "upstreams":[{"dial":"10.0.0.9:80"}]}"#,
    ),
    (
        "nested multi with etcd, extensions and string durations",
        r#"{"handler":"reverse_proxy","dynamic_upstreams":{"source":"multi","grace":"1m30s","sources":[
              {"source":"a","name":"10.0.0.1","port":"80","versions":{"ipv4":true},"weight":2,"tier":0},
              {"source":"multi","sources":[
                 {"source":"etcd","endpoints":["http://127.0.0.1:2379"],"key":"/services/api/","timeout":"500ms","tier":1,"grace":"30s"}]}]}}"#,
    ),
    (
        // reverse_proxy { dynamic docker } with the module's `labels` and `port`, plus our
        // socket, timeouts and template extensions
        "docker with labels, port and extensions",
        r#"{"handler":"reverse_proxy","dynamic_upstreams":{"source":"docker","labels":{"com.example.role":["web","api"],"com.example.env":"prod"},
              "port":"8080","host":"unix:///run/podman/podman.sock","refresh":"30s","timeout":5000000000,"weight":3,"max_requests":50,"grace":"1m"}}"#,
    ),
];

#[test]
fn caddy_adapt_outputs_load() {
    for (name, json) in LOADS {
        if let Err(e) = handler_from_json(json) {
            panic!("{name}: {e}");
        }
    }
}

#[test]
#[cfg_attr(miri, ignore = "tens of thousands of loads: far too slow under Miri, and the loader has no unsafe code")]
fn no_prefix_and_no_retyped_field_of_a_loading_handler_panics() {
    for (name, json) in LOADS {
        let cut = (0..json.len()).filter(|&n| json.is_char_boundary(n));
        for n in cut {
            assert!(handler_from_json(&json[..n]).is_err(), "{name}: a prefix of {n} bytes loaded");
        }
        // Every value of every field replaced by each JSON type in turn.
        let doc: serde_json::Value = serde_json::from_str(json).unwrap();
        let mut paths = Vec::new();
        collect_paths(&doc, &mut Vec::new(), &mut paths);
        for path in &paths {
            for replacement in [
                serde_json::json!(null),
                serde_json::json!(7),
                serde_json::json!("x"),
                serde_json::json!([1]),
                serde_json::json!({"a": 1}),
                serde_json::json!(-1.5),
            ] {
                let mut changed = doc.clone();
                *pointer(&mut changed, path) = replacement;
                let _ = handler_from_json(&changed.to_string());
            }
        }
    }
}

fn collect_paths(v: &serde_json::Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let children: Vec<(String, &serde_json::Value)> = match v {
        serde_json::Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), v)).collect(),
        serde_json::Value::Array(a) => a.iter().enumerate().map(|(i, v)| (i.to_string(), v)).collect(),
        _ => Vec::new(),
    };
    for (key, child) in children {
        at.push(key);
        out.push(at.clone());
        collect_paths(child, at, out);
        at.pop();
    }
}

fn pointer<'a>(v: &'a mut serde_json::Value, path: &[String]) -> &'a mut serde_json::Value {
    path.iter().fold(v, |v, key| match v {
        serde_json::Value::Object(m) => m.get_mut(key).unwrap(),
        serde_json::Value::Array(a) => &mut a[key.parse::<usize>().unwrap()],
        _ => unreachable!("paths lead through containers"),
    })
}

fn pool(json: &str) -> Pool {
    Pool::from_caddy_json(json).unwrap()
}

#[test]
fn static_upstreams_policy_and_extensions_are_read() {
    let p = pool(
        r#"{"upstreams":[{"dial":"10.0.0.1:80","max_requests":5,"weight":3},{"dial":"10.0.0.2:80","tier":1}],
            "load_balancing":{"selection_policy":{"policy":"first"}}}"#,
    );
    assert_eq!(p.policy(), Policy::First);
    assert_eq!(
        p.upstreams(),
        [Upstream::new("10.0.0.1:80").max_requests(5).weight(3), Upstream::new("10.0.0.2:80").tier(1)]
    );
    let p = pool(r#"{"upstreams":[{"dial":"h:1"}],"load_balancing":{"selection_policy":{"policy":"random_choose"}}}"#);
    assert_eq!(p.policy(), Policy::P2c);
    assert_eq!(pool(r#"{"upstreams":[{"dial":"h:1"}]}"#).policy(), Policy::LeastConn);
}

#[test]
fn unhealthy_request_count_caps_max_requests_of_every_upstream() {
    let p = pool(
        r#"{"upstreams":[{"dial":"10.0.0.1:80"},{"dial":"10.0.0.2:80","max_requests":2},{"dial":"10.0.0.3:80","max_requests":9}],
            "health_checks":{"passive":{"unhealthy_request_count":4}}}"#,
    );
    let limits: Vec<_> = p.upstreams().iter().map(|u| u.max_requests).collect();
    assert_eq!(limits, [4, 2, 4]);
}

#[test]
fn passive_health_counts_failures_only_with_a_fail_duration() {
    let one_host =
        |health: &str| pool(&format!(r#"{{"upstreams":[{{"dial":"10.0.0.1:80"}}],"health_checks":{health}}}"#));
    let counted = one_host(r#"{"passive":{"fail_duration":"30s"}}"#);
    counted.select().unwrap().release(Outcome::Failure);
    assert_eq!(counted.select().unwrap_err().kind(), ErrorKind::NoUpstream, "max_fails defaults to 1");
    let two = one_host(r#"{"passive":{"fail_duration":"30s","max_fails":2}}"#);
    two.select().unwrap().release(Outcome::Failure);
    assert!(two.select().is_ok());
    for off in [r#"{"passive":{"max_fails":1}}"#, r#"{}"#] {
        let p = one_host(off);
        p.select().unwrap().release(Outcome::Failure);
        assert!(p.select().is_ok(), "{off}: failures are not counted");
    }
}

#[test]
#[cfg_attr(miri, ignore = "opens sockets (the etcd source)")]
fn the_static_list_is_the_fallback_of_a_failing_dynamic_source() {
    let p = pool(
        r#"{"upstreams":[{"dial":"10.9.0.1:80"}],
            "dynamic_upstreams":{"source":"etcd","endpoints":["http://127.0.0.1:1"],"key":"/x/","timeout":"2s"}}"#,
    );
    assert_eq!(p.upstreams(), [Upstream::new("10.9.0.1:80")]);
    let p = pool(
        r#"{"upstreams":[{"dial":"10.9.0.1:80"}],"dynamic_upstreams":{"source":"a","name":"10.0.0.7","port":"81"}}"#,
    );
    assert_eq!(p.upstreams(), [Upstream::new("10.0.0.7:81")], "a working dynamic source replaces the list");
}

#[test]
fn a_static_source_holds_a_fixed_list_inside_multi() {
    let p = pool(
        r#"{"dynamic_upstreams":{"source":"multi","sources":[
              {"source":"static","upstreams":[{"dial":"10.0.0.1:80","weight":2},{"dial":"unix//run/app.sock"}]},
              {"source":"a","name":"10.0.0.3","port":"81"}]}}"#,
    );
    assert_eq!(
        p.upstreams(),
        [Upstream::new("10.0.0.1:80").weight(2), Upstream::new("unix//run/app.sock"), Upstream::new("10.0.0.3:81")]
    );
}

#[test]
fn sources_load_on_their_own() {
    let s = source_from_json(r#"{"source":"multi","sources":[{"source":"a","name":"10.0.0.1","weight":4},{"source":"a","name":"::1","port":"8080"}]}"#)
        .unwrap();
    let mut out = Vec::new();
    s.fetch(&Context::new(), &mut out).unwrap();
    assert_eq!(out, [Upstream::new("10.0.0.1:80").weight(4), Upstream::new("[::1]:8080")]);
}

#[test]
#[cfg_attr(miri, ignore = "opens sockets (the docker source)")]
fn a_docker_source_whose_daemon_is_absent_is_skipped_inside_multi() {
    let dir = std::env::temp_dir().join(format!("leastconn-json-docker-{}", std::process::id()));
    let json = format!(
        r#"{{"source":"multi","sources":[{{"source":"static","upstreams":[{{"dial":"10.0.0.1:80"}}]}},
             {{"source":"docker","host":"unix://{}/absent.sock","port":80,"timeout":"1s"}}]}}"#,
        dir.display()
    );
    let s = source_from_json(&json).unwrap();
    let mut out = Vec::new();
    s.fetch(&Context::new(), &mut out).unwrap();
    assert_eq!(out, [Upstream::new("10.0.0.1:80")]);
}

/// Malformed handlers and the exact error each gives.
const ERRORS: &[(&str, &str)] = &[
    ("", "invalid JSON: EOF while parsing a value at line 1 column 0"),
    ("[]", "expected an object"),
    ("{}", "no upstreams: set upstreams or dynamic_upstreams"),
    (r#"{"handler":"file_server"}"#, r#"handler: "file_server": expected "reverse_proxy""#),
    (r#"{"upstreams":[{"dial":"h:1"}],"circuit_breaker":{}}"#, "circuit_breaker: unknown field"),
    (r#"{"upstreams":{"dial":"h:1"}}"#, "upstreams: expected an array"),
    (r#"{"upstreams":["h:1"]}"#, "upstreams[0]: expected an object"),
    (r#"{"upstreams":[{"dial":"h:1","colour":"red"}]}"#, "upstreams[0].colour: unknown field"),
    (r#"{"upstreams":[{"max_requests":1}]}"#, "upstreams[0].dial: required"),
    (r#"{"upstreams":[{"dial":"10.0.0.1"}]}"#, r#"upstreams[0].dial: "10.0.0.1": missing ':port'"#),
    (
        r#"{"upstreams":[{"dial":"h:1","max_requests":-1}]}"#,
        "upstreams[0].max_requests: expected an integer from 0 to 4294967295",
    ),
    (r#"{"upstreams":[{"dial":"h:1","weight":0}]}"#, "upstreams[0].weight: 0 is outside 1..=1000000"),
    (r#"{"upstreams":[{"dial":"h:1","tier":256}]}"#, "upstreams[0].tier: 256 is outside 0..=255"),
    (
        r#"{"dynamic_upstreams":{"source":"multi","sources":[{"source":"a","name":"10.0.0.1"},{"source":"a","name":"10.0.0.2","port":8080}]}}"#,
        "dynamic_upstreams.sources[1].port: expected a string",
    ),
    (
        r#"{"dynamic_upstreams":{"source":"a","name":"10.0.0.2","port":"http"}}"#,
        r#"dynamic_upstreams.port: "http": expected a port number from 1 to 65535"#,
    ),
    (
        r#"{"dynamic_upstreams":{"source":"consul","service":"web"}}"#,
        r#"dynamic_upstreams.source: unknown source "consul" (known: multi, static, a, srv, docker, etcd)"#,
    ),
    (
        r#"{"dynamic_upstreams":{"source":"docker","labels":{"role":["web",1]}}}"#,
        "dynamic_upstreams.labels.role[1]: expected a string",
    ),
    (
        r#"{"dynamic_upstreams":{"source":"docker","labels":["role"]}}"#,
        "dynamic_upstreams.labels: expected an object of label keys to accepted values",
    ),
    (
        r#"{"dynamic_upstreams":{"source":"docker","port":"0"}}"#,
        r#"dynamic_upstreams.port: "0": expected a port number from 1 to 65535"#,
    ),
    (r#"{"dynamic_upstreams":{"source":"docker","network":"web"}}"#, "dynamic_upstreams.network: unknown field"),
    (
        r#"{"dynamic_upstreams":{"source":"docker","labels":{"role":1}}}"#,
        "dynamic_upstreams.labels.role: expected a string or a list of strings",
    ),
    (
        r#"{"dynamic_upstreams":{"source":"docker","port":70000}}"#,
        r#"dynamic_upstreams.port: "70000": expected a port number from 1 to 65535"#,
    ),
    (r#"{"dynamic_upstreams":{"source":"docker","port":true}}"#, "dynamic_upstreams.port: expected a string"),
    (
        r#"{"dynamic_upstreams":{"source":"docker","refresh":"0s"}}"#,
        "dynamic_upstreams: docker refresh and timeout must be above 0",
    ),
    (r#"{"dynamic_upstreams":{"source":"docker","weight":0}}"#, "dynamic_upstreams.weight: 0 is outside 1..=1000000"),
    (
        r#"{"dynamic_upstreams":{"source":"a","name":"h","resolver":{"addresses":["10.0.0.53"],"timeout":"1s"}}}"#,
        "dynamic_upstreams.resolver.timeout: unknown field",
    ),
    (
        r#"{"dynamic_upstreams":{"source":"docker","host":"tcp://10.0.0.1:2375"}}"#,
        r#"dynamic_upstreams: docker host "tcp://10.0.0.1:2375": expected a Unix socket, unix:///path (tcp:// and ssh:// are not supported)"#,
    ),
    (r#"{"dynamic_upstreams":{"name":"x"}}"#, "dynamic_upstreams.source: required"),
    (
        r#"{"dynamic_upstreams":{"source":"static","upstreams":[{"dial":"h:1"},{"dial":"h"}]}}"#,
        r#"dynamic_upstreams.upstreams[1].dial: "h": missing ':port'"#,
    ),
    (
        r#"{"dynamic_upstreams":{"source":"multi","sources":[{"source":"multi","sources":[{"source":"a","name":"h"},{}]}]}}"#,
        "dynamic_upstreams.sources[0].sources[1].source: required",
    ),
    (
        r#"{"dynamic_upstreams":{"source":"a","name":"h","refresh":"30 s"}}"#,
        r#"dynamic_upstreams.refresh: "30 s": expected a duration: nanoseconds, or a string such as "30s" or "1m30s""#,
    ),
    (
        r#"{"dynamic_upstreams":{"source":"a","name":"h","versions":{"ipv4":false}}}"#,
        "dynamic_upstreams.versions: at least one of ipv4 and ipv6 must be true",
    ),
    (
        r#"{"dynamic_upstreams":{"source":"srv","service":"api","name":"internal"}}"#,
        "dynamic_upstreams: service and proto go together: set both or neither",
    ),
    (
        r#"{"dynamic_upstreams":{"source":"a","name":"bad name"}}"#,
        r#"dynamic_upstreams: "bad name:80": contains whitespace or control characters"#,
    ),
    (r#"{"dynamic_upstreams":{"source":"etcd","endpoints":["http://h:2379"]}}"#, "dynamic_upstreams.key: required"),
    (
        r#"{"dynamic_upstreams":{"source":"etcd","endpoints":["https://h:2379"],"key":"/k/"}}"#,
        r#"dynamic_upstreams: etcd endpoint "https://h:2379": scheme "https" is not supported (only http)"#,
    ),
    (r#"{"dynamic_upstreams":{"source":"etcd","key":"/k/"}}"#, "dynamic_upstreams: etcd: no endpoints"),
    (
        r#"{"dynamic_upstreams":{"source":"etcd","endpoints":["http://h:2379"],"key":"/k/","resync":0}}"#,
        "dynamic_upstreams: etcd: timeout and resync must be above 0",
    ),
    (
        r#"{"dynamic_upstreams":{"source":"etcd","endpoints":["http://h:2379"],"key":"/k/","tier":256}}"#,
        "dynamic_upstreams.tier: 256 is outside 0..=255",
    ),
    (
        r#"{"dynamic_upstreams":{"source":"etcd","endpoints":[2379],"key":"/k/"}}"#,
        "dynamic_upstreams.endpoints[0]: expected a string",
    ),
    (
        r#"{"upstreams":[{"dial":"h:1"}],"load_balancing":{"selection_policy":{"policy":"round_robin"}}}"#,
        r#"load_balancing.selection_policy.policy: "round_robin" is not supported (least_conn, first, random_choose)"#,
    ),
    (
        r#"{"upstreams":[{"dial":"h:1"}],"load_balancing":{"selection_policy":{"policy":"random_choose","choose":3}}}"#,
        "load_balancing.selection_policy.choose: 3: only 2 is supported",
    ),
    (
        r#"{"upstreams":[{"dial":"h:1"}],"load_balancing":{"selection_policy":{"policy":"first","choose":2}}}"#,
        "load_balancing.selection_policy.choose: only random_choose takes choose",
    ),
    (r#"{"upstreams":[{"dial":"h:1"}],"load_balancing":{"tries":3}}"#, "load_balancing.tries: unknown field"),
    (
        r#"{"upstreams":[{"dial":"h:1"}],"health_checks":{"passive":{"fail_duration":"10s","max_fails":5000}}}"#,
        "health_checks.passive.max_fails: 5000 is above 1024",
    ),
    (
        r#"{"upstreams":[{"dial":"h:1"}],"health_checks":{"passive":{"fail_duration":true}}}"#,
        r#"health_checks.passive.fail_duration: expected a duration: nanoseconds, or a string such as "30s" or "1m30s""#,
    ),
];

#[test]
fn malformed_handlers_give_the_exact_error() {
    for (json, want) in ERRORS {
        match handler_from_json(json) {
            Ok(_) => panic!("{json}: loaded, expected {want:?}"),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{json}");
                assert_eq!(e.message(), *want, "{json}");
            }
        }
    }
}
