//! The `docker` source against a real daemon: Podman's Docker-compatible service, started by
//! the test on a socket in a temporary directory, with its own storage, run root and network
//! configuration there, and containers of an image imported from a directory holding
//! Debian's static busybox (no registry is needed). Containers, networks, the service and the
//! directory are removed when the test ends, also on failure.
//!
//! The containers get bridge addresses (10.88.x.x and up); the test compares the addresses
//! the source discovers with those `podman inspect` reports and never sends them traffic.
//!
//! Without `podman`, `runc` or `busybox` in `PATH`, or where podman cannot run a container,
//! the test prints "SKIPPED: ..." and passes, and fails under `CI=true` (where
//! `.ci/install.sh` installs them from `.ci/packages-docker.txt`).
#![cfg(target_os = "linux")]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use leastconn::docker::Docker;
use leastconn::source::{Context, Source};
use leastconn::{Grace, Multi, Pool, Static, Upstream};

/// A bound on a broken setup, not a synchronisation delay: each wait polls a condition.
const DEADLINE: Duration = Duration::from_secs(60);
/// The sources' request timeout: generous, so that a slow listing on a loaded machine is not
/// a failure.
const TIMEOUT: Duration = Duration::from_secs(20);
const HOUR: Duration = Duration::from_secs(3600);
const IMAGE: &str = "localhost/leastconn-busybox:test";

struct Podman {
    dir: PathBuf,
    socket: PathBuf,
    service: Option<Child>,
    networks: Vec<String>,
}

impl Podman {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("leastconn-docker-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["root", "runroot", "tmp", "xdg", "net", "rootfs/bin"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let conf = format!(
            "[engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\ntmp_dir = \"{}\"\n\
             [network]\nnetwork_config_dir = \"{}\"\n\
             [containers]\ndefault_ulimits = [\"nofile=1000:1000\", \"nproc=1000:1000\"]\n",
            dir.join("tmp").display(),
            dir.join("net").display()
        );
        std::fs::write(dir.join("containers.conf"), conf).unwrap();
        let storage = format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
            dir.join("root").display(),
            dir.join("runroot").display()
        );
        std::fs::write(dir.join("storage.conf"), storage).unwrap();
        let socket = dir.join("podman.sock");
        Podman { dir, socket, service: None, networks: Vec::new() }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", self.dir.join("storage.conf"))
            .env("XDG_RUNTIME_DIR", self.dir.join("xdg"))
            .arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(self.dir.join("runroot"))
            .args(["--storage-driver", "vfs", "--runtime", "runc", "--cgroup-manager", "cgroupfs"]);
        c
    }

    /// Runs podman with `args`; its stdout, trimmed, or its stderr as the error.
    fn try_run(&self, args: &[&str]) -> Result<String, String> {
        let out = self.cmd().args(args).stdin(Stdio::null()).output().map_err(|e| format!("podman: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(format!("podman {args:?}: {}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim()))
        }
    }

    fn run(&self, args: &[&str]) -> String {
        self.try_run(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Imports the busybox image.
    fn import_image(&self, busybox: &Path) -> Result<(), String> {
        let rootfs = self.dir.join("rootfs");
        std::fs::copy(busybox, rootfs.join("bin/busybox")).map_err(|e| format!("copy busybox: {e}"))?;
        let tar = self.dir.join("rootfs.tar");
        let status = Command::new("tar").arg("-C").arg(&rootfs).arg("-cf").arg(&tar).arg(".").status();
        if !status.is_ok_and(|s| s.success()) {
            return Err("tar of the rootfs failed".into());
        }
        self.try_run(&["import", tar.to_str().unwrap(), IMAGE]).map(drop)
    }

    /// `podman run -d` a container sleeping for an hour, with `labels` and `extra` options.
    fn container(&self, name: &str, labels: &[(&str, &str)], extra: &[&str]) -> Result<String, String> {
        let mut args = vec!["run", "-d", "--name", name, "--ulimit", "nofile=1000:1000", "--ulimit", "nproc=1000:1000"];
        let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        for l in &labels {
            args.extend(["--label", l]);
        }
        args.extend(extra);
        args.extend([IMAGE, "/bin/busybox", "sleep", "3600"]);
        self.try_run(&args)
    }

    fn network(&mut self, name: &str) {
        self.run(&["network", "create", name]);
        self.networks.push(name.to_owned());
    }

    /// The container's address on `network`, as podman reports it.
    fn ip(&self, container: &str, network: &str) -> String {
        let format = format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}");
        let ip = self.run(&["inspect", "--format", &format, container]);
        assert!(ip.parse::<std::net::Ipv4Addr>().is_ok(), "{container} on {network}: {ip:?}");
        ip
    }

    fn start_service(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
        let child = self
            .cmd()
            .args(["system", "service", "--time=0"])
            .arg(format!("unix://{}", self.socket.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("podman system service");
        self.service = Some(child);
        wait_until("the podman service to accept connections", || {
            std::os::unix::net::UnixStream::connect(&self.socket).is_ok()
        });
    }

    fn stop_service(&mut self) {
        if let Some(mut child) = self.service.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        self.stop_service();
        let _ = self.try_run(&["rm", "--all", "--force", "--time", "0"]);
        for n in &self.networks {
            let _ = self.try_run(&["network", "rm", "--force", n]);
        }
        let _ = self.try_run(&["rmi", "--all", "--force"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out after {DEADLINE:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn fetch(source: &dyn Source) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    source.fetch(&Context::new(), &mut out).map_err(|e| e.to_string())?;
    Ok(out.into_iter().map(|u| u.address).collect())
}

/// Waits until `source` yields exactly `want`.
fn wait_for_list(what: &str, source: &dyn Source, want: &[String]) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let got = fetch(source);
        if got.as_deref() == Ok(want) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: wanted {want:?}, last fetch gave {got:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn find(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(program)).find(|p| p.is_file())
}

fn skip(why: &str) {
    assert!(std::env::var_os("CI").is_none_or(|v| v != "true"), "CI=true but {why}");
    // Straight to the terminal: libtest would swallow a println! from a passing test.
    let _ = writeln!(std::io::stderr(), "SKIPPED: {why}");
}

/// Everything in one function: the service and image are reused across the cases.
#[test]
#[cfg_attr(miri, ignore = "runs podman and opens sockets")]
fn docker_source_follows_podman_containers() {
    let Some(busybox) = find("busybox") else { return skip("busybox not found (Debian: busybox-static)") };
    if find("podman").is_none() || find("runc").is_none() {
        return skip("podman or runc not found (Debian: podman, runc)");
    }
    let mut podman = Podman::new();
    if let Err(e) = podman.import_image(&busybox) {
        return skip(&format!("podman cannot import an image here: {e}"));
    }
    if let Err(e) = podman.container("probe", &[], &[]).and_then(|_| podman.try_run(&["rm", "-f", "-t", "0", "probe"]))
    {
        return skip(&format!("podman cannot run a container here: {e}"));
    }
    podman.start_service();

    let id = std::process::id();
    let (net_a, project) = (format!("lcnet{id}"), format!("lcproj{id}"));
    let net_compose = format!("{project}_web");
    podman.network(&net_a);
    podman.network(&net_compose);

    const EN: (&str, &str) = ("com.caddyserver.http.enable", "true");
    const PORT: &str = "com.caddyserver.http.upstream.port";
    const NET: &str = "com.caddyserver.http.network";
    let c = |name: &str, labels: &[(&str, &str)], extra: &[&str]| podman.container(name, labels, extra).unwrap();
    c("a-web", &[EN, (PORT, "8080"), ("role", "web")], &[]);
    c("b-api", &[EN, (PORT, "9000"), (NET, &net_a), ("role", "api")], &["--network", &net_a, "--network", "podman"]);
    c(
        "c-compose",
        &[EN, (PORT, "81"), (NET, "web"), ("com.docker.compose.project", &project), ("role", "db")],
        &["--network", "podman", "--network", &net_compose],
    );
    c("d-noport", &[EN, ("role", "web")], &[]);
    c("e-off", &[(PORT, "80"), ("role", "web")], &[]);
    let hc = |cmd: &'static str| ["--health-cmd", cmd, "--health-interval", "disable"];
    c("f-sick", &[EN, (PORT, "80")], &hc(r#"["/bin/busybox","false"]"#));
    c("g-healthy", &[EN, (PORT, "80")], &hc(r#"["/bin/busybox","true"]"#));
    let _ = podman.try_run(&["healthcheck", "run", "f-sick"]); // exits 1: unhealthy
    podman.run(&["healthcheck", "run", "g-healthy"]);

    let ip = |name: &str, net: &str| podman.ip(name, net);
    let a = format!("{}:8080", ip("a-web", "podman"));
    let b = format!("{}:9000", ip("b-api", &net_a));
    let cc = format!("{}:81", ip("c-compose", &net_compose));
    let g = format!("{}:80", ip("g-healthy", "podman"));

    // Refresh far away: only events and reconnections drive the updates below. A generous
    // request timeout: a loaded machine must not turn a slow listing into a failure.
    let by_label = Arc::new(Docker::builder().host(podman.host()).refresh(HOUR).timeout(TIMEOUT).build().unwrap());
    let filtered =
        Docker::builder().host(podman.host()).port(7000).label("role", ["web", "api"]).refresh(HOUR).timeout(TIMEOUT);
    let filtered = filtered.build().unwrap();

    // Network label, compose fallback, port label; no port: skipped; not enabled, unhealthy
    // and starting: left out. Ordered by container name.
    wait_for_list("initial list", &*by_label, &[a.clone(), b.clone(), cc.clone(), g.clone()]);
    // The source's port admits d-noport; the role filter (web or api) leaves c and g out.
    let d7 = format!("{}:7000", ip("d-noport", "podman"));
    let want = [format!("{}:7000", ip("a-web", "podman")), format!("{}:7000", ip("b-api", &net_a)), d7];
    wait_for_list("port and label filter", &filtered, &want);

    // Events: a stop, a start, a relabel (recreate with another port).
    podman.run(&["stop", "-t", "0", "a-web"]);
    wait_for_list("after a stop", &*by_label, &[b.clone(), cc.clone(), g.clone()]);
    c("h-new", &[EN, (PORT, "8081")], &[]);
    let h = format!("{}:8081", ip("h-new", "podman"));
    wait_for_list("after a start", &*by_label, &[b.clone(), cc.clone(), g.clone(), h.clone()]);
    podman.run(&["rm", "-f", "-t", "0", "b-api"]);
    c("b-api", &[EN, (PORT, "9001"), (NET, &net_a)], &["--network", &net_a]);
    let b2 = format!("{}:9001", ip("b-api", &net_a));
    wait_for_list("after a relabel", &*by_label, &[b2.clone(), cc.clone(), g.clone(), h.clone()]);

    // The daemon stops: the fetch fails; multi logs and skips it; Grace keeps the last list.
    let grace = Grace::new(Arc::clone(&by_label), HOUR);
    assert_eq!(fetch(&grace).unwrap(), [b2.clone(), cc.clone(), g.clone(), h.clone()]);
    let pool = Pool::builder(Multi::new().with(Static::from_addresses(["192.0.2.1:80"])).with(Arc::clone(&by_label)))
        .build()
        .unwrap();
    pool.refresh().unwrap();
    assert_eq!(pool.len(), 5);
    podman.stop_service();
    wait_until("the fetch to fail with the daemon stopped", || fetch(&*by_label).is_err());
    let err = fetch(&*by_label).unwrap_err();
    assert!(err.contains(&podman.socket.display().to_string()), "the error names the socket: {err}");
    pool.refresh().unwrap();
    let addresses: Vec<String> = pool.upstreams().into_iter().map(|u: Upstream| u.address).collect();
    assert_eq!(addresses, ["192.0.2.1:80"], "multi skips the failing docker source");
    assert_eq!(fetch(&grace).unwrap(), [b2.clone(), cc.clone(), g.clone(), h.clone()], "Grace keeps the last list");

    // A change while the daemon is down, then a restart: the re-list after reconnecting
    // sees it (no event for it ever reaches the source).
    podman.run(&["stop", "-t", "0", "h-new"]);
    podman.start_service();
    wait_for_list("after the restart", &*by_label, &[b2.clone(), cc.clone(), g.clone()]);
    pool.refresh().unwrap();
    assert_eq!(pool.len(), 4);
}
