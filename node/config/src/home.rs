//! The layout of a node home directory (`--home`): where every file lives.
//!
//! The layout is CometBFT's, so operators find files where they expect them:
//!
//! ```text
//! <home>/config/config.toml               node configuration
//! <home>/config/genesis.json              the chain's genesis
//! <home>/config/node_key.json             p2p identity (libp2p PeerId)
//! <home>/config/priv_validator_key.json   consensus signing key
//! <home>/data/priv_validator_state.json   last signed height/round/step (double-sign protection)
//! <home>/data/cs.wal/wal                  consensus write-ahead log
//! <home>/data/basalt.db                   RocksDB: state, blocks, commits
//! ```
//!
//! Also here: [`write_file_durably`], the one way the operator files are written (temporary file, fsync,
//! rename, fsync of the directory), so a crash never leaves a half-written key or config.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Environment variable naming the default home directory.
pub const HOME_ENV: &str = "BASALT_HOME";

/// Name of the default home directory under the user's home (`~/.basalt`).
pub const DEFAULT_HOME_DIR: &str = ".basalt";

/// A node home directory. Only computes paths; nothing here touches the disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// A home rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Home {
        Home { root: root.into() }
    }

    /// The default home: `$BASALT_HOME` if set and non-empty, else `~/.basalt` (from `$HOME`).
    /// `None` when neither variable is usable.
    pub fn default_root() -> Option<PathBuf> {
        let from_env = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
        if let Some(home) = from_env(HOME_ENV) {
            return Some(PathBuf::from(home));
        }
        from_env("HOME").map(|user_home| PathBuf::from(user_home).join(DEFAULT_HOME_DIR))
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `config/`.
    pub fn config_dir(&self) -> PathBuf {
        self.root.join("config")
    }

    /// `config/config.toml`.
    pub fn config_file(&self) -> PathBuf {
        self.config_dir().join("config.toml")
    }

    /// `config/genesis.json`.
    pub fn genesis_file(&self) -> PathBuf {
        self.config_dir().join("genesis.json")
    }

    /// `config/node_key.json`.
    pub fn node_key_file(&self) -> PathBuf {
        self.config_dir().join("node_key.json")
    }

    /// `config/priv_validator_key.json`.
    pub fn priv_validator_key_file(&self) -> PathBuf {
        self.config_dir().join("priv_validator_key.json")
    }

    /// `data/`.
    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// `data/priv_validator_state.json`.
    pub fn priv_validator_state_file(&self) -> PathBuf {
        self.data_dir().join("priv_validator_state.json")
    }

    /// `data/cs.wal/wal`.
    pub fn wal_file(&self) -> PathBuf {
        self.data_dir().join("cs.wal").join("wal")
    }

    /// `data/basalt.db`.
    pub fn db_dir(&self) -> PathBuf {
        self.data_dir().join("basalt.db")
    }
}

/// Who may read a file written by [`write_file_durably`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileMode {
    /// Owner read/write only (0600): keys and signer state.
    Private,
    /// World-readable (0644): config and genesis.
    Public,
}

/// Writes `bytes` to `path` so that after a crash the file holds either its old or its new content:
/// write a temporary file next to it, fsync it, rename it over `path`, fsync the directory.
/// Creates the parent directory if needed.
pub fn write_file_durably(path: &Path, bytes: &[u8], mode: FileMode) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir)?;
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let mut tmp_name = file_name.to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    {
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(match mode {
                FileMode::Private => 0o600,
                FileMode::Public => 0o644,
            });
        }
        let mut file = options.open(&tmp)?;
        // `mode` only applies when the file is created; a stale temporary file keeps its old mode.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let bits = match mode {
                FileMode::Private => 0o600,
                FileMode::Public => 0o644,
            };
            file.set_permissions(fs::Permissions::from_mode(bits))?;
        }
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    sync_dir(&dir)
}

/// Fsyncs a directory so a rename or creation inside it survives a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn layout_matches_cometbft() {
        let home = Home::new("/h");
        assert_eq!(home.root(), Path::new("/h"));
        assert_eq!(home.config_file(), Path::new("/h/config/config.toml"));
        assert_eq!(home.genesis_file(), Path::new("/h/config/genesis.json"));
        assert_eq!(home.node_key_file(), Path::new("/h/config/node_key.json"));
        assert_eq!(
            home.priv_validator_key_file(),
            Path::new("/h/config/priv_validator_key.json")
        );
        assert_eq!(
            home.priv_validator_state_file(),
            Path::new("/h/data/priv_validator_state.json")
        );
        assert_eq!(home.wal_file(), Path::new("/h/data/cs.wal/wal"));
        assert_eq!(home.db_dir(), Path::new("/h/data/basalt.db"));
    }

    #[test]
    fn durable_write_replaces_content_and_sets_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("f.json");
        write_file_durably(&path, b"one", FileMode::Public).unwrap();
        write_file_durably(&path, b"two", FileMode::Private).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert!(!dir.path().join("sub").join("f.json.tmp").exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }
}
