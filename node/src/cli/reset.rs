//! `basalt unsafe-reset-all`: deletes the chain data (blocks, state, WAL) and resets the signer state to
//! height 0, keeping the keys, config and genesis.
//!
//! Unsafe because the reset signer state forgets what this validator signed: running it on a live chain's
//! validator and rejoining at a height it already signed can double-sign. For local and test networks.

use super::CliError;
use crate::home::{sync_dir, Home};

use super::init::write_initial_signer_state;

/// Runs `basalt unsafe-reset-all`.
pub fn run(home: &Home) -> Result<(), CliError> {
    for line in reset_all(home)? {
        println!("{line}");
    }
    Ok(())
}

/// Removes everything in `data/` except `priv_validator_state.json`, which is rewritten at height 0.
/// Returns a line per action.
pub fn reset_all(home: &Home) -> Result<Vec<String>, CliError> {
    let data = home.data_dir();
    let keep = home.priv_validator_state_file();
    let mut report = Vec::new();
    if data.exists() {
        let entries = std::fs::read_dir(&data).map_err(CliError::io("cannot list", &data))?;
        let mut paths = Vec::new();
        for entry in entries {
            let entry = entry.map_err(CliError::io("cannot list", &data))?;
            paths.push(entry.path());
        }
        paths.sort();
        for path in paths {
            if path == keep {
                continue;
            }
            // `symlink_metadata`: a symlink is removed itself, never followed into someone else's files.
            let meta =
                std::fs::symlink_metadata(&path).map_err(CliError::io("cannot stat", &path))?;
            if meta.is_dir() {
                std::fs::remove_dir_all(&path).map_err(CliError::io("cannot remove", &path))?;
            } else {
                std::fs::remove_file(&path).map_err(CliError::io("cannot remove", &path))?;
            }
            report.push(format!("Removed {}", path.display()));
        }
        sync_dir(&data).map_err(CliError::io("cannot sync", &data))?;
    } else {
        std::fs::create_dir_all(&data).map_err(CliError::io("cannot create", &data))?;
    }
    write_initial_signer_state(&keep)?;
    report.push(format!(
        "Reset private validator state {} to height 0",
        keep.display()
    ));
    Ok(report)
}
