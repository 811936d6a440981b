//! Generates the C header and sets the shared library's SONAME.
//!
//! The header goes to `$OUT_DIR/leastconn.h`; `include/leastconn.h` is the checked-in copy
//! that a unit test compares with it (`LC_BLESS=1 cargo test header` refreshes the copy).

use std::env;
use std::path::{Path, PathBuf};

/// The files of the C ABI whose items open the header, in this order (the data flow). Any
/// other file in src/ffi/ (a new kind of source, say) follows, in name order.
const FFI_ORDER: [&str; 8] =
    ["status.rs", "limits.rs", "source.rs", "pool.rs", "pick.rs", "stats.rs", "refresher.rs", "log.rs"];

/// The files cbindgen reads: every `src/ffi/*.rs` but `mod.rs` (module wiring only) and
/// `tests.rs`.
fn ffi_sources(dir: &Path) -> Vec<PathBuf> {
    let mut others: Vec<String> = std::fs::read_dir(dir)
        .expect("src/ffi exists")
        .map(|e| e.expect("readable src/ffi").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".rs") && !FFI_ORDER.contains(&n.as_str()) && n != "mod.rs" && n != "tests.rs")
        .collect();
    others.sort();
    FFI_ORDER.iter().map(|n| n.to_string()).chain(others).map(|n| dir.join(n)).collect()
}

fn main() {
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=build.rs");

    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("set by cargo"));
    let (major, minor, patch) = (
        env::var("CARGO_PKG_VERSION_MAJOR").expect("set by cargo"),
        env::var("CARGO_PKG_VERSION_MINOR").expect("set by cargo"),
        env::var("CARGO_PKG_VERSION_PATCH").expect("set by cargo"),
    );

    let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml is valid");
    config.after_includes = Some(format!(
        "\n#define LC_VERSION_MAJOR {major}\n#define LC_VERSION_MINOR {minor}\n#define LC_VERSION_PATCH {patch}"
    ));
    // Only src/ffi/ is the C ABI; parsing its files (in this order, which is the header's)
    // keeps the rest of the crate out of the header.
    let mut builder = cbindgen::Builder::new().with_config(config);
    for file in ffi_sources(&crate_dir.join("src/ffi")) {
        builder = builder.with_src(file);
    }
    builder
        .generate()
        .expect("cbindgen could not generate the C header from src/ffi/")
        .write_to_file(out_dir.join("leastconn.h"));

    // The ABI version in the SONAME follows cargo-c: the major version, or "0.MINOR" while
    // the major is 0 (each 0.x release may break the ABI).
    let abi = if major == "0" { format!("0.{minor}") } else { major };
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libleastconn.so.{abi}");
    }
}
