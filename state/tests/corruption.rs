//! Corrupt or truncated files give clear errors, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use basalt_state::{StateStore, StoreConfig};

fn build(path: &Path) {
    let store = common::open(path, 0);
    for v in 1..=20u64 {
        let writes = (0..200u32)
            .map(|i| (format!("k{i}").into_bytes(), Some(vec![v as u8; 64])))
            .collect();
        store.apply_batch(v, writes).unwrap();
    }
    store.storage().flush().unwrap();
}

fn files(path: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(path)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    out.sort();
    out
}

/// Opens and reads everything; returns the first error message, if any. Must not panic.
fn open_and_read_all(path: &Path) -> Option<String> {
    let store = match StateStore::open(path, StoreConfig::default()) {
        Ok(s) => s,
        Err(e) => return Some(e.to_string()),
    };
    let latest = match store.latest_version() {
        Ok(Some(l)) => l,
        Ok(None) => return Some("store reopened empty".into()),
        Err(e) => return Some(e.to_string()),
    };
    for v in 1..=latest {
        if let Err(e) = store.root(v) {
            return Some(e.to_string());
        }
        for i in 0..200u32 {
            if let Err(e) = store.get_with_proof(format!("k{i}").as_bytes(), v) {
                return Some(e.to_string());
            }
        }
    }
    None
}

#[test]
fn truncated_sst_files_give_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let ssts = files(dir.path(), ".sst");
    assert!(!ssts.is_empty());
    for sst in &ssts {
        let len = std::fs::metadata(sst).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(sst).unwrap();
        f.set_len(len / 2).unwrap();
    }
    let err = open_and_read_all(dir.path()).expect("truncation must be detected");
    assert!(err.contains(".sst"), "error should name the file: {err}");
}

#[test]
fn flipped_bytes_in_sst_files_give_an_error() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    for sst in files(dir.path(), ".sst") {
        let mut bytes = std::fs::read(&sst).unwrap();
        // Flip bytes throughout the data blocks (the footer stays intact so the file opens).
        let data_end = bytes.len().saturating_sub(4096);
        for i in (0..data_end).step_by(97) {
            bytes[i] ^= 0x5a;
        }
        std::fs::write(&sst, bytes).unwrap();
    }
    let err = open_and_read_all(dir.path()).expect("corruption must be detected");
    assert!(
        err.to_lowercase().contains("corrupt") || err.contains("checksum"),
        "unclear error: {err}"
    );
}

#[test]
fn missing_or_truncated_manifest_gives_an_open_error() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    for f in files(dir.path(), "CURRENT") {
        std::fs::write(f, b"MANIF").unwrap();
    }
    let err = open_and_read_all(dir.path()).expect("broken CURRENT must be detected");
    assert!(err.contains("cannot open database"), "{err}");
}
