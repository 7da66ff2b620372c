//! Crash test: a child process commits blocks in a loop and is killed with SIGKILL at seeded random
//! moments; every restart must reopen at some height h with exactly the root a reference replay has
//! for h, and must never lose a height the child had acknowledged.
//!
//! The child is this same test binary re-executed with `BASALT_CRASH_CHILD_DIR` set, running only
//! `crash_child`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use basalt_state::BlockCommit;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

const CHILD_ENV: &str = "BASALT_CRASH_CHILD_DIR";
/// Upper bound on the child's work if it is never killed.
const CHILD_MAX_HEIGHT: u64 = 100_000;
const RESTARTS: usize = 25;

/// The deterministic block of `height`: 40 writes (some deletes) over 300 keys.
fn block(height: u64) -> BlockCommit {
    let mut rng = ChaCha8Rng::seed_from_u64(height);
    let writes = (0..40)
        .map(|_| {
            let k = rng.next_u32() % 300;
            let value = if rng.next_u32().is_multiple_of(5) {
                None
            } else {
                Some(format!("v{height}-{}", rng.next_u32()).into_bytes())
            };
            (format!("acct/{k}").into_bytes(), value)
        })
        .collect();
    BlockCommit {
        height,
        writes,
        block: format!("block-{height}").into_bytes(),
        commit: format!("commit-{height}").into_bytes(),
    }
}

/// Child mode: commit from the store's latest height on, printing each committed height.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return; // Not running as the child: nothing to do.
    };
    let store = common::open(std::path::Path::new(&dir), 20);
    let mut height = store.latest_version().unwrap().map_or(1, |h| h + 1);
    while height < CHILD_MAX_HEIGHT {
        store.commit_block(block(height)).unwrap();
        store.prune().unwrap();
        println!("committed {height}");
        height += 1;
    }
}

#[test]
fn sigkill_at_random_moments_never_tears_a_commit() {
    let dir = tempfile::tempdir().unwrap();
    let reference_dir = tempfile::tempdir().unwrap();
    let reference = common::open(reference_dir.path(), 0);
    let mut reference_roots = vec![[0u8; 32]]; // index 0 unused: heights start at 1
    let mut rng = ChaCha8Rng::seed_from_u64(0xba5a17);
    let exe = std::env::current_exe().unwrap();
    let mut acknowledged = 0u64;

    for restart in 0..RESTARTS {
        let mut child = Command::new(&exe)
            .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        // Let it commit a random number of blocks, then kill it a random number of microseconds
        // later, so the kill lands anywhere inside a commit or a prune.
        let blocks = 1 + rng.next_u32() % 12;
        let mut seen = 0;
        while seen < blocks {
            let line = lines.next().expect("child exited early").unwrap();
            if let Some(h) = line.strip_prefix("committed ") {
                acknowledged = h.parse().unwrap();
                seen += 1;
            }
        }
        let delay_us = u64::from(rng.next_u32() % 3_000);
        std::thread::sleep(std::time::Duration::from_micros(delay_us));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        drop(lines);

        let store = common::open(dir.path(), 20);
        let latest = store
            .latest_version()
            .unwrap()
            .expect("some height committed");
        assert!(
            latest >= acknowledged,
            "restart {restart}: lost acknowledged height {acknowledged}, reopened at {latest}"
        );
        while (reference_roots.len() as u64) <= latest {
            let h = reference_roots.len() as u64;
            reference_roots.push(reference.commit_block(block(h)).unwrap());
        }
        assert_eq!(
            store.root(latest).unwrap(),
            reference_roots[latest as usize],
            "restart {restart}: root at height {latest}"
        );
        assert_eq!(store.block(latest).unwrap(), Some(block(latest).block));
        assert_eq!(store.commit(latest).unwrap(), Some(block(latest).commit));
        // A sample of reads agrees with the reference.
        for k in (0..300).step_by(37) {
            let key = format!("acct/{k}").into_bytes();
            assert_eq!(
                store.get(&key, latest).unwrap(),
                reference.get(&key, latest).unwrap()
            );
        }
    }
}
