//! The `etcd` source against a real etcd: a single-node server started by each test on free
//! loopback ports with its data in a temporary directory, stopped by PID and removed when the
//! test ends, also on failure.
//!
//! Without `etcd` in `PATH` (Debian: `etcd-server`, installed by `.ci/install.sh`) the tests
//! print "SKIPPED: etcd not found" to the terminal, and fail under `CI=true`. The last two
//! tests need no etcd: one finds nothing listening, the other talks to a fake gateway.

// The sources and the loader are left out of loom builds (see Cargo.toml).
#![cfg(not(loom))]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use leastconn::etcd::Etcd;
use leastconn::source::{Context, Source};
use leastconn::{Grace, Multi, Outcome, Pool, Static};

/// A bound on waits for a condition (a broken setup, not a synchronisation delay: every wait
/// polls for its condition and returns as soon as it holds).
const BOUND: Duration = Duration::from_secs(30);
/// The etcd source's per-call timeout (and its first fetch's wait) in these tests: generous,
/// so that a loaded machine never turns a slow answer into a failure.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);

struct Etcd1 {
    dir: PathBuf,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
}

fn etcd_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join("etcd")).find(|p| p.is_file())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Etcd1 {
    /// Starts a server, or `None` (after saying so) when etcd is not installed.
    fn start(test: &str) -> Option<Etcd1> {
        if etcd_binary().is_none() {
            let msg = format!("SKIPPED: etcd not found in PATH; {test} needs it (Debian package etcd-server)");
            // Straight to the terminal: libtest would swallow an eprintln! from a passing test.
            let _ = writeln!(std::io::stderr(), "{msg}");
            assert!(std::env::var_os("CI").is_none(), "{msg}");
            return None;
        }
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("leastconn-etcd-{}-{n}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = Etcd1 { dir, client_port: 0, peer_port: 0, child: None };
        // A free port now may be taken by the time etcd binds it: try a few.
        for _ in 0..10 {
            server.client_port = free_port();
            server.peer_port = free_port();
            if server.launch() {
                return Some(server);
            }
        }
        panic!("etcd would not start on any of 10 port pairs");
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// Runs etcd on the chosen ports with the test's data dir; waits until `/health` says
    /// true. False if it exited first.
    fn launch(&mut self) -> bool {
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::File::create(self.dir.join("etcd.log")).unwrap();
        let child = Command::new(etcd_binary().unwrap())
            .args(["--name", "t1", "--data-dir"])
            .arg(self.dir.join("data"))
            .args(["--listen-client-urls", &self.url(), "--advertise-client-urls", &self.url()])
            .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("t1={peer}"), "--initial-cluster-state", "new"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawning etcd");
        self.child = Some(child);
        let deadline = Instant::now() + BOUND;
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                let log = std::fs::read_to_string(self.dir.join("etcd.log")).unwrap_or_default();
                let _ = writeln!(std::io::stderr(), "etcd exited ({status}); retrying on other ports:\n{log}");
                self.child = None;
                return false;
            }
            if http(self.client_port, "GET", "/health", "").is_ok_and(|r| r.contains(r#""health":"true""#)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("etcd was not healthy within {BOUND:?}");
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same ports and data.
    fn restart(&mut self) {
        self.stop();
        assert!(self.launch(), "etcd would not restart on its ports");
    }

    fn put(&self, key: &str, value: &str) {
        let body = format!(r#"{{"key":"{}","value":"{}"}}"#, B64.encode(key), B64.encode(value));
        http(self.client_port, "POST", "/v3/kv/put", &body).unwrap();
    }

    fn delete(&self, key: &str) {
        http(self.client_port, "POST", "/v3/kv/deleterange", &format!(r#"{{"key":"{}"}}"#, B64.encode(key))).unwrap();
    }
}

impl Drop for Etcd1 {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One HTTP/1.0 exchange; the body of a 200 answer.
fn http(port: u16, method: &str, path: &str, body: &str) -> Result<String, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n{body}", body.len())
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).map_err(|e| e.to_string())?;
    match answer.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200") => {
            Ok(body.to_owned())
        }
        _ => Err(answer),
    }
}

fn fetch(source: &dyn Source) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    source.fetch(&Context::new(), &mut out).map_err(|e| e.to_string())?;
    Ok(out.into_iter().map(|u| u.address).collect())
}

/// Polls `f` until it returns `Some`, within `BOUND`.
fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + BOUND;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "not within {BOUND:?}: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn wait_for_list(source: &dyn Source, want: &[&str]) {
    eventually(&format!("list {want:?}"), || (fetch(source).ok()? == want).then_some(()));
}

#[test]
#[cfg_attr(miri, ignore = "runs etcd and opens sockets")]
fn initial_list_is_ordered_by_key_then_endpoint_in_both_forms() {
    let Some(server) = Etcd1::start("initial") else { return };
    server.put("/svc/b", r#"{"endpoints":["http://10.0.0.3:80","http://10.0.0.4:80"],"weight":3,"tier":1}"#);
    server.put("/svc/a", "10.0.0.1:80");
    server.put("/svc/c", "10.0.0.5:80");
    server.put("/svcx", "10.9.9.9:80");
    let etcd = Etcd::builder([server.url()], "/svc/").timeout(CALL_TIMEOUT).build().unwrap();
    let mut out = Vec::new();
    // The first fetch waits for the first read.
    etcd.fetch(&Context::new(), &mut out).unwrap();
    let got: Vec<_> = out.iter().map(|u| (u.address.as_str(), u.weight, u.tier)).collect();
    assert_eq!(got, [("10.0.0.1:80", 1, 0), ("10.0.0.3:80", 3, 1), ("10.0.0.4:80", 3, 1), ("10.0.0.5:80", 1, 0)]);
}

#[test]
#[cfg_attr(miri, ignore = "runs etcd and opens sockets")]
fn puts_deletes_and_the_version_key_are_followed_and_counters_carried_over() {
    let Some(server) = Etcd1::start("follow") else { return };
    server.put("/svc/1", "10.0.0.1:80");
    server.put("/svc/2", "10.0.0.2:80");
    let etcd =
        Arc::new(Etcd::builder(["http://127.0.0.1:1", &server.url()], "/svc/").timeout(CALL_TIMEOUT).build().unwrap());
    let pool = Pool::builder(Arc::clone(&etcd)).build().unwrap();
    assert_eq!(pool.len(), 2, "the second endpoint answered");
    let held = pool.select().unwrap();
    let held_address = held.address().to_owned();

    server.put("/svc/3", r#"{"endpoints":["http://10.0.0.3:80"]}"#);
    wait_for_list(&*etcd, &["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]);
    pool.refresh().unwrap();
    assert_eq!(pool.host_stats(&held_address).unwrap().in_flight, 1, "the host that stayed kept its count");

    let other = if held_address == "10.0.0.1:80" { "/svc/2" } else { "/svc/1" };
    server.delete(other);
    let stays = &held_address;
    wait_for_list(&*etcd, &[stays, "10.0.0.3:80"]);
    pool.refresh().unwrap();
    assert_eq!(pool.host_stats(stays).unwrap().in_flight, 1);
    held.release(Outcome::Success);
    assert_eq!(pool.host_stats(stays).unwrap().in_flight, 0);

    // Blue/green: the version key selects the JSON entries of its version.
    server.put("/svc/blue", r#"{"endpoints":["http://10.1.0.1:80"],"version":"blue"}"#);
    server.put("/svc/green", r#"{"endpoints":["http://10.2.0.1:80","http://10.2.0.2:80"],"version":"green"}"#);
    server.put("/svc/.version", "blue");
    wait_for_list(&*etcd, &["10.1.0.1:80"]);
    server.put("/svc/.version", "green");
    wait_for_list(&*etcd, &["10.2.0.1:80", "10.2.0.2:80"]);
}

#[test]
#[cfg_attr(miri, ignore = "runs etcd and opens sockets")]
fn a_version_key_outside_the_prefix_is_watched_too() {
    let Some(server) = Etcd1::start("version") else { return };
    server.put("/svc/a", r#"{"endpoints":["10.1.0.1:80"],"version":"v1"}"#);
    server.put("/svc/b", r#"{"endpoints":["10.2.0.1:80"],"version":"v2"}"#);
    server.put("/deploy/svc", "v1");
    let etcd = Etcd::builder([server.url()], "/svc/").version_key("/deploy/svc").build().unwrap();
    wait_for_list(&etcd, &["10.1.0.1:80"]);
    server.put("/deploy/svc", "v2");
    wait_for_list(&etcd, &["10.2.0.1:80"]);
}

#[test]
#[cfg_attr(miri, ignore = "runs etcd and opens sockets")]
fn a_stopped_server_is_skipped_by_multi_kept_by_grace_and_a_restart_picked_up() {
    let Some(mut server) = Etcd1::start("restart") else { return };
    server.put("/svc/a", "10.0.0.1:80");
    let etcd = Arc::new(Etcd::builder([server.url()], "/svc/").timeout(CALL_TIMEOUT).build().unwrap());
    let graced = Grace::new(Arc::clone(&etcd), Duration::from_secs(3600));
    let multi = Multi::new().with(Static::from_addresses(["10.9.0.1:80"])).with(Arc::clone(&etcd));
    assert_eq!(fetch(&multi).unwrap(), ["10.9.0.1:80", "10.0.0.1:80"]);
    assert_eq!(fetch(&graced).unwrap(), ["10.0.0.1:80"]);

    server.stop();
    let err = eventually("an error once etcd is down", || fetch(&*etcd).err());
    assert!(err.contains(&format!("connecting to etcd at 127.0.0.1:{}", server.client_port)), "{err}");
    assert_eq!(fetch(&multi).unwrap(), ["10.9.0.1:80"], "multi skips the failing source");
    assert_eq!(fetch(&graced).unwrap(), ["10.0.0.1:80"], "grace keeps the last list");

    server.restart();
    server.put("/svc/b", "10.0.0.2:80");
    wait_for_list(&*etcd, &["10.0.0.1:80", "10.0.0.2:80"]);
    assert_eq!(fetch(&multi).unwrap(), ["10.9.0.1:80", "10.0.0.1:80", "10.0.0.2:80"]);
}

// ---------------------------------------------------------------- without a real etcd

#[test]
#[cfg_attr(miri, ignore = "opens sockets")]
fn an_unreachable_cluster_is_the_fetch_error() {
    // Port 1 on loopback: nothing listens there, so the connection is refused at once.
    let etcd = Etcd::builder(["http://127.0.0.1:1"], "/p/").build().unwrap();
    let err = etcd.fetch(&Context::new(), &mut Vec::new()).unwrap_err().to_string();
    assert!(err.starts_with("connecting to etcd at 127.0.0.1:1: "), "{err}");
}

/// A fake gateway on loopback that answers each request with the next of `answers` (the
/// status line and headers are added; a watch answer is left open) and records every request
/// as `(path, body)`.
fn fake_gateway(answers: Vec<String>) -> (String, std::sync::mpsc::Receiver<(String, String)>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut open = Vec::new();
        for answer in answers {
            let Ok((stream, _)) = listener.accept() else { return };
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let path = line.split(' ').nth(1).unwrap_or_default().to_owned();
            let mut length = 0;
            loop {
                let mut header = String::new();
                reader.read_line(&mut header).unwrap();
                if header.trim().is_empty() {
                    break;
                }
                if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let watch = path == "/v3/watch";
            tx.send((path, String::from_utf8(body).unwrap())).unwrap();
            let mut stream = reader.into_inner();
            write!(stream, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{answer}")
                .unwrap();
            stream.flush().unwrap();
            if watch {
                open.push(stream); // a watch stays open
            }
        }
        // Keep the last watch open until the test ends.
        std::thread::park();
    });
    (url, rx)
}

#[test]
#[cfg_attr(miri, ignore = "opens sockets")]
fn a_compacted_watch_is_read_and_watched_again_from_the_new_revision() {
    let kv = |key: &str, value: &str| format!(r#"{{"key":"{}","value":"{}"}}"#, B64.encode(key), B64.encode(value));
    let (url, requests) = fake_gateway(vec![
        format!(r#"{{"header":{{"revision":"5"}},"kvs":[{}]}}"#, kv("/p/a", "10.0.0.1:80")),
        concat!(
            r#"{"result":{"header":{"revision":"5"},"created":true}}"#,
            "\n",
            r#"{"result":{"header":{"revision":"9"},"canceled":true,"compact_revision":"7"}}"#,
            "\n"
        )
        .to_owned(),
        format!(r#"{{"header":{{"revision":"9"}},"kvs":[{}]}}"#, kv("/p/b", "10.0.0.2:80")),
        r#"{"result":{"header":{"revision":"9"},"created":true}}"#.to_owned(),
    ]);
    let etcd = Etcd::builder([url], "/p/").build().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let out = fetch(&etcd).unwrap();
        if out == ["10.0.0.2:80"] {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the re-read list never came: {out:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
    let seen: Vec<_> = (0..4).map(|_| requests.recv_timeout(Duration::from_secs(30)).unwrap()).collect();
    let paths: Vec<_> = seen.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["/v3/kv/range", "/v3/watch", "/v3/kv/range", "/v3/watch"]);
    assert!(seen[1].1.contains(r#""start_revision":"6""#), "{}", seen[1].1);
    assert!(seen[3].1.contains(r#""start_revision":"10""#), "{}", seen[3].1);
}
