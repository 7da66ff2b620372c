//! `basalt start`: loads and validates the config, installs logging, and runs the node on a multi-thread
//! tokio runtime until SIGINT/SIGTERM.

use super::CliError;
use crate::config::Config;
use crate::home::Home;

/// Runs `basalt start`.
pub fn run(home: Home) -> Result<(), CliError> {
    let config_file = home.config_file();
    let config = Config::load(&config_file)?;
    config
        .validate()
        .map_err(|error| crate::config::ConfigError::InFile {
            path: config_file.clone(),
            source: Box::new(error),
        })?;
    super::logging::init(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("basalt")
        .build()
        .map_err(|e| CliError::Node {
            message: format!("cannot start the tokio runtime: {e}"),
        })?;
    runtime
        .block_on(crate::runtime::run(home, config))
        .map_err(|e| CliError::Node {
            message: e.to_string(),
        })
}
