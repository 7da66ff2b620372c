//! The `basalt` binary.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use basalt_node::cli::init::InitArgs;
use basalt_node::cli::light::LightArgs;
use basalt_node::cli::load::LoadArgs;
use basalt_node::cli::relay::RelayCommand;
use basalt_node::cli::testnet::TestnetArgs;
use basalt_node::cli::tx::TxCommand;
use basalt_node::cli::version::{self, VersionArgs};
use basalt_node::cli::wal::WalCommand;
use basalt_node::cli::{self, resolve_home, CliError};
use clap::{Parser, Subcommand};

/// Basalt: a Tendermint-style BFT blockchain node.
#[derive(Debug, Parser)]
#[command(name = "basalt", version)]
struct Cli {
    /// Node home directory (default: $BASALT_HOME, else ~/.basalt).
    #[arg(long, global = true)]
    home: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// The subcommands; each one's arguments and code live in `basalt_node::cli::<name>`.
#[derive(Debug, Subcommand)]
enum Command {
    /// Create a home: config, keys, signer state and a single-validator genesis (existing files are kept).
    Init(InitArgs),
    /// Run the node.
    Start,
    /// Create the homes of a local test network sharing one genesis.
    Testnet(TestnetArgs),
    /// Print this node's id (libp2p PeerId).
    ShowNodeId,
    /// Print this validator's public key as JSON.
    ShowValidator,
    /// Delete blocks, state and WAL and reset the signer state to height 0 (keeps keys and config).
    UnsafeResetAll,
    /// Sign and submit (or just build) transactions.
    #[command(subcommand)]
    Tx(TxCommand),
    /// IBC relayer between two Basalt chains.
    #[command(subcommand)]
    Relay(RelayCommand),
    /// Light-client proxy: follow a chain from a trusted header through an RPC server and serve
    /// only what verifies.
    Light(LightArgs),
    /// Push pre-signed transfers at nodes for a bounded time; report committed tx/s and latency.
    Load(LoadArgs),
    /// Consensus write-ahead log maintenance.
    #[command(subcommand)]
    Wal(WalCommand),
    /// Print the version; with --long or --json, also what the binary was built from.
    Version(VersionArgs),
}

fn run(cli: Cli) -> Result<(), CliError> {
    let home = || resolve_home(cli.home.as_deref());
    match &cli.command {
        Command::Init(args) => cli::init::run(&home()?, args),
        Command::Start => cli::start::run(home()?),
        Command::Testnet(args) => cli::testnet::run(args),
        Command::ShowNodeId => cli::show::run_node_id(&home()?),
        Command::ShowValidator => cli::show::run_validator(&home()?),
        Command::UnsafeResetAll => cli::reset::run(&home()?),
        Command::Wal(command) => cli::wal::run(&home()?, *command),
        Command::Tx(command) => Ok(cli::tx::run(command)?),
        Command::Relay(command) => Ok(cli::relay::run(command)?),
        Command::Light(args) => Ok(cli::light::run(args)?),
        Command::Load(args) => cli::load::run(args),
        Command::Version(args) => version::run(args).map_err(|source| CliError::Io {
            action: "cannot write",
            path: PathBuf::from("<stdout>"),
            source,
        }),
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("basalt: {error}");
            ExitCode::FAILURE
        }
    }
}
