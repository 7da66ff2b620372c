//! The `basalt` binary.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use basalt_node::cli::version::{self, VersionArgs};
use clap::{Parser, Subcommand};

/// Basalt: a Tendermint-style BFT blockchain node.
#[derive(Debug, Parser)]
#[command(name = "basalt", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands; each one's arguments and code live in `basalt_node::cli::<name>`.
#[derive(Debug, Subcommand)]
enum Command {
    /// Print the version; with --long or --json, also what the binary was built from.
    Version(VersionArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Version(args) => version::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("basalt: {error}");
            ExitCode::FAILURE
        }
    }
}
