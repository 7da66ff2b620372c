//! `basalt testnet`: the homes of a local test network sharing one genesis.
//!
//! `DIR/node0 … node{N+M-1}` are complete homes (validators first, then full nodes). Node `i` uses p2p port
//! `P + 100·i`, RPC `P + 100·i + 1` and metrics `P + 100·i + 4`, so node0 has CometBFT's 26656/26657/26660.
//! Every node's `persistent_peers` lists every validator except itself. The genesis gives each validator
//! power 10 and funds `K` accounts whose keys are written, **in clear**, to `DIR/accounts.json` for load
//! tools: that file makes the funds spendable by anyone who reads it, so it is for test networks only.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use basalt_consensus::types::encoding::MAX_VALIDATORS;
use basalt_consensus::types::{ChainId, PrivateKey};
use basalt_state::bank::genesis::MAX_GENESIS_ACCOUNTS;
use serde::{Deserialize, Serialize};

use super::init::{create_dirs, write_initial_signer_state, DEFAULT_CHAIN_ID};
use super::CliError;
use crate::config::{Config, Profile};
use crate::genesis::{genesis_time_now, GenesisDoc, GenesisValidator, DEFAULT_VALIDATOR_POWER};
use crate::home::{write_file_durably, FileMode, Home};
use crate::keys::{NodeKey, PrivValidatorKey};

/// Port distance between consecutive nodes.
pub const PORT_STRIDE: u16 = 100;
/// Offset of the RPC port from the p2p port.
pub const RPC_PORT_OFFSET: u16 = 1;
/// Offset of the metrics port from the p2p port.
pub const METRICS_PORT_OFFSET: u16 = 4;
/// Most nodes (validators plus full nodes) in one generated testnet.
pub const MAX_TESTNET_NODES: usize = 200;
/// Balance of each funded account without `--balance`.
pub const DEFAULT_ACCOUNT_BALANCE: u128 = 1_000_000_000_000;
/// Name of the accounts file in the output directory.
pub const ACCOUNTS_FILE: &str = "accounts.json";

/// Arguments of `basalt testnet`.
#[derive(Debug, Clone, clap::Args)]
pub struct TestnetArgs {
    /// Number of validators.
    #[arg(long, default_value_t = 4)]
    pub validators: usize,
    /// Directory to create the node homes in (node0, node1, …).
    #[arg(long, short = 'o')]
    pub output: PathBuf,
    /// Number of full (non-validator) nodes.
    #[arg(long, default_value_t = 0)]
    pub full_nodes: usize,
    /// Chain id.
    #[arg(long, default_value = DEFAULT_CHAIN_ID)]
    pub chain_id: String,
    /// p2p port of node0; node i uses this + 100·i (RPC +1, metrics +4).
    #[arg(long, default_value_t = 26656)]
    pub starting_port: u16,
    /// Host the nodes reach each other at (an IP literal is also the p2p listen address).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Config profile of every node.
    #[arg(long, value_enum, default_value_t = Profile::Default)]
    pub profile: Profile,
    /// Number of funded accounts (keys written to DIR/accounts.json).
    #[arg(long, default_value_t = 1000)]
    pub accounts: usize,
    /// Balance of each funded account.
    #[arg(long, default_value_t = DEFAULT_ACCOUNT_BALANCE)]
    pub balance: u128,
    /// Write into a non-empty output directory (replacing the node homes and accounts file there).
    #[arg(long)]
    pub force: bool,
}

/// One funded test account as written to `accounts.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountEntry {
    /// Upper-case hex address.
    pub address: String,
    /// Hex of the 32-byte ed25519 seed.
    pub seed: String,
}

/// The ports of node `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodePorts {
    /// p2p.
    pub p2p: u16,
    /// RPC.
    pub rpc: u16,
    /// Prometheus metrics.
    pub metrics: u16,
}

/// Ports of node `index` from the starting port; `None` if they do not fit in 1..=65535.
pub fn node_ports(starting_port: u16, index: usize) -> Option<NodePorts> {
    let base = u32::from(starting_port) + u32::from(PORT_STRIDE) * u32::try_from(index).ok()?;
    let port = |offset: u16| u16::try_from(base + u32::from(offset)).ok();
    Some(NodePorts {
        p2p: port(0)?,
        rpc: port(RPC_PORT_OFFSET)?,
        metrics: port(METRICS_PORT_OFFSET)?,
    })
}

/// What was created.
#[derive(Debug, Clone)]
pub struct TestnetReport {
    /// The node homes, validators first.
    pub homes: Vec<Home>,
    /// The node ids (PeerIds), same order.
    pub node_ids: Vec<String>,
    /// Path of `accounts.json`.
    pub accounts_file: PathBuf,
}

/// Runs `basalt testnet`.
pub fn run(args: &TestnetArgs) -> Result<(), CliError> {
    let report = create_testnet(args, &mut rand_core::OsRng)?;
    for (i, (home, id)) in report.homes.iter().zip(&report.node_ids).enumerate() {
        let role = if i < args.validators {
            "validator"
        } else {
            "full node"
        };
        println!("{} {role} {id}", home.root().display());
    }
    println!(
        "{} funded accounts in {} (test keys: do not use on a real network)",
        args.accounts,
        report.accounts_file.display()
    );
    Ok(())
}

fn bad(argument: &'static str, reason: impl Into<String>) -> CliError {
    CliError::BadArgument {
        argument,
        reason: reason.into(),
    }
}

fn check_args(args: &TestnetArgs) -> Result<ChainId, CliError> {
    let chain_id =
        ChainId::new(args.chain_id.clone()).map_err(|e| bad("--chain-id", e.to_string()))?;
    if args.validators == 0 || args.validators > MAX_VALIDATORS {
        return Err(bad("--validators", format!("must be 1..={MAX_VALIDATORS}")));
    }
    let nodes = args.validators.saturating_add(args.full_nodes);
    if nodes > MAX_TESTNET_NODES {
        return Err(bad(
            "--full-nodes",
            format!("{nodes} nodes in total, more than {MAX_TESTNET_NODES}"),
        ));
    }
    if args.starting_port == 0 || node_ports(args.starting_port, nodes - 1).is_none() {
        return Err(bad(
            "--starting-port",
            format!(
                "{} + 100 × {} nodes does not fit in 1..=65535",
                args.starting_port, nodes
            ),
        ));
    }
    if args.accounts > MAX_GENESIS_ACCOUNTS {
        return Err(bad(
            "--accounts",
            format!("more than {MAX_GENESIS_ACCOUNTS}"),
        ));
    }
    let supply = (args.accounts as u128).checked_mul(args.balance);
    if supply.is_none() {
        return Err(bad("--balance", "accounts × balance overflows u128"));
    }
    if args.host.is_empty() || args.host.contains(['@', ',', ' ', '/']) {
        return Err(bad(
            "--host",
            format!("{:?} is not a host name or IP", args.host),
        ));
    }
    Ok(chain_id)
}

/// Refuses a non-empty directory unless `force`; with `force`, removes what this command will rewrite.
fn prepare_output(dir: &Path, nodes: usize, force: bool) -> Result<(), CliError> {
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).map_err(CliError::io("cannot list", dir))?;
        if entries.next().is_some() {
            if !force {
                return Err(bad(
                    "--output",
                    format!(
                        "{} exists and is not empty (pass --force to overwrite)",
                        dir.display()
                    ),
                ));
            }
            for i in 0..nodes {
                let home = dir.join(format!("node{i}"));
                if home.exists() {
                    std::fs::remove_dir_all(&home).map_err(CliError::io("cannot remove", &home))?;
                }
            }
        }
    }
    std::fs::create_dir_all(dir).map_err(CliError::io("cannot create", dir))
}

/// Creates the testnet described by `args` with keys from `rng`.
pub fn create_testnet<R: rand_core::CryptoRngCore + ?Sized>(
    args: &TestnetArgs,
    rng: &mut R,
) -> Result<TestnetReport, CliError> {
    let chain_id = check_args(args)?;
    let nodes = args.validators + args.full_nodes;
    prepare_output(&args.output, nodes, args.force)?;

    let homes: Vec<Home> = (0..nodes)
        .map(|i| Home::new(args.output.join(format!("node{i}"))))
        .collect();
    let node_keys: Vec<NodeKey> = (0..nodes).map(|_| NodeKey::generate(rng)).collect();
    let pv_keys: Vec<PrivValidatorKey> = (0..nodes)
        .map(|_| PrivValidatorKey::generate(rng))
        .collect();
    let ports: Vec<NodePorts> = (0..nodes)
        .map(|i| {
            node_ports(args.starting_port, i).ok_or_else(|| bad("--starting-port", "port overflow"))
        })
        .collect::<Result<_, _>>()?;

    // Accounts: keys, genesis allocations, and the clear-text file for load tools.
    let mut entries = Vec::with_capacity(args.accounts);
    let mut allocations = Vec::with_capacity(args.accounts);
    for _ in 0..args.accounts {
        let key = PrivateKey::generate(rng);
        let address = key.public_key().address().to_hex_upper();
        allocations
            .push(serde_json::json!({"address": address, "balance": args.balance.to_string()}));
        entries.push(AccountEntry {
            address,
            seed: hex::encode(key.seed()),
        });
    }
    let validators = (0..args.validators)
        .map(|i| {
            GenesisValidator::new(
                &pv_keys[i].public_key(),
                DEFAULT_VALIDATOR_POWER,
                format!("node{i}"),
            )
        })
        .collect();
    let genesis = GenesisDoc::new(
        &chain_id,
        genesis_time_now(),
        validators,
        serde_json::json!({ "accounts": allocations }),
    );
    genesis.validate()?;

    let listen_ip: IpAddr = args
        .host
        .parse()
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let node_ids: Vec<String> = node_keys.iter().map(|k| k.peer_id().to_base58()).collect();
    let peer = |i: usize| format!("{}@{}:{}", node_ids[i], args.host, ports[i].p2p);
    for (i, home) in homes.iter().enumerate() {
        create_dirs(home)?;
        let mut config: Config = args.profile.config();
        config.moniker = format!("node{i}");
        config.p2p.laddr = SocketAddr::new(listen_ip, ports[i].p2p);
        config.rpc.laddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), ports[i].rpc);
        config.instrumentation.prometheus_listen_addr =
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), ports[i].metrics);
        config.p2p.persistent_peers = (0..args.validators)
            .filter(|&v| v != i)
            .map(peer)
            .collect::<Vec<_>>()
            .join(",");
        // Every validator must be reachable as a persistent peer, beyond the default outbound limit.
        let needed = u32::try_from(args.validators).unwrap_or(u32::MAX);
        config.p2p.max_num_outbound_peers = config.p2p.max_num_outbound_peers.max(needed);
        config.p2p.max_num_inbound_peers = config
            .p2p
            .max_num_inbound_peers
            .max(u32::try_from(nodes).unwrap_or(u32::MAX));
        config.validate()?;
        config.save(&home.config_file())?;
        node_keys[i].save(&home.node_key_file())?;
        pv_keys[i].save(&home.priv_validator_key_file())?;
        write_initial_signer_state(&home.priv_validator_state_file())?;
        genesis.save(&home.genesis_file())?;
    }

    let accounts_file = args.output.join(ACCOUNTS_FILE);
    let mut text = serde_json::to_string_pretty(&entries).unwrap_or_default();
    text.push('\n');
    write_file_durably(&accounts_file, text.as_bytes(), FileMode::Private)
        .map_err(CliError::io("cannot write", &accounts_file))?;

    Ok(TestnetReport {
        homes,
        node_ids,
        accounts_file,
    })
}
