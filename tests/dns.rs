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

/// Per-attempt resolver timeout: a query to a stopped server fails after this (no retries).
const TIMEOUT: Duration = Duration::from_millis(300);
/// How long to wait for dnsmasq to say it is ready or has re-read its hosts (a bound on a
/// broken setup, not a synchronisation delay: the tests wait for dnsmasq's own log line).
const READY: Duration = Duration::from_secs(10);

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
}

impl Dnsmasq {
    /// Starts dnsmasq with `hosts` as its hosts file and `config` (e.g. `srv-host=` lines) added
    /// to its configuration. `None` (after saying so) when dnsmasq is not installed.
    fn start(test: &str, hosts: &str, config: &str) -> Option<Dnsmasq> {
        if dnsmasq_binary().is_none() {
            let msg = format!("SKIPPED: dnsmasq not found in PATH; {test} needs it (Debian package dnsmasq-base)");
            // Straight to the terminal: libtest would swallow an eprintln! from a passing test.
            let _ = writeln!(std::io::stderr(), "{msg}");
            assert!(std::env::var_os("CI").is_none(), "{msg}");
            return None;
        }
        let mut server = Dnsmasq { dir: TempDir::new(test), port: 0, child: None, lines: None };
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
        self.stop();
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
        self.stop();
        self.dir.write("dnsmasq.conf", config);
        assert!(self.launch(), "dnsmasq did not restart on port {}", self.port);
    }

    /// Kills dnsmasq (by PID) and reaps it.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.lines = None;
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        self.stop();
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

/// The log lines (of any test) that contain `needle`.
fn logged(needle: &str) -> Vec<String> {
    static CAPTURE: OnceLock<&'static Capture> = OnceLock::new();
    let capture = CAPTURE.get_or_init(|| {
        let c: &'static Capture = Box::leak(Box::new(Capture(Mutex::new(Vec::new()))));
        log::set_logger(c).unwrap();
        log::set_max_level(log::LevelFilter::Debug);
        c
    });
    capture.0.lock().unwrap().iter().filter(|l| l.contains(needle)).cloned().collect()
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
