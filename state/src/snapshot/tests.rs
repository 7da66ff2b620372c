#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use super::*;
use crate::store::StoreConfig;
use crate::Write;

fn open() -> (tempfile::TempDir, StateStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(dir.path(), StoreConfig::default()).unwrap();
    (dir, store)
}

fn limits() -> RestoreLimits {
    let config = StoreConfig::default();
    RestoreLimits {
        max_key_bytes: config.max_key_bytes,
        max_value_bytes: config.max_value_bytes,
        max_total_bytes: 1 << 30,
    }
}

/// A store with ten versions of seeded writes over 2,000 keys: sets, overwrites and deletions.
fn source() -> (tempfile::TempDir, StateStore) {
    let (dir, store) = open();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for version in 1..=10u64 {
        let writes: Vec<Write> = (0..400)
            .map(|_| {
                let key = format!("acct/{}", rng.next_u32() % 2_000).into_bytes();
                let value = if rng.next_u32() % 5 == 0 {
                    None
                } else {
                    Some(
                        rng.next_u64()
                            .to_le_bytes()
                            .repeat(1 + (rng.next_u32() % 8) as usize),
                    )
                };
                (key, value)
            })
            .collect();
        store.apply_batch(version, writes).unwrap();
    }
    (dir, store)
}

/// Chunks by index, as a peer would serve them.
fn export(store: &StateStore, version: u64, target: usize) -> (Manifest, Vec<Vec<u8>>) {
    let mut chunks = Vec::new();
    let manifest = store
        .export_snapshot(version, target, |index, bytes| {
            assert_eq!(index as usize, chunks.len());
            chunks.push(bytes.to_vec());
            Ok(())
        })
        .unwrap();
    (manifest, chunks)
}

fn restore_all(manifest: &Manifest, chunks: &[Vec<u8>]) -> Restore {
    let mut restore = Restore::new(manifest.clone(), manifest.root, limits()).unwrap();
    for (i, chunk) in chunks.iter().enumerate() {
        restore.add(i as u32, chunk).unwrap();
    }
    restore
}

#[test]
fn a_restored_store_has_the_root_values_and_proofs_of_the_snapshot() {
    let (_a, source) = source();
    // An older version too: the snapshot is of the version asked, not the latest.
    for version in [6, 10] {
        let (manifest, chunks) = export(&source, version, 4 * 1024);
        assert_eq!(manifest.root, source.root(version).unwrap());
        assert!(chunks.len() > 5, "{} chunks", chunks.len());
        for chunk in &chunks {
            assert!(chunk.len() < 4 * 1024 + 1024, "{}", chunk.len());
        }
        let restore = restore_all(&manifest, &chunks);
        assert!(restore.is_complete());
        let (_b, target) = open();
        assert_eq!(restore.finish(&target).unwrap(), manifest.root);
        assert_eq!(target.latest_version().unwrap(), Some(version));
        assert_eq!(target.root(version).unwrap(), source.root(version).unwrap());
        for i in 0..2_000 {
            let key = format!("acct/{i}").into_bytes();
            let want = source.get(&key, version).unwrap();
            assert_eq!(target.get(&key, version).unwrap(), want, "key {i}");
            let (value, proof) = target.get_with_proof(&key, version).unwrap();
            let root = manifest.root;
            match value {
                Some(v) => assert!(crate::verify_membership(&proof, &root, &key, &v)),
                None => assert!(crate::verify_non_membership(&proof, &root, &key)),
            }
        }
        assert_eq!(
            manifest.leaves,
            (0..2_000)
                .filter(|i| source
                    .get(format!("acct/{i}").as_bytes(), version)
                    .unwrap()
                    .is_some())
                .count() as u64
        );
        // The restored store goes on from there like the source.
        let next: Vec<Write> = vec![(b"acct/1".to_vec(), Some(b"after".to_vec()))];
        let (_c, again) = open();
        restore_all(&manifest, &chunks).finish(&again).unwrap();
        assert_eq!(
            again.apply_batch(version + 1, next.clone()).unwrap(),
            target.apply_batch(version + 1, next).unwrap()
        );
    }
}

#[test]
fn an_empty_state_is_one_empty_chunk() {
    let (_a, source) = open();
    source.apply_batch(1, Vec::new()).unwrap();
    let (manifest, chunks) = export(&source, 1, 1024);
    assert_eq!((manifest.leaves, chunks.len()), (0, 1));
    let (_b, target) = open();
    assert_eq!(
        restore_all(&manifest, &chunks).finish(&target).unwrap(),
        source.root(1).unwrap()
    );
}

#[test]
fn a_corrupted_chunk_blames_its_sender_and_the_right_one_completes_the_restore() {
    let (_a, source) = source();
    let (manifest, chunks) = export(&source, 10, 4 * 1024);
    let mut restore = Restore::new(manifest.clone(), manifest.root, limits()).unwrap();
    let mut corrupted = chunks[2].clone();
    corrupted[10] ^= 1;
    let refused = restore.add(2, &corrupted).unwrap_err();
    assert!(refused.blames_sender(), "{refused}");
    // Another chunk's bytes under this index are as wrong.
    assert!(restore.add(2, &chunks[3]).unwrap_err().blames_sender());
    assert!(matches!(
        restore.add(chunks.len() as u32, &chunks[0]),
        Err(SnapshotError::NoSuchChunk { .. })
    ));
    for (i, chunk) in chunks.iter().enumerate() {
        if i != 2 {
            restore.add(i as u32, chunk).unwrap();
        }
    }
    assert_eq!(restore.missing().collect::<Vec<_>>(), vec![2]);
    let (_b, target) = open();
    let incomplete = Restore::new(manifest.clone(), manifest.root, limits()).unwrap();
    assert!(matches!(
        incomplete.finish(&target),
        Err(SnapshotError::Incomplete(0))
    ));
    restore.add(2, &chunks[2]).unwrap();
    assert_eq!(restore.finish(&target).unwrap(), manifest.root);
}

#[test]
fn a_manifest_not_matching_the_trusted_app_hash_is_refused_up_front() {
    let (_a, source) = source();
    let (manifest, _) = export(&source, 10, 4 * 1024);
    let other = source.root(9).unwrap();
    assert!(matches!(
        Restore::new(manifest.clone(), other, limits()),
        Err(SnapshotError::UntrustedRoot { version: 10, .. })
    ));
    let mut bad = manifest.clone();
    bad.format = 2;
    assert!(matches!(
        Restore::new(bad, manifest.root, limits()),
        Err(SnapshotError::Format { got: 2 })
    ));
    let mut none = manifest.clone();
    none.chunk_hashes.clear();
    assert!(matches!(
        Restore::new(none, manifest.root, limits()),
        Err(SnapshotError::ChunkCount(0))
    ));
    // The encoding round-trips; a truncated one is refused.
    let bytes = manifest.encode();
    assert_eq!(Manifest::decode(&bytes).unwrap(), manifest);
    assert!(Manifest::decode(&bytes[..bytes.len() - 1]).is_err());
}

/// A snapshot whose chunk hashes match its chunks but whose content is another state: every chunk
/// is accepted, the built tree does not hash to the root, and nothing is written.
#[test]
fn a_lying_snapshot_with_consistent_hashes_writes_nothing() {
    let (_a, source) = source();
    let (mut manifest, mut chunks) = export(&source, 10, 4 * 1024);
    let mut entries: Vec<Entry> = borsh::from_slice(&chunks[1]).unwrap();
    entries[0].1 = b"minted".to_vec();
    chunks[1] = borsh::to_vec(&entries).unwrap();
    manifest.chunk_hashes[1] = key_hash(&chunks[1]);
    let restore = restore_all(&manifest, &chunks);
    let (_b, target) = open();
    assert!(matches!(
        restore.finish(&target),
        Err(SnapshotError::RootMismatch { .. })
    ));
    assert_eq!(target.latest_version().unwrap(), None);
    // A leaf left out (hashes kept consistent) is caught by the count before the tree is built.
    let (mut manifest, mut chunks) = export(&source, 10, 4 * 1024);
    let mut entries: Vec<Entry> = borsh::from_slice(&chunks[0]).unwrap();
    entries.pop();
    chunks[0] = borsh::to_vec(&entries).unwrap();
    manifest.chunk_hashes[0] = key_hash(&chunks[0]);
    assert!(matches!(
        restore_all(&manifest, &chunks).finish(&target),
        Err(SnapshotError::LeafCount { .. })
    ));
    assert_eq!(target.latest_version().unwrap(), None);
}

#[test]
fn malformed_chunks_are_refused_before_they_are_kept() {
    let (_a, source) = source();
    let (manifest, chunks) = export(&source, 10, 4 * 1024);
    let entries: Vec<Entry> = borsh::from_slice(&chunks[0]).unwrap();
    let reserved: Vec<u8> = [RESERVED_PREFIX, b"x"].concat();
    let cases: Vec<(&str, Vec<Entry>)> = vec![
        ("reversed", entries.iter().rev().cloned().collect()),
        ("reserved", vec![(reserved, b"v".to_vec())]),
        ("empty key", vec![(Vec::new(), b"v".to_vec())]),
        ("empty value", vec![(b"k".to_vec(), Vec::new())]),
        ("huge key", vec![(vec![1; 2_000], b"v".to_vec())]),
    ];
    for (what, entries) in cases {
        let bytes = borsh::to_vec(&entries).unwrap();
        let mut lying = manifest.clone();
        lying.chunk_hashes[0] = key_hash(&bytes);
        let mut restore = Restore::new(lying, manifest.root, limits()).unwrap();
        let refused = restore.add(0, &bytes).unwrap_err();
        assert!(
            matches!(refused, SnapshotError::BadChunk { index: 0, .. }),
            "{what}: {refused}"
        );
        assert!(!refused.blames_sender(), "{what}");
    }
    // Undecodable bytes listed by the manifest.
    let mut lying = manifest.clone();
    lying.chunk_hashes[0] = key_hash(b"\xff\xff\xff\xff");
    let mut restore = Restore::new(lying, manifest.root, limits()).unwrap();
    assert!(matches!(
        restore.add(0, b"\xff\xff\xff\xff"),
        Err(SnapshotError::BadChunk { .. })
    ));
    // Chunks out of order across chunk boundaries: swap two chunks in the manifest.
    let mut swapped = manifest.clone();
    swapped.chunk_hashes.swap(0, 1);
    let mut restore = Restore::new(swapped, manifest.root, limits()).unwrap();
    restore.add(0, &chunks[1]).unwrap();
    restore.add(1, &chunks[0]).unwrap();
    for (i, chunk) in chunks.iter().enumerate().skip(2) {
        restore.add(i as u32, chunk).unwrap();
    }
    let (_b, target) = open();
    assert!(matches!(
        restore.finish(&target),
        Err(SnapshotError::BadChunk { index: 1, .. })
    ));
    // A restore keeps no more than its limit.
    let mut small = limits();
    small.max_total_bytes = 1_000;
    let mut restore = Restore::new(manifest.clone(), manifest.root, small).unwrap();
    assert!(matches!(
        restore.add(0, &chunks[0]),
        Err(SnapshotError::TooLarge { max: 1_000 })
    ));
}

#[test]
fn a_restore_needs_an_empty_store_and_an_export_an_available_version() {
    let (_a, source) = source();
    let (manifest, chunks) = export(&source, 10, 4 * 1024);
    assert!(matches!(
        restore_all(&manifest, &chunks).finish(&source),
        Err(SnapshotError::NotEmpty(10))
    ));
    assert!(source.export_snapshot(11, 1024, |_, _| Ok(())).is_err());
    assert!(matches!(
        source.export_snapshot(10, 0, |_, _| Ok(())),
        Err(SnapshotError::ChunkTarget(0))
    ));
}
