//! Subcommands of the `basalt` binary, one module each; `src/main.rs` wires them into clap.

pub mod version;
