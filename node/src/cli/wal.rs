//! `basalt wal repair`: keeps the longest good prefix of the consensus WAL and moves the rest aside
//! (see [`crate::durability::wal::repair`]). Run it when `start` refuses a WAL with corruption before its
//! tail; a torn tail alone is truncated by `start` itself.

use super::CliError;
use crate::home::Home;

/// `basalt wal <command>`.
#[derive(Debug, Clone, Copy, clap::Subcommand)]
pub enum WalCommand {
    /// Keep the WAL's good records, move everything after the first bad one to a side file.
    Repair,
}

/// Runs a `wal` command.
pub fn run(home: &Home, command: WalCommand) -> Result<(), CliError> {
    match command {
        WalCommand::Repair => {
            let path = home.wal_file();
            let report = crate::durability::wal::repair(&path).map_err(|e| CliError::Wal {
                message: e.to_string(),
            })?;
            println!("{report}");
            Ok(())
        }
    }
}
