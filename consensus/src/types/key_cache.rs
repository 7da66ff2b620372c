//! A bounded, process-wide memo of public keys that passed [`super::crypto::PublicKey::from_bytes`].
//!
//! Checking a key decompresses its curve point (a field exponentiation, ~15 µs), and a node decodes the
//! same few keys over and over: every transaction names its sender's key and is decoded at admission,
//! after each block (mempool recheck), in proposals and at execution, on every node; every vote names
//! its validator's. Remembering the keys that passed makes those decodes a map lookup. Only keys that
//! passed every check are stored, under their exact bytes, so a lookup gives exactly what the checks
//! would have: the memo changes speed, never results. Rejected bytes are never stored (they are
//! checked, and rejected, every time).
//!
//! Bounded by two generations of [`GENERATION`] keys: when the current one is full it replaces the
//! previous one, and hits in the previous one move forward, so the keys in use survive. A flood of
//! distinct valid keys only costs what checking them costs anyway.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use ed25519_zebra::VerificationKey as VerifyingKey;

use super::crypto::PUBLIC_KEY_LEN;

/// Keys per generation (two generations: at most 2 × 16,384 keys, ~7 MiB).
pub(crate) const GENERATION: usize = 1 << 14;

#[derive(Default)]
struct Generations {
    current: HashMap<[u8; PUBLIC_KEY_LEN], VerifyingKey>,
    previous: HashMap<[u8; PUBLIC_KEY_LEN], VerifyingKey>,
}

fn memo() -> &'static Mutex<Generations> {
    static MEMO: OnceLock<Mutex<Generations>> = OnceLock::new();
    MEMO.get_or_init(Mutex::default)
}

/// The key checked earlier under exactly these bytes, if it is remembered.
pub(crate) fn get(bytes: &[u8; PUBLIC_KEY_LEN]) -> Option<VerifyingKey> {
    // A poisoned lock means a panic elsewhere mid-update; skipping the memo is always correct.
    let mut memo = memo().lock().ok()?;
    if let Some(key) = memo.current.get(bytes) {
        return Some(*key);
    }
    let key = memo.previous.remove(bytes)?;
    insert_locked(&mut memo, *bytes, key);
    Some(key)
}

/// Remembers a key that passed every check.
pub(crate) fn insert(bytes: [u8; PUBLIC_KEY_LEN], key: VerifyingKey) {
    if let Ok(mut memo) = memo().lock() {
        insert_locked(&mut memo, bytes, key);
    }
}

fn insert_locked(memo: &mut Generations, bytes: [u8; PUBLIC_KEY_LEN], key: VerifyingKey) {
    if memo.current.len() >= GENERATION && !memo.current.contains_key(&bytes) {
        memo.previous = std::mem::take(&mut memo.current);
    }
    memo.current.insert(bytes, key);
}

/// Number of remembered keys.
#[cfg(test)]
pub(crate) fn len() -> usize {
    memo()
        .lock()
        .map(|m| m.current.len() + m.previous.len())
        .unwrap_or(0)
}
