//! The C ABI from the outside: compiles the C and C++ programs in `ffi-tests/` with the
//! system compilers against the `libleastconn.a` and `libleastconn.so` this very `cargo test`
//! built (debug or `--release`), runs them, runs the Python `ctypes` test, and checks the
//! header, the SONAME, `make install` and pkg-config, and the README's example.
#![cfg(all(target_os = "linux", not(miri)))]

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `target/<profile>/deps`, where this test executable lives and where cargo writes the
/// library's `libleastconn.a` and `libleastconn.so` when it builds them for this test.
/// (`cargo test` does not copy them up to `target/<profile>/` as `cargo build` does: copies
/// there may be stale.)
fn lib_dir() -> PathBuf {
    let exe = env::current_exe().expect("test executable path");
    exe.parent().expect("target/<profile>/deps/<test>").to_path_buf()
}

/// `target/<profile>`.
fn profile_dir() -> PathBuf {
    lib_dir().parent().expect("target/<profile>/deps").to_path_buf()
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = profile_dir().join("ffi-tests").join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// The ABI version in the SONAME (see build.rs): MAJOR, or 0.MINOR while MAJOR is 0.
fn abi_version() -> String {
    let (major, minor) = (env!("CARGO_PKG_VERSION_MAJOR"), env!("CARGO_PKG_VERSION_MINOR"));
    if major == "0" { format!("0.{minor}") } else { major.to_owned() }
}

/// The native libraries a static link needs, as the pkg-config file declares them.
fn static_link_libs() -> Vec<String> {
    let pc = fs::read_to_string(Path::new(ROOT).join("leastconn.pc.in")).unwrap();
    let line = pc.lines().find_map(|l| l.strip_prefix("Libs.private:")).expect("Libs.private in leastconn.pc.in");
    line.split_whitespace().map(str::to_owned).collect()
}

#[derive(Clone, Copy, Debug)]
enum Link {
    Static,
    Shared,
}

/// A directory holding the shared library under the names a linker and a loader look for.
fn shared_lib_dir(dir: &Path) -> PathBuf {
    let lib = dir.join("lib");
    fs::create_dir_all(&lib).unwrap();
    let so = lib_dir().join("libleastconn.so");
    for name in ["libleastconn.so".to_owned(), format!("libleastconn.so.{}", abi_version())] {
        std::os::unix::fs::symlink(&so, lib.join(name)).unwrap();
    }
    lib
}

fn run_checked(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

enum Lang {
    C,
    Cxx,
}

/// Compiles `source` (relative to the repository) strictly, links it, runs it; returns stdout.
fn build_and_run(name: &str, lang: Lang, source: &str, link: Link) -> String {
    let dir = scratch(&format!("{name}-{link:?}").to_lowercase());
    let exe = dir.join(name);
    let mut cmd = match lang {
        Lang::C => {
            let mut c = Command::new(env::var("CC").unwrap_or_else(|_| "cc".into()));
            c.args(["-std=c99", "-D_POSIX_C_SOURCE=200809L", "-pedantic"]);
            c
        }
        Lang::Cxx => {
            let mut c = Command::new(env::var("CXX").unwrap_or_else(|_| "c++".into()));
            c.args(["-std=c++17", "-Iffi-tests/cpp"]);
            c
        }
    };
    cmd.current_dir(ROOT).args(["-Wall", "-Wextra", "-Werror", "-g", "-Iinclude", source, "-o"]).arg(&exe);
    let mut run = Command::new(&exe);
    match link {
        Link::Static => {
            cmd.arg(lib_dir().join("libleastconn.a")).args(static_link_libs());
        }
        Link::Shared => {
            let lib = shared_lib_dir(&dir);
            cmd.arg("-L").arg(&lib).args(["-lleastconn", "-lpthread"]);
            run.env("LD_LIBRARY_PATH", &lib);
        }
    }
    run_checked(&mut cmd);
    run_checked(&mut run)
}

/// The count in the "N checks passed" line the C and C++ programs end with.
fn checks_passed(output: &str) -> u64 {
    let line = output.lines().last().unwrap_or_default();
    let n = line.strip_suffix(" checks passed").unwrap_or_else(|| panic!("no summary line in {output:?}"));
    n.parse().unwrap()
}

/// Each program runs twice, linked with `libleastconn.a` and with `libleastconn.so`: a line
/// `a_static, a_shared => check;` declares the `#[test]`s `a_static` and `a_shared`, which run
/// `check(Link::Static)` and `check(Link::Shared)`.
macro_rules! static_and_shared {
    ($($static:ident, $shared:ident => $check:ident;)*) => {$(
        #[test]
        fn $static() {
            $check(Link::Static);
        }

        #[test]
        fn $shared() {
            $check(Link::Shared);
        }
    )*};
}

static_and_shared! {
    c_api_static, c_api_shared => c_api;
    c_threads_static, c_threads_shared => c_threads;
    c_alloc_free_selects_static, c_alloc_free_selects_shared => c_alloc_free_selects;
    cpp_raii_static, cpp_raii_shared => cpp_raii;
    c_dns_static, c_dns_shared => c_dns;
    c_docker_static, c_docker_shared => c_docker;
    c_json_static, c_json_shared => c_json;
    c_zone_static, c_zone_shared => c_zone;
    c_zone_pool_static, c_zone_pool_shared => c_zone_pool;
    c_zone_json_static, c_zone_json_shared => c_zone_json;
    readme_example_static, readme_example_shared => readme_example;
    readme_sources_static, readme_sources_shared => readme_sources;
}

fn c_api(link: Link) {
    let out = build_and_run("test_api", Lang::C, "ffi-tests/c/test_api.c", link);
    // The library's lc_version() equals the header's LC_VERSION_* (checked in C) and Cargo's.
    assert_eq!(out.lines().next(), Some(format!("version {VERSION}").as_str()));
    assert!(checks_passed(&out) >= 500, "{out}");
}

/// Threads pick, release and refresh at once, then race to release the same pick.
fn c_threads(link: Link) {
    let out = build_and_run("test_threads", Lang::C, "ffi-tests/c/test_threads.c", link);
    assert!(checks_passed(&out) >= 4 * 20_000, "{out}");
}

/// `ffi-tests/c/test_alloc.c` interposes malloc and counts: a cold thread's first select
/// allocates, and after `lc_thread_warmup()` 1,000 selects and releases per policy (pool and
/// picker, a tenth of them failures) allocate nothing.
fn c_alloc_free_selects(link: Link) {
    let out = build_and_run("test_alloc", Lang::C, "ffi-tests/c/test_alloc.c", link);
    assert_eq!(out.lines().filter(|l| l.ends_with(": 0 allocations")).count(), 6, "{out}");
    assert!(checks_passed(&out) >= 6000, "{out}");
}

/// `leastconn.hpp` from C++17: RAII handles, exceptions, a callable source, pickers.
fn cpp_raii(link: Link) {
    let out = build_and_run("test_raii", Lang::Cxx, "ffi-tests/cpp/test_raii.cpp", link);
    assert!(checks_passed(&out) >= 20_000, "{out}");
}

/// The DNS sources' constructors (defaults, every error path) and a multi of a static list,
/// two `a` sources and an `srv` source whose server is down.
fn c_dns(link: Link) {
    let out = build_and_run("test_dns", Lang::C, "ffi-tests/c/test_dns.c", link);
    assert_eq!(checks_passed(&out), 116, "{out}");
}

/// The docker source's constructor (defaults, every error path, `DOCKER_HOST`) and a multi
/// of a static list and a docker source whose daemon is absent.
fn c_docker(link: Link) {
    let out = build_and_run("test_docker", Lang::C, "ffi-tests/c/test_docker.c", link);
    assert_eq!(checks_passed(&out), 72, "{out}");
}

/// The JSON constructors (handler and source, every error path), a multi of JSON sources
/// whose etcd source is down, and the etcd constructor (defaults, every error path).
fn c_json(link: Link) {
    let out = build_and_run("test_json", Lang::C, "ffi-tests/c/test_json.c", link);
    assert_eq!(checks_passed(&out), 85, "{out}");
}

/// Shared zones: size and fit arithmetic, every refusal with its status and logged message,
/// an anonymous zone and a file zone used by forked children, caller memory created,
/// attached, refused, and shared with a child.
fn c_zone(link: Link) {
    let out = build_and_run("test_zone", Lang::C, "ffi-tests/c/test_zone.c", link);
    assert_eq!(checks_passed(&out), 210, "{out}");
}

/// Pools on a zone: lc_pool_new_in_zone's refusals, two pools of one name sharing counts and
/// another name not, max_requests 1 across a parent and a forked child, both releases, and
/// lc_zone_sweep returning exactly what a SIGKILLed child held, and lc_zone_stats reporting
/// each process with what it holds before, and the sweep's counters after; lc_zone_hosts
/// showing one host's in-flight count, doubt, failures ever and listers over two processes.
fn c_zone_pool(link: Link) {
    let out = build_and_run("test_zone_pool", Lang::C, "ffi-tests/c/test_zone_pool.c", link);
    assert_eq!(checks_passed(&out), 175, "{out}");
}

/// Pools from Caddy JSON on a zone: a JSON pool in a forked child and a JSON pool and an
/// lc_pool_new_in_zone pool of the same name in the parent share counts and max_requests
/// exactly, another name does not; every refusal with its status and message (buffer, log),
/// a full zone in a forked child.
fn c_zone_json(link: Link) {
    let out = build_and_run("test_zone_json", Lang::C, "ffi-tests/c/test_zone_json.c", link);
    assert_eq!(checks_passed(&out), 88, "{out}");
}

/// The README example tries a primary, retries on the other one, then lands on the backup.
fn check_readme_example_output(out: &str) {
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    let first = lines[0].strip_prefix("trying ").unwrap();
    let retry = lines[1].strip_prefix("retrying on ").unwrap();
    assert!(["10.0.0.1:8080", "10.0.0.2:8080"].contains(&first), "{out}");
    assert!(["10.0.0.1:8080", "10.0.0.2:8080"].contains(&retry) && retry != first, "{out}");
    assert_eq!(lines[2], "then 10.0.0.9:8080");
}

fn readme_example(link: Link) {
    check_readme_example_output(&build_and_run("readme", Lang::C, "ffi-tests/c/readme_example.c", link));
}

#[test]
fn readme_code_block_is_the_compiled_example() {
    let doc = fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    let example = fs::read_to_string(Path::new(ROOT).join("ffi-tests/c/readme_example.c")).unwrap();
    let block =
        doc.split("```c\n").nth(1).and_then(|rest| rest.split("```").next()).expect("a ```c code block in README.md");
    assert!(block == example, "the C example in README.md must equal ffi-tests/c/readme_example.c");
}

/// The README's C block that builds a `multi` of static, Docker and etcd sources: compiled
/// strictly (inside `readme_sources_test.c`), run (it contacts nothing), and equal to the file.
fn readme_sources(link: Link) {
    let out = build_and_run("readme_sources", Lang::C, "ffi-tests/c/readme_sources_test.c", link);
    assert_eq!(out, "built the multi of static, docker, etcd and etcd from JSON\n");
}

#[test]
fn readme_sources_block_is_the_compiled_file() {
    let doc = fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    let file = fs::read_to_string(Path::new(ROOT).join("ffi-tests/c/readme_sources.c")).unwrap();
    let block = doc
        .split("```c\n")
        .filter_map(|rest| rest.split("```").next())
        .find(|block| block.contains("static lc_status api_sources("))
        .expect("the ```c block with api_sources() in README.md");
    assert!(block == file, "the multi-source C block in README.md must equal ffi-tests/c/readme_sources.c");
}

#[test]
fn header_compiles_alone_as_strict_c99_and_cxx17() {
    let dir = scratch("header");
    let tu = dir.join("only_header.c");
    fs::write(&tu, "#include \"leastconn.h\"\n#include \"leastconn.h\"\nint main(void) { return LC_OK; }\n").unwrap();
    let cc = env::var("CC").unwrap_or_else(|_| "cc".into());
    run_checked(
        Command::new(cc)
            .current_dir(ROOT)
            .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Iinclude", "-c", "-o"])
            .arg(dir.join("c.o"))
            .arg(&tu),
    );
    let tu = dir.join("only_header.cpp");
    fs::write(&tu, "#include \"leastconn.h\"\nint main() { return LC_OK; }\n").unwrap();
    let cxx = env::var("CXX").unwrap_or_else(|_| "c++".into());
    run_checked(
        Command::new(cxx)
            .current_dir(ROOT)
            .args(["-std=c++17", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Iinclude", "-c", "-o"])
            .arg(dir.join("cxx.o"))
            .arg(&tu),
    );
}

#[test]
fn header_version_macros_match_cargo_toml() {
    let header = fs::read_to_string(Path::new(ROOT).join("include/leastconn.h")).unwrap();
    let parts: Vec<&str> = VERSION.split('.').collect();
    for (name, value) in ["MAJOR", "MINOR", "PATCH"].iter().zip(parts) {
        let define = format!("#define LC_VERSION_{name} {value}\n");
        assert!(header.contains(&define), "{define:?} missing from include/leastconn.h");
    }
}

#[test]
fn shared_library_soname_carries_the_abi_version() {
    let out = run_checked(Command::new("readelf").arg("-d").arg(lib_dir().join("libleastconn.so")));
    let want = format!("Library soname: [libleastconn.so.{}]", abi_version());
    assert!(out.contains(&want), "{want:?} not in:\n{out}");
}

#[test]
fn python_ctypes_main_flow() {
    let so = lib_dir().join("libleastconn.so");
    let out = Command::new(env::var("PYTHON").unwrap_or_else(|_| "python3".into()))
        .current_dir(ROOT)
        .arg("ffi-tests/python/test_leastconn.py")
        .arg(&so)
        .output()
        .expect("python3");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("Ran 4 tests") && stderr.trim_end().ends_with("OK"), "{stderr}");
}

/// What the README tells a C user to do: `make install`, then pkg-config, statically and
/// dynamically.
#[test]
fn make_install_then_link_with_pkg_config() {
    let dir = scratch("install");
    let prefix = dir.join("prefix");
    run_checked(
        Command::new("make")
            .current_dir(ROOT)
            .arg("install")
            .arg(format!("PREFIX={}", prefix.display()))
            .arg(format!("PROFILE_DIR={}", lib_dir().display()))
            .arg("NO_BUILD=1"),
    );
    let lib = prefix.join("lib");
    let soname = format!("libleastconn.so.{}", abi_version());
    assert_eq!(fs::read_link(lib.join("libleastconn.so")).unwrap(), Path::new(&soname));
    assert_eq!(fs::read_link(lib.join(&soname)).unwrap(), Path::new(&format!("libleastconn.so.{VERSION}")));
    assert!(lib.join("libleastconn.a").is_file() && prefix.join("include/leastconn.h").is_file());

    let pkg_config = |args: &[&str]| {
        let out = run_checked(Command::new("pkg-config").env("PKG_CONFIG_PATH", lib.join("pkgconfig")).args(args));
        out.split_whitespace().map(str::to_owned).collect::<Vec<_>>()
    };
    assert_eq!(pkg_config(&["--modversion", "leastconn"]), [VERSION]);
    let cflags = pkg_config(&["--cflags", "leastconn"]);
    let cc = env::var("CC").unwrap_or_else(|_| "cc".into());
    let example = Path::new(ROOT).join("ffi-tests/c/readme_example.c");

    let dynamic = dir.join("example-dynamic");
    run_checked(
        Command::new(&cc)
            .args(&cflags)
            .arg(&example)
            .arg("-o")
            .arg(&dynamic)
            .args(pkg_config(&["--libs", "leastconn"])),
    );
    check_readme_example_output(&run_checked(Command::new(&dynamic).env("LD_LIBRARY_PATH", &lib)));

    // Static: the same flags, with the archive chosen over the .so next to it.
    let libs: Vec<String> = pkg_config(&["--static", "--libs", "leastconn"])
        .into_iter()
        .map(|f| if f == "-lleastconn" { "-l:libleastconn.a".to_owned() } else { f })
        .collect();
    let fixed = dir.join("example-static");
    run_checked(Command::new(&cc).args(&cflags).arg(&example).arg("-o").arg(&fixed).args(&libs));
    check_readme_example_output(&run_checked(&mut Command::new(&fixed)));
    let needed = run_checked(Command::new("readelf").arg("-d").arg(&fixed));
    assert!(!needed.contains("libleastconn"), "linked dynamically after all:\n{needed}");
}
