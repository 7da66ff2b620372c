//! The `basalt` binary.
#![forbid(unsafe_code)]

use clap::Parser;

/// Basalt: a Tendermint-style BFT blockchain node.
#[derive(Debug, Parser)]
#[command(name = "basalt", version)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
