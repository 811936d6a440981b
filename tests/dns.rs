//! The `a` and `srv` sources against a real DNS server: a dnsmasq started by each test on a
//! loopback port, serving a per-test hosts file and SRV records from a per-test config in a
//! temporary directory. The server is stopped by PID when the test ends, also on failure.
//!
//! Without `dnsmasq` in `PATH` (Debian: `dnsmasq-base`, installed by `.ci/install.sh`) the
//! server tests print "SKIPPED: dnsmasq not found" to the terminal, and fail under `CI=true`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use leastconn::dns::{self, IpVersions};
use leastconn::source::{Context, Source};
use leastconn::{Clock, ManualClock, Multi, Pool, Static, Upstream};

/// Per-attempt resolver timeout (with no retries) in the tests that stop their server. A query
/// to a stopped server is refused at once (see `Refuser`), so this only bounds an answer from
/// a running one, which on a loaded machine may take a while: long enough never to fire there.
const TIMEOUT: Duration = Duration::from_secs(20);
/// How long to wait for dnsmasq to say it is ready or has re-read its hosts (a bound on a
/// broken setup, not a synchronisation delay: the tests wait for dnsmasq's own log line).
const READY: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------- the dnsmasq harness

/// A temporary directory, removed on drop. World-readable, because dnsmasq drops its
/// privileges (to `nobody`) before it re-reads the hosts file on SIGHUP.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("leastconn-dns-{}-{n}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        set_mode(&path, 0o755);
        TempDir(path)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        set_mode(&path, 0o644);
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn dnsmasq_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join("dnsmasq")).find(|p| p.is_file())
}

/// A running dnsmasq that answers only from the test's hosts file and config.
struct Dnsmasq {
    dir: TempDir,
    port: u16,
    child: Option<Child>,
    lines: Option<Receiver<String>>,
    /// While stopped, `port` stays ours (see `Refuser`).
    held: Option<Refuser>,
}

/// Holds a stopped server's port so that no other process (a parallel test's dnsmasq, any
/// resolver's client socket) takes it, which could answer queries meant for the stopped
/// server or keep it from restarting there; and makes every lookup sent there fail at once,
/// whatever its timeout: each UDP query gets a truncated empty answer (TC), and the retry over
/// TCP that this asks for finds its connection closed without an answer.
struct Refuser {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Refuser {
    /// None if another process took the port in the meantime (a restart then fails).
    fn bind(port: u16) -> Option<Refuser> {
        let udp = std::net::UdpSocket::bind(("127.0.0.1", port)).ok()?;
        let tcp = std::net::TcpListener::bind(("127.0.0.1", port)).ok()?;
        // How often the thread looks at `stop`; not a delay anything waits out.
        udp.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
        tcp.set_nonblocking(true).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = std::sync::Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut msg = [0u8; 1500];
            while !s.load(Ordering::SeqCst) {
                if let Ok((n, from)) = udp.recv_from(&mut msg) {
                    if n >= 12 {
                        // The query itself as a response (QR), truncated (TC), RCODE 0.
                        msg[2] = (msg[2] | 0x82) & !0x04;
                        msg[3] = 0;
                        let _ = udp.send_to(&msg[..n], from);
                    }
                }
                while let Ok((conn, _)) = tcp.accept() {
                    drop(conn);
                }
            }
        });
        Some(Refuser { stop, thread: Some(thread) })
    }
}

impl Drop for Refuser {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap(); // and with it, both sockets are closed
        }
    }
}

impl Dnsmasq {
    /// Starts dnsmasq with `hosts` as its hosts file and `config` (e.g. `srv-host=` lines) added
    /// to its configuration. `None` (after saying so) when dnsmasq is not installed.
    fn start(test: &str, hosts: &str, config: &str) -> Option<Dnsmasq> {
        capture_logs();
        if dnsmasq_binary().is_none() {
            let msg = format!("SKIPPED: dnsmasq not found in PATH; {test} needs it (Debian package dnsmasq-base)");
            // Straight to the terminal: libtest would swallow an eprintln! from a passing test.
            let _ = writeln!(std::io::stderr(), "{msg}");
            assert!(std::env::var_os("CI").is_none(), "{msg}");
            return None;
        }
        let mut server = Dnsmasq { dir: TempDir::new(test), port: 0, child: None, lines: None, held: None };
        server.dir.write("hosts", hosts);
        server.dir.write("dnsmasq.conf", config);
        // A free port now may be taken by the time dnsmasq binds it: try a few.
        for _ in 0..20 {
            server.port = free_port();
            if server.launch() {
                return Some(server);
            }
        }
        panic!("dnsmasq would not start on any of 20 ports");
    }

    /// Runs dnsmasq on `self.port` and waits until it has read its hosts file (it binds its
    /// sockets before); false if it exited first (port taken).
    fn launch(&mut self) -> bool {
        self.held = None;
        let mut child = Command::new(dnsmasq_binary().unwrap())
            .arg("--keep-in-foreground")
            .arg("--log-facility=-")
            .arg(format!("--conf-file={}", self.dir.0.join("dnsmasq.conf").display()))
            .arg(format!("--port={}", self.port))
            .arg("--listen-address=127.0.0.1")
            .arg("--bind-interfaces")
            .arg("--no-resolv")
            .arg("--no-hosts")
            .arg("--local=/test/")
            .arg(format!("--addn-hosts={}", self.dir.0.join("hosts").display()))
            .arg(format!("--pid-file={}", self.dir.0.join("dnsmasq.pid").display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning dnsmasq");
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        self.child = Some(child);
        self.lines = Some(rx);
        if self.wait_for_line("read ").is_ok() {
            return true;
        }
        self.kill();
        false
    }

    /// Waits for a log line containing `needle`; Err with the lines seen if dnsmasq exits.
    fn wait_for_line(&self, needle: &str) -> Result<(), Vec<String>> {
        let rx = self.lines.as_ref().expect("dnsmasq is not running");
        let mut seen = Vec::new();
        loop {
            match rx.recv_timeout(READY) {
                Ok(line) if line.contains(needle) => return Ok(()),
                Ok(line) => seen.push(line),
                Err(RecvTimeoutError::Timeout) => panic!("dnsmasq did not log {needle:?} in {READY:?}: {seen:?}"),
                Err(RecvTimeoutError::Disconnected) => return Err(seen),
            }
        }
    }

    fn resolver(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Replaces the hosts file and has dnsmasq re-read it (SIGHUP), waiting until it has.
    fn set_hosts(&self, hosts: &str) {
        self.dir.write("hosts", hosts);
        let pid = self.child.as_ref().expect("dnsmasq is not running").id();
        let status = Command::new("kill").args(["-HUP", &pid.to_string()]).status().expect("running kill");
        assert!(status.success());
        self.wait_for_line("read ").expect("dnsmasq exited instead of re-reading its hosts file");
    }

    /// Restarts dnsmasq on the same port with `config` (SIGHUP does not re-read SRV records).
    fn restart_with_config(&mut self, config: &str) {
        self.kill();
        self.dir.write("dnsmasq.conf", config);
        assert!(self.launch(), "dnsmasq did not restart on port {}", self.port);
    }

    /// Stops dnsmasq, keeping its port for a restart (see `held`).
    fn stop(&mut self) {
        self.kill();
        self.held = Refuser::bind(self.port);
    }

    /// Kills dnsmasq (by PID) and reaps it.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.lines = None;
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

// ---------------------------------------------------------------- log capture

/// Every log record of this test binary, so tests can check what `multi` and `Grace` said.
struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        self.0.lock().unwrap().push(format!("{} {}", record.level(), record.args()));
    }
    fn flush(&self) {}
}

/// Installs the capturing logger (once per binary); call before the code whose logs matter.
fn capture_logs() -> &'static Capture {
    static CAPTURE: OnceLock<&'static Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let c: &'static Capture = Box::leak(Box::new(Capture(Mutex::new(Vec::new()))));
        log::set_logger(c).unwrap();
        log::set_max_level(log::LevelFilter::Debug);
        c
    })
}

/// The log lines (of any test: each test looks for its own names) that contain `needle`.
fn logged(needle: &str) -> Vec<String> {
    capture_logs().0.lock().unwrap().iter().filter(|l| l.contains(needle)).cloned().collect()
}

// ---------------------------------------------------------------- helpers

fn fetch(source: &dyn Source) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    source.fetch(&Context::new(), &mut out).map_err(|e| e.to_string())?;
    Ok(out.into_iter().map(|u| u.address).collect())
}

fn manual() -> (ManualClock, Clock) {
    let m = ManualClock::new();
    (m.clone(), Clock::Manual(m))
}

const HOSTS: &str = "\
10.0.0.2 api.test
10.0.0.1 api.test
fd00::2 api.test
10.0.0.3 api.test
fd00::1 api.test
10.9.0.1 b1.test
";

const SRV: &str = "\
srv-host=_api._tcp.test,b1.test,8080,10,60
srv-host=_api._tcp.test,b2.test,8081,10,20
srv-host=_api._tcp.test,b3.test,8082,5,0
srv-host=_mixed._tcp.test,good.test,9000,1,1
srv-host=_mixed._tcp.test,bad*name.test,9001,1,1
srv-host=_bad._tcp.test,bad*name.test,9001,1,1
";

// ---------------------------------------------------------------- a

#[test]
#[cfg_attr(miri, ignore = "runs dnsmasq and opens sockets")]
fn a_yields_ip_port_per_address_in_resolver_order() {
    let Some(server) = Dnsmasq::start("a_order", HOSTS, "") else { return };
    let a = |v| dns::A::builder("api.test").port(8080).versions(v).resolvers([server.resolver()]).build().unwrap();
    // dnsmasq rotates a name's addresses by one with every query (round robin), so each
    // answer below is exactly the order the server sent, not a sorted or cached one.
    assert_eq!(
        fetch(&a(IpVersions::Both)).unwrap(),
        ["10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080", "[fd00::2]:8080", "[fd00::1]:8080"]
    );
    assert_eq!(fetch(&a(IpVersions::V4)).unwrap(), ["10.0.0.2:8080", "10.0.0.3:8080", "10.0.0.1:8080"]);
    assert_eq!(fetch(&a(IpVersions::V4)).unwrap(), ["10.0.0.3:8080", "10.0.0.1:8080", "10.0.0.2:8080"]);
    assert_eq!(fetch(&a(IpVersions::V6)).unwrap(), ["[fd00::1]:8080", "[fd00::2]:8080"]);
    // The default port is 80; a name with IPv4 only gives an error for IPv6.
    let b1 = dns::A::builder("b1.test").resolvers([server.resolver()]);
    assert_eq!(fetch(&b1.clone().build().unwrap()).unwrap(), ["10.9.0.1:80"]);
    let err = fetch(&b1.versions(IpVersions::V6).build().unwrap()).unwrap_err();
    assert_eq!(err, "no IPv6 address for b1.test");
    let err = fetch(&dns::A::builder("nope.test").resolvers([server.resolver()]).build().unwrap()).unwrap_err();
    assert_eq!(err, "no IPv4 or IPv6 address for nope.test");
}

#[test]
#[cfg_attr(miri, ignore = "runs dnsmasq and opens sockets")]
fn a_reuses_its_result_within_refresh_and_sees_a_change_after() {
    let Some(server) = Dnsmasq::start("a_refresh", "10.0.0.1 svc.test\n", "") else { return };
    let (time, clock) = manual();
    let a = dns::A::builder("svc.test")
        .resolvers([server.resolver()])
        .refresh(Duration::from_secs(60))
        .clock(clock)
        .build()
        .unwrap();
    assert_eq!(fetch(&a).unwrap(), ["10.0.0.1:80"]);

    server.set_hosts("10.0.0.2 svc.test\n");
    time.advance(Duration::from_secs(60) - Duration::from_nanos(1));
    assert_eq!(fetch(&a).unwrap(), ["10.0.0.1:80"], "a changed record is not seen before refresh expires");

    time.advance(Duration::from_nanos(1));
    assert_eq!(fetch(&a).unwrap(), ["10.0.0.2:80"], "a changed record is seen once refresh has expired");
}

#[test]
#[cfg_attr(miri, ignore = "runs dnsmasq and opens sockets")]
fn a_failure_is_not_cached_and_multi_logs_and_skips_it() {
    let Some(mut server) = Dnsmasq::start("a_stopped", "10.0.0.1 stopped.test\n", "") else { return };
    let (time, clock) = manual();
    let a = dns::A::builder("stopped.test")
        .resolvers([server.resolver()])
        .timeout(TIMEOUT)
        .retries(0)
        .refresh(Duration::from_secs(10))
        .clock(clock);
    let multi = Multi::new()
        .with(Static::from_addresses(["192.0.2.1:80"]))
        .with(a.build().unwrap())
        .with(Static::from_addresses(["192.0.2.2:80"]));
    assert_eq!(fetch(&multi).unwrap(), ["192.0.2.1:80", "10.0.0.1:80", "192.0.2.2:80"]);

    server.stop();
    time.advance(Duration::from_secs(9));
    assert_eq!(fetch(&multi).unwrap(), ["192.0.2.1:80", "10.0.0.1:80", "192.0.2.2:80"], "still fresh: no query");
    time.advance(Duration::from_secs(1));
    assert_eq!(fetch(&multi).unwrap(), ["192.0.2.1:80", "192.0.2.2:80"], "the failed source is skipped");
    let logs = logged("stopped.test");
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert!(logs[0].starts_with("ERROR multi: source 1 failed:"), "{logs:?}");
    assert!(logs[0].contains("A lookup of stopped.test failed"), "{logs:?}");

    // Not cached: the next fetch asks again, and finds the server back.
    server.restart_with_config("");
    assert_eq!(fetch(&multi).unwrap(), ["192.0.2.1:80", "10.0.0.1:80", "192.0.2.2:80"]);
}

#[test]
fn an_ip_literal_yields_itself_without_any_server() {
    // Port 9 on loopback: nothing answers there, and nothing may be asked.
    let dead = ["127.0.0.1:9"];
    let a = |name: &str| dns::A::builder(name).resolvers(dead).timeout(TIMEOUT).retries(0).build().unwrap();
    assert_eq!(fetch(&a("192.0.2.7")).unwrap(), ["192.0.2.7:80"]);
    assert_eq!(fetch(&a("2001:db8::7")).unwrap(), ["[2001:db8::7]:80"]);
    assert_eq!(fetch(&a("[2001:db8::8]")).unwrap(), ["[2001:db8::8]:80"]);
    let err = dns::A::builder("2001:db8::7").versions(IpVersions::V4).build().unwrap_err();
    assert_eq!(err.kind(), leastconn::ErrorKind::InvalidArgument);
}

#[test]
#[cfg_attr(miri, ignore = "calls the system resolver (getaddrinfo)")]
fn without_resolvers_a_uses_the_system_resolution_and_etc_hosts() {
    // Every system maps localhost to a loopback address in /etc/hosts (or nss-myhostname).
    let a = dns::A::builder("localhost").port(8080).versions(IpVersions::V4).build().unwrap();
    let found = fetch(&a).unwrap();
    assert!(!found.is_empty());
    for addr in &found {
        let sa: std::net::SocketAddr = addr.parse().unwrap();
        assert!(sa.ip().is_loopback() && sa.port() == 8080, "{found:?}");
    }
}

#[test]
#[cfg_attr(miri, ignore = "runs dnsmasq and opens sockets")]
fn counters_of_hosts_that_stay_in_the_answer_are_carried_over_each_refresh() {
    let Some(server) = Dnsmasq::start("a_counters", "10.0.0.1 pool.test\n10.0.0.2 pool.test\n", "") else {
        return;
    };
    let (time, clock) = manual();
    let a = dns::A::builder("pool.test")
        .versions(IpVersions::V4)
        .resolvers([server.resolver()])
        .refresh(Duration::from_secs(5))
        .clock(clock)
        .build()
        .unwrap();
    let pool = Pool::builder(a).build().unwrap();
    let mut listed: Vec<String> = pool.upstreams().into_iter().map(|u| u.address).collect();
    listed.sort();
    assert_eq!(listed, ["10.0.0.1:80", "10.0.0.2:80"]);
    let r1 = pool.select().unwrap();
    let r2 = pool.select().unwrap();
    let mut picked = [r1.address().to_owned(), r2.address().to_owned()];
    picked.sort();
    assert_eq!(picked, ["10.0.0.1:80", "10.0.0.2:80"]);

    server.set_hosts("10.0.0.2 pool.test\n10.0.0.3 pool.test\n");
    time.advance(Duration::from_secs(5));
    pool.refresh().unwrap();
    let mut listed: Vec<String> = pool.upstreams().into_iter().map(|u| u.address).collect();
    listed.sort();
    assert_eq!(listed, ["10.0.0.2:80", "10.0.0.3:80"]);

    let stayed = pool.host_stats("10.0.0.2:80").unwrap();
    assert_eq!((stayed.in_flight, stayed.listed), (1, true), "the host that stayed keeps its in-flight count");
    let gone = pool.host_stats("10.0.0.1:80").unwrap();
    assert_eq!((gone.in_flight, gone.listed), (1, false), "the removed host drains");
    assert_eq!(pool.host_stats("10.0.0.3:80").unwrap().in_flight, 0);
    // least_conn now sees the old load: the new host is the one with fewer requests.
    let r3 = pool.select().unwrap();
    assert_eq!(r3.address(), "10.0.0.3:80");

    // Within refresh nothing changes, whatever DNS says now.
    server.set_hosts("10.0.0.3 pool.test\n10.0.0.4 pool.test\n");
    time.advance(Duration::from_secs(4));
    pool.refresh().unwrap();
    assert!(pool.host_stats("10.0.0.2:80").unwrap().listed);

    // The next refresh after it: 10.0.0.3 stays with its request, 10.0.0.2 drains its own.
    time.advance(Duration::from_secs(1));
    pool.refresh().unwrap();
    let stayed = pool.host_stats("10.0.0.3:80").unwrap();
    assert_eq!((stayed.in_flight, stayed.listed), (1, true));
    let gone = pool.host_stats("10.0.0.2:80").unwrap();
    assert_eq!((gone.in_flight, gone.listed), (1, false));
    assert_eq!(pool.select().unwrap().address(), "10.0.0.4:80");

    drop((r1, r2, r3));
    assert_eq!(pool.host_stats("10.0.0.3:80").unwrap().in_flight, 0);
    // Once drained, removed hosts are reclaimed by the next refresh.
    pool.refresh().unwrap();
    assert_eq!(pool.host_stats("10.0.0.1:80").unwrap_err().kind(), leastconn::ErrorKind::NotFound);
    assert_eq!(pool.host_stats("10.0.0.2:80").unwrap_err().kind(), leastconn::ErrorKind::NotFound);
}

#[test]
#[cfg_attr(miri, ignore = "runs dnsmasq and opens sockets")]
fn a_lookup_works_from_inside_a_tokio_runtime() {
    let Some(server) = Dnsmasq::start("a_in_tokio", "10.0.0.1 async.test\n", "") else { return };
    let a = dns::A::builder("async.test").resolvers([server.resolver()]).build().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let found = runtime.block_on(async { fetch(&a) });
    assert_eq!(found.unwrap(), ["10.0.0.1:80"]);
}

// ---------------------------------------------------------------- srv

/// An `srv` source asking `server`, with the default timeout and retries (the server is up).
fn srv(server: &Dnsmasq, name: &str) -> dns::SrvConfig {
    dns::Srv::builder(name).resolvers([server.resolver()])
}

#[test]
#[cfg_attr(miri, ignore = "runs dnsmasq and opens sockets")]
fn srv_yields_target_port_by_priority_then_weighted_order() {
    let Some(server) = Dnsmasq::start("srv_order", "", SRV) else { return };
    let by_parts = dns::Srv::service("api", "tcp", "test").resolvers([server.resolver()]).build().unwrap();
    assert_eq!(by_parts.name(), "_api._tcp.test");
    let first = fetch(&by_parts).unwrap();
    assert_eq!(first[0], "b3.test.:8082", "priority 5 comes before priority 10");
    let mut rest = first[1..].to_vec();
    rest.sort();
    assert_eq!(rest, ["b1.test.:8080", "b2.test.:8081"]);

    // Within priority 10 the order is weighted-random (60 : 20), drawn once per lookup.
    // dnsmasq rotates its answer with every query, so b1 leads the records half the time:
    // P(b1 first) = (61/81 + 60/81) / 2 = 0.747 (RFC 2782: a draw in 0..=80 against the
    // running weight sums), i.e. 149 of 200 expected.
    let s = srv(&server, "_api._tcp.test").refresh(Duration::ZERO).seed(7).build().unwrap();
    let drawn: Vec<Vec<String>> = (0..200).map(|_| fetch(&s).unwrap()).collect();
    assert!(drawn.iter().all(|o| o[0] == "b3.test.:8082" && o.len() == 3), "priority always first");
    let b1_first = drawn.iter().filter(|o| o[1] == "b1.test.:8080").count();
    assert!((125..=172).contains(&b1_first), "b1 first in {b1_first} of 200");
}

#[test]
#[cfg_attr(miri, ignore = "runs dnsmasq and opens sockets")]
fn srv_uses_the_usable_records_and_warns_about_the_others() {
    let Some(server) = Dnsmasq::start("srv_mixed", "", SRV) else { return };
    let mixed = srv(&server, "_mixed._tcp.test").build().unwrap();
    assert_eq!(fetch(&mixed).unwrap(), ["good.test.:9000"]);
    let warnings = logged("_mixed._tcp.test");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].starts_with("WARN dns srv: _mixed._tcp.test: dropped 1 unusable record(s)"), "{warnings:?}");

    let bad = srv(&server, "_bad._tcp.test").build().unwrap();
    let err = fetch(&bad).unwrap_err();
    // The target is shown as DNS presentation format escapes it (`bad\\*name.test.`).
    assert!(err.starts_with("SRV lookup of _bad._tcp.test: no usable record ("), "{err}");
    assert!(err.ends_with(":9001\": invalid host name)"), "{err}");
}

#[test]
#[cfg_attr(miri, ignore = "runs dnsmasq and opens sockets")]
fn srv_sees_changed_records_only_after_refresh() {
    let Some(mut server) = Dnsmasq::start("srv_refresh", "", "srv-host=_web._tcp.test,w1.test,80\n") else {
        return;
    };
    let (time, clock) = manual();
    let s = srv(&server, "_web._tcp.test").refresh(Duration::from_secs(30)).clock(clock).build().unwrap();
    assert_eq!(fetch(&s).unwrap(), ["w1.test.:80"]);

    server.restart_with_config("srv-host=_web._tcp.test,w2.test,81\n");
    time.advance(Duration::from_secs(29));
    assert_eq!(fetch(&s).unwrap(), ["w1.test.:80"]);
    time.advance(Duration::from_secs(1));
    assert_eq!(fetch(&s).unwrap(), ["w2.test.:81"]);
}

#[test]
#[cfg_attr(miri, ignore = "runs dnsmasq and opens sockets")]
fn srv_grace_period_keeps_the_last_good_list_then_lets_it_go() {
    let Some(mut server) = Dnsmasq::start("srv_grace", "", SRV) else { return };
    let (time, clock) = manual();
    let s = srv(&server, "_api._tcp.test")
        .timeout(TIMEOUT)
        .retries(0)
        .refresh(Duration::from_secs(10))
        .grace_period(Duration::from_secs(30))
        .clock(clock)
        .seed(1)
        .build()
        .unwrap();
    let multi = Multi::new().with(s).with(Static::new(vec![Upstream::new("192.0.2.9:80")]));
    let good = fetch(&multi).unwrap();
    assert_eq!((good.len(), good[0].as_str(), good[3].as_str()), (4, "b3.test.:8082", "192.0.2.9:80"));

    server.stop();
    time.advance(Duration::from_secs(10));
    assert_eq!(fetch(&multi).unwrap(), good, "first failure: the last good list is served");
    time.advance(Duration::from_secs(29));
    assert_eq!(fetch(&multi).unwrap(), good, "29 s into the grace period");
    let served = logged("within the grace period");
    let served: Vec<_> = served.iter().filter(|l| l.contains("SRV lookup of _api._tcp.test failed")).collect();
    assert_eq!(served.len(), 2, "{served:?}");
    assert!(served[0].starts_with("WARN source failed"), "{served:?}");

    time.advance(Duration::from_secs(1));
    assert_eq!(fetch(&multi).unwrap(), ["192.0.2.9:80"], "grace period over: the source is skipped");
    let skipped = || logged("ERROR multi: source 0 failed: SRV lookup of _api._tcp.test failed").len();
    assert_eq!(skipped(), 1);

    // The kept list was let go: later failures have nothing to serve.
    time.advance(Duration::from_secs(100));
    assert_eq!(fetch(&multi).unwrap(), ["192.0.2.9:80"]);
    assert_eq!(skipped(), 2);
}

#[test]
#[cfg_attr(miri, ignore = "runs dnsmasq and opens sockets")]
fn srv_target_dot_says_the_service_is_not_available() {
    // Without a target dnsmasq answers RFC 2782's "decidedly not available" record (".").
    let Some(server) = Dnsmasq::start("srv_none", "", "srv-host=_none._tcp.test\n") else { return };
    let none = srv(&server, "_none._tcp.test").build().unwrap();
    let multi = Multi::new().with(none).with(Static::from_addresses(["192.0.2.1:80"]));
    assert_eq!(fetch(&multi).unwrap(), ["192.0.2.1:80"]);
    let said = logged("_none._tcp.test");
    assert_eq!(
        said,
        ["DEBUG dns srv: _none._tcp.test: a record with target \".\" says the service is not available here"]
    );
}
