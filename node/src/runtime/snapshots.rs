//! The state snapshots a node takes every `[statesync] snapshot_interval` heights, kept in
//! `data/snapshots/`: one directory per height holding `manifest` and `chunk-<i>` files
//! ([`basalt_state::snapshot`]). A snapshot is written into `<height>.partial/` and renamed when
//! complete (directory synced), so a crash leaves either a whole snapshot or a partial directory
//! that the next start removes. Only the newest `snapshot_keep_recent` are kept.
//!
//! Snapshots are taken on the pruning thread ([`super::pruner`]), before it prunes: the version
//! being exported cannot be pruned under the walk, and a height never waits for a snapshot.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use basalt_p2p::{SnapshotOffer, MAX_MANIFEST_BYTES, MAX_SNAPSHOT_OFFERS};
use basalt_state::snapshot::{Manifest, SnapshotError, MAX_CHUNK_BYTES};
use basalt_state::StateStore;

// What the p2p protocol carries must hold what the state writes.
const _: () = assert!(basalt_p2p::MAX_SNAPSHOT_CHUNK_BYTES >= MAX_CHUNK_BYTES);
const _: () = assert!(MAX_MANIFEST_BYTES >= basalt_state::snapshot::MAX_MANIFEST_BYTES);

/// Why a snapshot could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotDirError {
    /// A file of the snapshot directory.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Exporting from the store failed, or a stored manifest does not decode.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// A stored chunk is larger than any chunk can be.
    #[error("{}: {len} bytes, more than a chunk may hold", path.display())]
    Oversized {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: u64,
    },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> SnapshotDirError + '_ {
    move |source| SnapshotDirError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What snapshots to take (`[statesync]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotPolicy {
    /// A snapshot every this many heights (0: none).
    pub interval: u64,
    /// Snapshots kept (≥ 1).
    pub keep_recent: usize,
    /// Target chunk size, bytes.
    pub chunk_bytes: usize,
}

/// The snapshot directory.
#[derive(Debug)]
pub struct SnapshotDir {
    dir: PathBuf,
}

impl SnapshotDir {
    /// Opens (creating) `dir` and removes snapshots a crash left half-written.
    pub fn open(dir: &Path) -> Result<SnapshotDir, SnapshotDirError> {
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        for entry in fs::read_dir(dir).map_err(io_error(dir))? {
            let path = entry.map_err(io_error(dir))?.path();
            if path.extension().is_some_and(|e| e == "partial") {
                fs::remove_dir_all(&path).map_err(io_error(&path))?;
            }
        }
        Ok(SnapshotDir {
            dir: dir.to_path_buf(),
        })
    }

    fn path_of(&self, height: u64) -> PathBuf {
        self.dir.join(height.to_string())
    }

    /// Heights of the complete snapshots, oldest first.
    pub fn heights(&self) -> Result<Vec<u64>, SnapshotDirError> {
        let mut heights: Vec<u64> = fs::read_dir(&self.dir)
            .map_err(io_error(&self.dir))?
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        heights.sort_unstable();
        Ok(heights)
    }

    /// Writes the snapshot of `height` from `store` (chunks of about `chunk_bytes`); returns its
    /// manifest. An existing snapshot of that height is kept as it is.
    pub fn take(
        &self,
        store: &StateStore,
        height: u64,
        chunk_bytes: usize,
    ) -> Result<Manifest, SnapshotDirError> {
        if self.path_of(height).exists() {
            return self.manifest(height);
        }
        let partial = self.dir.join(format!("{height}.partial"));
        if partial.exists() {
            fs::remove_dir_all(&partial).map_err(io_error(&partial))?;
        }
        fs::create_dir(&partial).map_err(io_error(&partial))?;
        let manifest = store.export_snapshot(height, chunk_bytes, |index, bytes| {
            let path = partial.join(format!("chunk-{index}"));
            write_synced(&path, bytes).map_err(|e| {
                SnapshotError::Malformed(format!("cannot write {}: {e}", path.display()))
            })
        })?;
        write_synced(&partial.join("manifest"), &manifest.encode()).map_err(io_error(&partial))?;
        let done = self.path_of(height);
        fs::rename(&partial, &done).map_err(io_error(&done))?;
        basalt_config::home::sync_dir(&self.dir).map_err(io_error(&self.dir))?;
        Ok(manifest)
    }

    /// Removes all but the newest `keep` snapshots.
    pub fn keep_newest(&self, keep: usize) -> Result<(), SnapshotDirError> {
        let heights = self.heights()?;
        let old = heights.len().saturating_sub(keep);
        for height in &heights[..old] {
            let path = self.path_of(*height);
            fs::remove_dir_all(&path).map_err(io_error(&path))?;
        }
        Ok(())
    }

    /// The manifest of the snapshot of `height`.
    pub fn manifest(&self, height: u64) -> Result<Manifest, SnapshotDirError> {
        Ok(Manifest::decode(&self.manifest_bytes(height)?)?)
    }

    /// The stored encoding of the manifest of the snapshot of `height`.
    pub fn manifest_bytes(&self, height: u64) -> Result<Vec<u8>, SnapshotDirError> {
        let path = self.path_of(height).join("manifest");
        read_bounded(&path, MAX_MANIFEST_BYTES as u64)
    }

    /// What this node offers peers: its newest snapshots (at most [`MAX_SNAPSHOT_OFFERS`]), each
    /// with its manifest; a snapshot that cannot be read (removed meanwhile) is left out.
    pub fn offers(&self) -> Vec<SnapshotOffer> {
        let heights = self.heights().unwrap_or_default();
        heights
            .iter()
            .rev()
            .filter_map(|height| {
                let manifest = self.manifest_bytes(*height).ok()?;
                Some(SnapshotOffer {
                    height: *height,
                    manifest,
                })
            })
            .take(MAX_SNAPSHOT_OFFERS)
            .collect()
    }

    /// Chunk `index` of the snapshot of `height`.
    pub fn chunk(&self, height: u64, index: u32) -> Result<Vec<u8>, SnapshotDirError> {
        let path = self.path_of(height).join(format!("chunk-{index}"));
        read_bounded(&path, MAX_CHUNK_BYTES as u64)
    }
}

/// Writes `bytes` to `path` and fsyncs it.
fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write as _;
    let mut file = fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Reads `path`, refusing a file longer than `max` bytes before reading it.
fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, SnapshotDirError> {
    let len = fs::metadata(path).map_err(io_error(path))?.len();
    if len > max {
        return Err(SnapshotDirError::Oversized {
            path: path.to_path_buf(),
            len,
        });
    }
    fs::read(path).map_err(io_error(path))
}

/// The height a snapshot is due at when `height` was just committed and the last one taken was of
/// `last` (none: `None`): the newest multiple of `interval` at or below `height`, if above `last`.
/// Heights are reported coalesced, so the due height may lie a little below the one reported.
pub fn due(height: u64, interval: u64, last: Option<u64>) -> Option<u64> {
    if interval == 0 {
        return None;
    }
    let due = height - height % interval;
    (due > 0 && last.is_none_or(|last| due > last)).then_some(due)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use basalt_state::snapshot::{Restore, RestoreLimits};
    use basalt_state::StoreConfig;

    use super::*;

    fn store_with_versions(dir: &Path, versions: u64) -> StateStore {
        let store = StateStore::open(dir, StoreConfig::default()).unwrap();
        for v in 1..=versions {
            let writes = (0..50u64)
                .map(|k| {
                    (
                        format!("k{}", (k * 7 + v) % 300).into_bytes(),
                        Some(format!("v{v}").into_bytes()),
                    )
                })
                .collect();
            store.apply_batch(v, writes).unwrap();
        }
        store
    }

    #[test]
    fn snapshots_are_due_at_multiples_of_the_interval_once() {
        assert_eq!(due(9, 10, None), None);
        assert_eq!(due(10, 10, None), Some(10));
        assert_eq!(due(10, 10, Some(10)), None);
        // A coalesced report: 20 was not reported, 23 was.
        assert_eq!(due(23, 10, Some(10)), Some(20));
        assert_eq!(due(23, 0, None), None);
    }

    #[test]
    fn a_taken_snapshot_restores_the_state_and_only_the_newest_are_kept() {
        let db = tempfile::tempdir().unwrap();
        let store = store_with_versions(db.path(), 12);
        let dir = tempfile::tempdir().unwrap();
        let snapshots = SnapshotDir::open(dir.path()).unwrap();
        for height in [4, 8, 12] {
            snapshots.take(&store, height, 1024).unwrap();
        }
        assert_eq!(snapshots.heights().unwrap(), vec![4, 8, 12]);
        snapshots.keep_newest(2).unwrap();
        assert_eq!(snapshots.heights().unwrap(), vec![8, 12]);
        // Peers are offered the newest first, each with the manifest as stored.
        let offers = snapshots.offers();
        assert_eq!(
            offers.iter().map(|o| o.height).collect::<Vec<_>>(),
            vec![12, 8]
        );
        assert_eq!(
            Manifest::decode(&offers[1].manifest).unwrap(),
            snapshots.manifest(8).unwrap()
        );

        // What a peer would be served restores the state of that height.
        let manifest = snapshots.manifest(8).unwrap();
        assert_eq!(manifest.root, store.root(8).unwrap());
        let config = StoreConfig::default();
        let mut restore = Restore::new(
            manifest.clone(),
            store.root(8).unwrap(),
            RestoreLimits {
                max_key_bytes: config.max_key_bytes,
                max_value_bytes: config.max_value_bytes,
                max_total_bytes: 1 << 30,
            },
        )
        .unwrap();
        for index in 0..manifest.chunk_hashes.len() as u32 {
            restore
                .add(index, &snapshots.chunk(8, index).unwrap())
                .unwrap();
        }
        let fresh = tempfile::tempdir().unwrap();
        let target = StateStore::open(fresh.path(), StoreConfig::default()).unwrap();
        assert_eq!(restore.finish(&target).unwrap(), store.root(8).unwrap());
        assert!(snapshots
            .chunk(8, manifest.chunk_hashes.len() as u32)
            .is_err());
    }

    #[test]
    fn a_half_written_snapshot_is_removed_at_open_and_never_listed() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("30.partial")).unwrap();
        fs::write(dir.path().join("30.partial").join("chunk-0"), b"torn").unwrap();
        let snapshots = SnapshotDir::open(dir.path()).unwrap();
        assert!(!dir.path().join("30.partial").exists());
        assert!(snapshots.heights().unwrap().is_empty());
        // A stored chunk grown past any chunk's size is refused before it is read.
        fs::create_dir(dir.path().join("5")).unwrap();
        let big = fs::File::create(dir.path().join("5").join("chunk-0")).unwrap();
        big.set_len(MAX_CHUNK_BYTES as u64 + 1).unwrap();
        assert!(matches!(
            snapshots.chunk(5, 0),
            Err(SnapshotDirError::Oversized { .. })
        ));
    }
}
