//! `basalt tx transfer` (sign and submit a bank transfer), `basalt tx build` (sign and print it) and
//! `basalt tx ibc-transfer` (sign and submit an ICS-20 transfer).

pub mod build;
pub mod client;
pub mod ibc;
pub mod validator;

use std::path::PathBuf;
use std::time::Duration;

use basalt_consensus::types::{Address, ChainId};
use basalt_state::bank::{MAX_GAS_LIMIT, TRANSFER_GAS};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use build::{build_transfer, load_signing_key, TransferParams};
use client::RpcClient;

/// Why a `tx` command failed.
#[derive(Debug, thiserror::Error)]
pub enum TxError {
    /// The key file cannot be used.
    #[error("key file {}: {reason}", path.display())]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The transaction would be invalid.
    #[error("invalid transaction: {reason}")]
    Invalid {
        /// Why.
        reason: String,
    },
    /// A JSON-RPC call failed.
    #[error("rpc {method}: {reason}")]
    Rpc {
        /// The method.
        method: &'static str,
        /// Why.
        reason: String,
    },
    /// The node refused the transaction.
    #[error("transaction {hash} rejected with code {code}: {log}")]
    Rejected {
        /// Transaction hash.
        hash: String,
        /// Non-zero code.
        code: u32,
        /// The node's log.
        log: String,
    },
    /// An argument is invalid.
    #[error("{argument}: {reason}")]
    BadArgument {
        /// The flag.
        argument: &'static str,
        /// Why.
        reason: String,
    },
}

/// Output format of the `tx` commands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// The hash (or transaction) alone on a line.
    #[default]
    Text,
    /// One JSON object.
    Json,
}

/// `basalt tx <command>`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum TxCommand {
    /// Sign a transfer and submit it with broadcast_tx_sync; prints the transaction hash.
    Transfer(TransferArgs),
    /// Sign a transfer and print it as base64 without submitting it (needs --chain-id and --nonce).
    Build(BuildArgs),
    /// Sign an ICS-20 token transfer to another chain over an IBC channel and submit it; prints the
    /// transaction hash.
    IbcTransfer(ibc::IbcTransferArgs),
    /// As the chain's validator authority, set a validator's voting power (0 removes it); the change
    /// takes effect two heights after its block. Prints the transaction hash.
    Validator(validator::ValidatorArgs),
}

/// The transfer's fields, shared by `transfer` and `build`.
#[derive(Debug, Clone, clap::Args)]
pub struct TransferFields {
    /// Sender's key: a priv_validator_key.json, an accounts.json entry, or a whole accounts.json.
    #[arg(long)]
    pub key_file: PathBuf,
    /// With an accounts.json array, which entry signs (0-based).
    #[arg(long, default_value_t = 0)]
    pub key_index: usize,
    /// Recipient address (40 hex characters).
    #[arg(long)]
    pub to: String,
    /// Amount to send (at least 1).
    #[arg(long)]
    pub amount: u128,
    /// Fee paid to the block's proposer.
    #[arg(long, default_value_t = 0)]
    pub fee: u128,
    /// Gas limit (a transfer costs 1000).
    #[arg(long, default_value_t = TRANSFER_GAS)]
    pub gas_limit: u64,
    /// Sender's nonce (default for `transfer`: the committed account nonce, queried from the node).
    #[arg(long)]
    pub nonce: Option<u64>,
    /// Chain id (default for `transfer`: the node's, from `status`).
    #[arg(long)]
    pub chain_id: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// Arguments of `basalt tx transfer`.
#[derive(Debug, Clone, clap::Args)]
pub struct TransferArgs {
    /// The transfer.
    #[command(flatten)]
    pub fields: TransferFields,
    /// RPC address of the node.
    #[arg(long, default_value = "http://127.0.0.1:26657")]
    pub node: String,
    /// Timeout of each RPC request.
    #[arg(long, default_value = "10s", value_parser = parse_timeout)]
    pub timeout: Duration,
}

/// Arguments of `basalt tx build`.
#[derive(Debug, Clone, clap::Args)]
pub struct BuildArgs {
    /// The transfer.
    #[command(flatten)]
    pub fields: TransferFields,
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    crate::config::parse_duration(text)
}

/// Runs a `tx` command.
pub fn run(command: &TxCommand) -> Result<(), TxError> {
    match command {
        TxCommand::Build(args) => {
            let line = build_command(&args.fields)?;
            println!("{line}");
            Ok(())
        }
        TxCommand::Transfer(args) => runtime()?.block_on(transfer_command(args)),
        TxCommand::IbcTransfer(args) => runtime()?.block_on(ibc::ibc_transfer_command(args)),
        TxCommand::Validator(args) => runtime()?.block_on(validator::validator_command(args)),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, TxError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| TxError::Rpc {
            method: "connect",
            reason: format!("cannot start a tokio runtime: {e}"),
        })
}

fn check_fields(fields: &TransferFields) -> Result<Address, TxError> {
    if fields.gas_limit < TRANSFER_GAS || fields.gas_limit > MAX_GAS_LIMIT {
        return Err(TxError::BadArgument {
            argument: "--gas-limit",
            reason: format!("must be {TRANSFER_GAS}..={MAX_GAS_LIMIT}"),
        });
    }
    if fields.amount == 0 {
        return Err(TxError::BadArgument {
            argument: "--amount",
            reason: "must be at least 1".to_owned(),
        });
    }
    Address::from_hex(&fields.to).map_err(|_| TxError::BadArgument {
        argument: "--to",
        reason: format!("{:?} is not 40 hex characters", fields.to),
    })
}

/// The chain id and nonce of a transaction `signer` signs: the ones given on the command line, else
/// the node's chain id (`status`) and `signer`'s committed account nonce.
async fn chain_and_nonce(
    client: &RpcClient,
    chain_id: Option<&str>,
    nonce: Option<u64>,
    signer: &Address,
) -> Result<(ChainId, u64), TxError> {
    let chain_id = match chain_id {
        Some(text) => parse_chain_id(text)?,
        None => client.chain_id().await?,
    };
    let nonce = match nonce {
        Some(nonce) => nonce,
        None => client.account(signer).await?.nonce,
    };
    Ok((chain_id, nonce))
}

fn parse_chain_id(text: &str) -> Result<ChainId, TxError> {
    ChainId::new(text).map_err(|e| TxError::BadArgument {
        argument: "--chain-id",
        reason: e.to_string(),
    })
}

/// `tx build`: the line to print (base64 tx, or JSON with tx and hash).
pub fn build_command(fields: &TransferFields) -> Result<String, TxError> {
    let to = check_fields(fields)?;
    let chain_id = fields
        .chain_id
        .as_deref()
        .ok_or(TxError::BadArgument {
            argument: "--chain-id",
            reason: "required by `tx build` (it does not contact a node)".to_owned(),
        })
        .and_then(parse_chain_id)?;
    let nonce = fields.nonce.ok_or(TxError::BadArgument {
        argument: "--nonce",
        reason: "required by `tx build` (it does not contact a node)".to_owned(),
    })?;
    let key = load_signing_key(&fields.key_file, fields.key_index)?;
    let built = build_transfer(
        &key,
        &TransferParams {
            chain_id,
            to,
            amount: fields.amount,
            fee: fields.fee,
            nonce,
            gas_limit: fields.gas_limit,
        },
    )?;
    let tx = BASE64.encode(&built.bytes);
    Ok(match fields.output {
        OutputFormat::Text => tx,
        OutputFormat::Json => {
            serde_json::json!({"tx": tx, "hash": built.hash.to_hex_upper()}).to_string()
        }
    })
}

async fn transfer_command(args: &TransferArgs) -> Result<(), TxError> {
    let fields = &args.fields;
    let to = check_fields(fields)?;
    let key = load_signing_key(&fields.key_file, fields.key_index)?;
    let client = RpcClient::new(&args.node, args.timeout)?;
    let (chain_id, nonce) = chain_and_nonce(
        &client,
        fields.chain_id.as_deref(),
        fields.nonce,
        &key.public_key().address(),
    )
    .await?;
    let built = build_transfer(
        &key,
        &TransferParams {
            chain_id,
            to,
            amount: fields.amount,
            fee: fields.fee,
            nonce,
            gas_limit: fields.gas_limit,
        },
    )?;
    let result = client.broadcast_tx_sync(&built.bytes).await?;
    report(fields.output, result)
}

/// Prints a broadcast's outcome; a refusal is an error.
fn report(output: OutputFormat, result: client::BroadcastResult) -> Result<(), TxError> {
    match output {
        OutputFormat::Text => println!("{}", result.hash),
        OutputFormat::Json => println!(
            "{}",
            serde_json::json!({"hash": result.hash, "code": result.code, "log": result.log})
        ),
    }
    if result.code != 0 {
        return Err(TxError::Rejected {
            hash: result.hash,
            code: result.code,
            log: result.log,
        });
    }
    Ok(())
}
