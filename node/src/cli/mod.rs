//! Subcommands of the `basalt` binary, one module each; `src/main.rs` wires them into clap.
//!
//! Each subcommand's arguments are a `clap::Args` struct next to a `run` function, and the work itself is a
//! plain library function (e.g. [`init::init_home`], [`testnet::create_testnet`]) so tests and other tools
//! can call it without a process.

pub mod init;
pub mod light;
pub mod load;
pub mod logging;
pub mod relay;
pub mod reset;
pub mod show;
pub mod start;
pub mod testnet;
pub mod tx;
pub mod version;
pub mod wal;

use std::path::{Path, PathBuf};

use crate::config::ConfigError;
use crate::genesis::GenesisError;
use crate::home::Home;
use crate::keys::KeyError;

/// Why a subcommand failed. `main` prints it on one line and exits non-zero.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A config file problem.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A genesis file problem.
    #[error(transparent)]
    Genesis(#[from] GenesisError),
    /// A key file problem.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A file system operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done ("cannot create", "cannot remove", ...).
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An argument is invalid.
    #[error("{argument}: {reason}")]
    BadArgument {
        /// The flag, e.g. `--validators`.
        argument: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// No home directory given and none could be derived.
    #[error("no home directory: pass --home, or set BASALT_HOME or HOME")]
    NoHome,
    /// The node failed.
    #[error("node: {message}")]
    Node {
        /// The node's error.
        message: String,
    },
    /// The WAL could not be repaired.
    #[error("wal: {message}")]
    Wal {
        /// The WAL's error.
        message: String,
    },
    /// A transaction command failed (RPC, key file, rejection).
    #[error(transparent)]
    Tx(#[from] tx::TxError),
    /// The relayer failed.
    #[error("relay: {0}")]
    Relay(#[from] relay::RelayError),
    /// The light proxy failed.
    #[error("light: {0}")]
    Light(#[from] light::LightError),
}

impl CliError {
    /// An I/O error with what was being done to which path.
    pub fn io<'a>(
        action: &'static str,
        path: &'a Path,
    ) -> impl FnOnce(std::io::Error) -> CliError + 'a {
        move |source| CliError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The home directory: `--home` if given, else `$BASALT_HOME`, else `~/.basalt`.
pub fn resolve_home(flag: Option<&Path>) -> Result<Home, CliError> {
    match flag {
        Some(path) => Ok(Home::new(path)),
        None => Home::default_root().map(Home::new).ok_or(CliError::NoHome),
    }
}
