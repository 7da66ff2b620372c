//! Crash points for the kill-in-the-middle-of-signing tests.
//!
//! `BASALT_FAILPOINT=<name>[:<n>]` makes the process abort (as abruptly as `kill -9`: no destructors, no
//! flushing) the `n`-th time (default 1st) execution reaches the named point. Unset, a failpoint is one
//! relaxed atomic load. Names: `sign.before_privval`, `sign.after_privval`, `sign.after_wal`,
//! `sign.after_send`, `commit.before_store`, `commit.after_store`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

struct Armed {
    name: String,
    at_hit: u64,
    hits: AtomicU64,
}

fn armed() -> Option<&'static Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let spec = std::env::var("BASALT_FAILPOINT").ok()?;
            let (name, at_hit) = match spec.split_once(':') {
                Some((name, n)) => (name.to_owned(), n.parse().unwrap_or(1)),
                None => (spec, 1),
            };
            Some(Armed {
                name,
                at_hit: at_hit.max(1),
                hits: AtomicU64::new(0),
            })
        })
        .as_ref()
}

/// Aborts the process if the failpoint `name` is armed and this is its configured hit.
pub fn hit(name: &str) {
    if let Some(armed) = armed() {
        if armed.name == name && armed.hits.fetch_add(1, Ordering::Relaxed) + 1 == armed.at_hit {
            eprintln!("basalt: failpoint {name} reached: aborting");
            std::process::abort();
        }
    }
}
