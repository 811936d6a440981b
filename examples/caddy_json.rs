//! A pool from a Caddy `reverse_proxy` handler's JSON:
//! `cargo run --example caddy_json [FILE]` (default `examples/caddy-handler.json`).
//!
//! The sample is a `multi` of a static list, an etcd prefix and a backup `a` source. Without
//! an etcd on 127.0.0.1:2379 the etcd source fails, is logged and skipped; with one, put
//! upstreams under the prefix and run it again:
//!
//! ```sh
//! etcdctl put /services/api/a 10.0.0.7:8080
//! etcdctl put /services/api/b '{"endpoints":["http://10.0.0.8:8080"],"weight":3}'
//! ```

use leastconn::{Outcome, Pool};

/// Prints warnings and errors (a failing source) to stderr.
struct StderrLogger;
impl log::Log for StderrLogger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Warn
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            eprintln!("[{}] {}", r.level(), r.args());
        }
    }
    fn flush(&self) {}
}

fn main() {
    log::set_logger(&StderrLogger).expect("no other logger");
    log::set_max_level(log::LevelFilter::Warn);
    let path = std::env::args().nth(1).unwrap_or_else(|| "examples/caddy-handler.json".to_owned());
    let json = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let pool = match Pool::from_caddy_json(&json) {
        Ok(pool) => pool,
        Err(e) => {
            eprintln!("{path}: {}", e.message());
            std::process::exit(1);
        }
    };
    println!("policy {:?}; {} upstreams:", pool.policy(), pool.len());
    for u in pool.upstreams() {
        println!("  {:<22} weight {} max_requests {} tier {}", u.address, u.weight, u.max_requests, u.tier);
    }
    let picks: Vec<_> = (0..4).map_while(|_| pool.select().ok()).collect();
    let picked: Vec<_> = picks.iter().map(|r| r.address().to_owned()).collect();
    println!("four picks held at once: {picked:?}");
    for r in picks {
        r.release(Outcome::Success);
    }
}
