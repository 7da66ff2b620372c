//! Durable file writes: write to a temporary file, fsync it, rename over the target, fsync the directory.
//!
//! After [`write_durably`] returns `Ok`, a crash (power loss, `kill -9`) leaves either the old or the new
//! content under `path`, never a mix, and the new content survives: the file's data is fsynced before the
//! rename, and the directory (which holds the name) after it.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Why a durable write failed; every variant names the file or directory involved.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// Creating or writing the temporary file failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file being written.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// fsync of a file failed (its data may not be on disk).
    #[error("cannot fsync {path}: {source}")]
    SyncFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Renaming the temporary file over the target failed.
    #[error("cannot rename {from} to {to}: {source}")]
    Rename {
        /// The temporary file.
        from: PathBuf,
        /// The target.
        to: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Opening or fsyncing a directory failed (a rename in it may not be durable).
    #[error("cannot fsync directory {path}: {source}")]
    SyncDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// The temporary file [`write_durably`] uses for `path`: `path` with `.tmp` appended, in the same
/// directory (a rename is only atomic within one file system).
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut name: OsString = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

/// The directory holding `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Replaces the content of `path` with `bytes` atomically and durably: writes `path.tmp`, fsyncs it,
/// renames it over `path`, then fsyncs the directory. The directory must exist.
pub fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), FsError> {
    let tmp = tmp_path(path);
    let write_err = |source| FsError::Write {
        path: tmp.clone(),
        source,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(write_err)?;
    file.write_all(bytes).map_err(write_err)?;
    file.sync_all().map_err(|source| FsError::SyncFile {
        path: tmp.clone(),
        source,
    })?;
    drop(file);
    fs::rename(&tmp, path).map_err(|source| FsError::Rename {
        from: tmp.clone(),
        to: path.to_path_buf(),
        source,
    })?;
    fsync_dir(parent_dir(path))
}

/// Fsyncs a directory so that entries created, renamed or removed in it survive a crash.
pub fn fsync_dir(dir: &Path) -> Result<(), FsError> {
    let sync_err = |source| FsError::SyncDir {
        path: dir.to_path_buf(),
        source,
    };
    File::open(dir)
        .map_err(sync_err)?
        .sync_all()
        .map_err(sync_err)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_leaves_no_tmp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_durably(&path, b"one").unwrap();
        write_durably(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert!(!tmp_path(&path).exists());
    }

    #[test]
    fn missing_directory_error_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent").join("state.json");
        let err = write_durably(&path, b"x").unwrap_err();
        assert!(matches!(err, FsError::Write { .. }));
        assert!(err.to_string().contains("state.json.tmp"), "{err}");
    }

    #[test]
    fn fsync_dir_of_missing_dir_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = fsync_dir(&missing).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn parent_of_bare_name_is_dot() {
        assert_eq!(parent_dir(Path::new("wal")), Path::new("."));
        assert_eq!(parent_dir(Path::new("a/wal")), Path::new("a"));
    }
}
