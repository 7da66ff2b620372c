//! `basalt init`: creates a home directory with a config, keys, signer state and a single-validator genesis.
//!
//! Like CometBFT, existing files are kept (and reported), never overwritten: re-running `init` on a home
//! cannot lose a key or change a chain's genesis.

use std::path::Path;

use basalt_consensus::types::ChainId;

use super::CliError;
use crate::config::{Config, Profile};
use crate::genesis::{genesis_time_now, GenesisDoc, GenesisValidator, DEFAULT_VALIDATOR_POWER};
use crate::home::{write_file_durably, FileMode, Home};
use crate::keys::{NodeKey, PrivValidatorKey};

/// The chain id `basalt init` uses without `--chain-id`.
pub const DEFAULT_CHAIN_ID: &str = "basalt-local";

/// The content of a fresh `priv_validator_state.json`: nothing signed yet.
pub const INITIAL_PRIV_VALIDATOR_STATE: &str =
    "{\n  \"height\": \"0\",\n  \"round\": 0,\n  \"step\": 0\n}\n";

/// Arguments of `basalt init`.
#[derive(Debug, Clone, clap::Args)]
pub struct InitArgs {
    /// Chain id of the new genesis.
    #[arg(long, default_value = DEFAULT_CHAIN_ID)]
    pub chain_id: String,
    /// Human-readable name of this node.
    #[arg(long)]
    pub moniker: Option<String>,
    /// Config profile: CometBFT's default timeouts, or short ones for validators on one machine.
    #[arg(long, value_enum, default_value_t = Profile::Default)]
    pub profile: Profile,
}

/// What to create.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// Chain id of the genesis (if one is created).
    pub chain_id: ChainId,
    /// Moniker written into a new config.
    pub moniker: Option<String>,
    /// Profile of a new config.
    pub profile: Profile,
}

/// Runs `basalt init`: prints one line per file created or kept.
pub fn run(home: &Home, args: &InitArgs) -> Result<(), CliError> {
    let chain_id = ChainId::new(args.chain_id.clone()).map_err(|e| CliError::BadArgument {
        argument: "--chain-id",
        reason: e.to_string(),
    })?;
    let options = InitOptions {
        chain_id,
        moniker: args.moniker.clone(),
        profile: args.profile,
    };
    for line in init_home(home, &options, &mut rand_core::OsRng)? {
        println!("{line}");
    }
    Ok(())
}

/// Creates whatever is missing in `home`; returns a human-readable line per file.
pub fn init_home<R: rand_core::CryptoRngCore + ?Sized>(
    home: &Home,
    options: &InitOptions,
    rng: &mut R,
) -> Result<Vec<String>, CliError> {
    let mut report = Vec::new();
    create_dirs(home)?;

    let config_file = home.config_file();
    if config_file.exists() {
        // Parse it anyway: a broken config should be reported now, not at `start`.
        Config::load(&config_file)?;
        report.push(format!("Found config file {}", config_file.display()));
    } else {
        let mut config = options.profile.config();
        if let Some(moniker) = &options.moniker {
            config.moniker = moniker.clone();
        }
        config.validate()?;
        config.save(&config_file)?;
        report.push(format!("Generated config file {}", config_file.display()));
    }

    let pv_file = home.priv_validator_key_file();
    let pv_key = if pv_file.exists() {
        report.push(format!("Found private validator key {}", pv_file.display()));
        PrivValidatorKey::load(&pv_file)?
    } else {
        let key = PrivValidatorKey::generate(rng);
        key.save(&pv_file)?;
        report.push(format!(
            "Generated private validator key {}",
            pv_file.display()
        ));
        key
    };

    let state_file = home.priv_validator_state_file();
    if state_file.exists() {
        report.push(format!(
            "Found private validator state {}",
            state_file.display()
        ));
    } else {
        write_initial_signer_state(&state_file)?;
        report.push(format!(
            "Generated private validator state {}",
            state_file.display()
        ));
    }

    let node_key_file = home.node_key_file();
    if node_key_file.exists() {
        let key = NodeKey::load(&node_key_file)?;
        report.push(format!(
            "Found node key {} (node id {})",
            node_key_file.display(),
            key.peer_id()
        ));
    } else {
        let key = NodeKey::generate(rng);
        key.save(&node_key_file)?;
        report.push(format!(
            "Generated node key {} (node id {})",
            node_key_file.display(),
            key.peer_id()
        ));
    }

    let genesis_file = home.genesis_file();
    if genesis_file.exists() {
        GenesisDoc::load(&genesis_file)?;
        report.push(format!("Found genesis file {}", genesis_file.display()));
    } else {
        let moniker = options.moniker.clone().unwrap_or_default();
        let validator =
            GenesisValidator::new(&pv_key.public_key(), DEFAULT_VALIDATOR_POWER, moniker);
        let doc = GenesisDoc::new(
            &options.chain_id,
            genesis_time_now(),
            vec![validator],
            serde_json::json!({ "accounts": [] }),
        );
        doc.validate()?;
        doc.save(&genesis_file)?;
        report.push(format!(
            "Generated genesis file {} (chain id {})",
            genesis_file.display(),
            options.chain_id
        ));
    }
    Ok(report)
}

/// Creates `config/` and `data/` (the latter private: it holds the signer state).
pub fn create_dirs(home: &Home) -> Result<(), CliError> {
    for dir in [home.config_dir(), home.data_dir()] {
        std::fs::create_dir_all(&dir).map_err(CliError::io("cannot create", &dir))?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let data = home.data_dir();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700))
            .map_err(CliError::io("cannot set permissions of", &data))?;
    }
    Ok(())
}

/// Writes `priv_validator_state.json` at height 0 (nothing signed), durably and private.
pub fn write_initial_signer_state(path: &Path) -> Result<(), CliError> {
    write_file_durably(
        path,
        INITIAL_PRIV_VALIDATOR_STATE.as_bytes(),
        FileMode::Private,
    )
    .map_err(CliError::io("cannot write", path))
}
