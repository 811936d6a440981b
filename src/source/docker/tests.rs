//! The listing's translation, the configuration and the host rules, without a daemon (the
//! real-daemon tests are in `tests/docker.rs`).

use std::time::Duration;

use super::api::{Summary, filters_query, upstreams};
use super::config::{DockerConfig, Values, socket_path};
use super::{Docker, Settings};
use crate::ErrorKind;
use crate::source::{Context, Source};
use crate::upstream::Upstream;

fn settings(port: Option<u16>, labels: &[(&str, &[&str])]) -> Settings {
    Settings {
        socket: "/nonexistent".into(),
        port,
        labels: labels.iter().map(|(k, v)| ((*k).to_owned(), v.iter().map(|s| (*s).to_owned()).collect())).collect(),
        refresh: Duration::from_secs(30),
        timeout: Duration::from_secs(5),
        debounce: Duration::from_millis(100),
        template: Upstream::new("").weight(3).tier(1),
    }
}

fn listing(json: &str) -> Vec<Summary> {
    serde_json::from_str(json).unwrap()
}

fn addresses(list: &[Upstream]) -> Vec<&str> {
    list.iter().map(|u| u.address.as_str()).collect()
}

/// A listing in the shape Podman 4.3 and Docker give (fields we do not read included).
const LISTING: &str = r#"[
  {"Id": "c3", "Names": ["/web-b"], "State": "running", "Status": "Up 1 second",
   "Labels": {"com.caddyserver.http.enable": "true", "com.caddyserver.http.upstream.port": "8080", "role": "web"},
   "NetworkSettings": {"Networks": {"zeta": {"IPAddress": "10.89.0.9"}, "alpha": {"IPAddress": "10.88.0.3", "GlobalIPv6Address": ""}}}},
  {"Id": "c1", "Names": ["/api"], "Labels": {"com.caddyserver.http.enable": "true", "com.caddyserver.http.upstream.port": "9000",
     "com.caddyserver.http.network": "back", "role": "api"},
   "NetworkSettings": {"Networks": {"podman": {"IPAddress": "10.88.0.4"}, "back": {"IPAddress": "10.90.0.4"}}}},
  {"Id": "c2", "Names": ["/compose-svc"], "Labels": {"com.caddyserver.http.enable": "true", "com.caddyserver.http.upstream.port": "81",
     "com.caddyserver.http.network": "web", "com.docker.compose.project": "shop", "role": "db"},
   "NetworkSettings": {"Networks": {"podman": {"IPAddress": "10.88.0.5"}, "shop_web": {"IPAddress": "10.91.0.5"}}}},
  {"Id": "c4", "Names": ["/no-port"], "Labels": {"com.caddyserver.http.enable": "true", "role": "web"},
   "NetworkSettings": {"Networks": {"podman": {"IPAddress": "10.88.0.6"}}}},
  {"Id": "c5", "Names": ["/v6-only"], "Labels": {"com.caddyserver.http.enable": "true", "com.caddyserver.http.upstream.port": "80"},
   "NetworkSettings": {"Networks": {"b": {"IPAddress": "", "GlobalIPv6Address": "fd00::7"}}}},
  {"Id": "c6", "Names": ["/no-net"], "Labels": {"com.caddyserver.http.enable": "true", "com.caddyserver.http.upstream.port": "80"},
   "NetworkSettings": {"Networks": {}}},
  {"Id": "c7", "Names": ["/wrong-net"], "Labels": {"com.caddyserver.http.enable": "true", "com.caddyserver.http.upstream.port": "80",
     "com.caddyserver.http.network": "missing"},
   "NetworkSettings": {"Networks": {"podman": {"IPAddress": "10.88.0.8"}}}},
  {"Id": "c8", "Names": ["/bad-port"], "Labels": {"com.caddyserver.http.enable": "true", "com.caddyserver.http.upstream.port": "http"},
   "NetworkSettings": {"Networks": {"podman": {"IPAddress": "10.88.0.9"}}}}
]"#;

#[test]
fn listing_yields_addresses_by_network_and_port_rules_in_name_order() {
    let list = upstreams(&settings(None, &[]), listing(LISTING));
    // api: its labelled network; compose-svc: <project>_<network>; v6-only: its global
    // IPv6 address; web-b: alpha before zeta. no-port, no-net, wrong-net, bad-port: skipped.
    assert_eq!(addresses(&list), ["10.90.0.4:9000", "10.91.0.5:81", "[fd00::7]:80", "10.88.0.3:8080"]);
    assert!(list.iter().all(|u| u.weight == 3 && u.tier == 1), "the template applies to every upstream");
}

#[test]
fn source_port_overrides_the_label_and_admits_containers_without_one() {
    let list = upstreams(&settings(Some(7000), &[]), listing(LISTING));
    assert_eq!(
        addresses(&list),
        ["10.90.0.4:7000", "10.88.0.9:7000", "10.91.0.5:7000", "10.88.0.6:7000", "[fd00::7]:7000", "10.88.0.3:7000"]
    );
}

#[test]
fn label_filter_ands_keys_and_ors_values() {
    let list = upstreams(&settings(Some(1), &[("role", &["web", "api"])]), listing(LISTING));
    assert_eq!(addresses(&list), ["10.90.0.4:1", "10.88.0.6:1", "10.88.0.3:1"]);
    let list = upstreams(
        &settings(Some(1), &[("role", &["web", "api"]), ("com.caddyserver.http.network", &[])]),
        listing(LISTING),
    );
    assert_eq!(addresses(&list), ["10.90.0.4:1"], "a key with no values requires the key, any value");
}

#[test]
fn filters_are_percent_encoded_json() {
    assert_eq!(
        filters_query(&serde_json::json!({"type": ["container"]})),
        "?filters=%7B%22type%22%3A%5B%22container%22%5D%7D"
    );
}

#[test]
fn config_reads_caddy_json() {
    let c: DockerConfig = serde_json::from_str(
        r#"{"labels": {"role": ["web", "api"], "env": "prod"}, "port": "8080", "host": "unix:///run/p.sock",
            "refresh": "1m30s", "timeout": 2000000000}"#,
    )
    .unwrap();
    assert_eq!(c.labels["role"], Values(vec!["web".into(), "api".into()]));
    assert_eq!(c.labels["env"], Values(vec!["prod".into()]));
    assert_eq!(c.port, Some(8080));
    assert_eq!(c.host.as_deref(), Some("unix:///run/p.sock"));
    assert_eq!(c.refresh, Some(Duration::from_secs(90)));
    assert_eq!(c.timeout, Some(Duration::from_secs(2)));
    assert_eq!(c.build().unwrap().socket(), "/run/p.sock");
    let numeric: DockerConfig = serde_json::from_str(r#"{"port": 81}"#).unwrap();
    assert_eq!(numeric.port, Some(81));
}

#[test]
fn config_rejects_unknown_fields_and_bad_values() {
    let err = |json: &str| serde_json::from_str::<DockerConfig>(json).unwrap_err().to_string();
    assert!(err(r#"{"prot": "80"}"#).starts_with("unknown field `prot`"), "{}", err(r#"{"prot": "80"}"#));
    assert!(err(r#"{"port": "0"}"#).starts_with("port 0: expected 1 to 65535"));
    assert!(err(r#"{"port": "http"}"#).starts_with("port \"http\": expected 1 to 65535"));
    assert!(err(r#"{"port": 70000}"#).starts_with("port 70000: expected 1 to 65535"));
    assert!(
        err(r#"{"refresh": "soon"}"#).starts_with("\"soon\": expected a duration"),
        "{}",
        err(r#"{"refresh": "soon"}"#)
    );
    assert!(err(r#"{"labels": {"a": 1}}"#).starts_with("a string or a list of strings"));
}

#[test]
fn host_must_be_a_unix_socket() {
    assert_eq!(socket_path("unix:///var/run/docker.sock").unwrap(), "/var/run/docker.sock");
    for bad in ["tcp://127.0.0.1:2375", "unix://relative.sock", "/var/run/docker.sock", ""] {
        assert_eq!(socket_path(bad).unwrap_err().kind(), ErrorKind::InvalidArgument, "{bad:?}");
    }
    assert_eq!(Docker::builder().host("tcp://h:1").build().unwrap_err().kind(), ErrorKind::InvalidArgument);
    assert_eq!(Docker::builder().host("unix:///s").port(0).build().unwrap_err().kind(), ErrorKind::InvalidLimit);
    assert_eq!(
        Docker::builder().host("unix:///s").refresh(Duration::ZERO).build().unwrap_err().kind(),
        ErrorKind::InvalidLimit
    );
    for too_long in [super::MAX_DURATION + Duration::from_nanos(1), Duration::MAX] {
        let b = || Docker::builder().host("unix:///s");
        assert_eq!(b().refresh(too_long).build().unwrap_err().kind(), ErrorKind::InvalidLimit);
        assert_eq!(b().timeout(too_long).build().unwrap_err().kind(), ErrorKind::InvalidLimit);
        assert_eq!(b().debounce(too_long).build().unwrap_err().kind(), ErrorKind::InvalidLimit);
    }
    let json: DockerConfig = serde_json::from_str(r#"{"host": "unix:///s", "refresh": 18446744073709551615}"#).unwrap();
    assert_eq!(json.build().unwrap_err().kind(), ErrorKind::InvalidLimit);
    assert_eq!(
        Docker::builder().host("unix:///s").template(Upstream::new("").weight(0)).build().unwrap_err().kind(),
        ErrorKind::InvalidWeight
    );
}

#[test]
#[cfg_attr(miri, ignore = "opens sockets")]
fn unreachable_daemon_is_the_fetch_error() {
    let dir = std::env::temp_dir().join(format!("leastconn-docker-unit-{}", std::process::id()));
    let source = Docker::builder().host(format!("unix://{}/absent.sock", dir.display())).build().unwrap();
    let mut out = vec![Upstream::new("10.0.0.1:1")];
    let err = source.fetch(&Context::new(), &mut out).unwrap_err().to_string();
    assert!(err.starts_with(&format!("docker daemon at {}/absent.sock: cannot connect: ", dir.display())), "{err}");
    assert_eq!(out.len(), 1, "nothing appended on error");
}

/// A fake daemon on a Unix socket: an event stream that stays open and silent, and a
/// listing that fails with a 500 the first `failures` times it is asked.
struct FakeDaemon {
    dir: std::path::PathBuf,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeDaemon {
    fn start(test: &str, failures: usize, listing: &'static str) -> Self {
        use std::io::{BufRead, BufReader, Write};
        use std::sync::atomic::Ordering;
        let dir = std::env::temp_dir().join(format!("leastconn-docker-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let listener = std::os::unix::net::UnixListener::bind(dir.join("d.sock")).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = std::sync::Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut streams = Vec::new(); // event streams stay open until the daemon stops
            let mut lists = 0;
            for conn in listener.incoming() {
                // Relaxed: the flag is only a request to stop; the connect that follows it wakes us.
                if stopping.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(mut conn) = conn else { continue };
                let mut line = String::new();
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let path = line.split(' ').nth(1).unwrap_or("").to_owned();
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).map_or(true, |n| n == 0) || header == "\r\n" {
                        break;
                    }
                }
                if path.starts_with("/v1.41/events") {
                    let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
                    streams.push(conn);
                    continue;
                }
                let (status, body) = if path.contains("health") {
                    ("200 OK", "[]")
                } else {
                    lists += 1;
                    if lists <= failures {
                        ("500 Internal Server Error", r#"{"message":"boom"}"#)
                    } else {
                        ("200 OK", listing)
                    }
                };
                let response =
                    format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                let _ = conn.write_all(response.as_bytes());
            }
        });
        FakeDaemon { dir, stop, thread: Some(thread) }
    }

    fn host(&self) -> String {
        format!("unix://{}", self.dir.join("d.sock").display())
    }
}

impl Drop for FakeDaemon {
    fn drop(&mut self) {
        // Relaxed: the connect below is what wakes the accept loop, which then reads the flag.
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = std::os::unix::net::UnixStream::connect(self.dir.join("d.sock"));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
#[cfg_attr(miri, ignore = "opens sockets")]
fn failed_listing_is_retried_while_the_event_stream_stays_up() {
    const ONE: &str = r#"[{"Id": "c1", "Names": ["/a"], "Labels": {"com.caddyserver.http.enable": "true"},
        "NetworkSettings": {"Networks": {"podman": {"IPAddress": "10.88.0.2"}}}}]"#;
    let daemon = FakeDaemon::start("retry", 1, ONE);
    // No events ever come and the periodic re-list is an hour away: only the retry helps.
    let source = Docker::builder().host(daemon.host()).port(80).refresh(Duration::from_secs(3600)).build().unwrap();
    // The first listing failed (whether or not this fetch saw it before the retry): a fetch
    // can only succeed through a second one.
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        out.clear();
        if source.fetch(&Context::new(), &mut out).is_ok() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the failed listing was never retried");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(addresses(&out), ["10.88.0.2:80"]);
    drop(source);
}

#[test]
#[cfg_attr(miri, ignore = "opens sockets")]
fn daemon_error_status_is_the_fetch_error_with_its_message() {
    let daemon = FakeDaemon::start("status", usize::MAX, "[]");
    let source = Docker::builder().host(daemon.host()).build().unwrap();
    let err = source.fetch(&Context::new(), &mut Vec::new()).unwrap_err().to_string();
    let prefix = format!("docker daemon at {}/d.sock: GET /containers/json?filters=", daemon.dir.display());
    assert!(err.starts_with(&prefix), "{err}");
    assert!(err.ends_with(": 500 Internal Server Error: boom"), "{err}");
}
