//! `basalt tx validator`: the validator authority sets one validator's power (0 removes it) with a
//! validator-update transaction (kind `2`, docs/TRANSACTIONS.md). The change takes effect two heights
//! after the block that commits it.

use std::path::PathBuf;
use std::time::Duration;

use basalt_consensus::types::{tx_hash, ChainId, PrivateKey, PublicKey};
use basalt_consensus::VotingPower;
use basalt_state::app::validators::gas;
use basalt_state::app::validators::tx::{SignedValidatorTx, ValidatorTxBody, MAX_GAS_LIMIT};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use super::build::{load_signing_key, BuiltTx};
use super::client::RpcClient;
use super::{chain_and_nonce, parse_timeout, report, OutputFormat, TxError};

/// Arguments of `basalt tx validator`.
#[derive(Debug, Clone, clap::Args)]
pub struct ValidatorArgs {
    /// The validator authority's key: a priv_validator_key.json, an accounts.json entry, or a whole
    /// accounts.json.
    #[arg(long)]
    pub key_file: PathBuf,
    /// With an accounts.json array, which entry signs (0-based).
    #[arg(long, default_value_t = 0)]
    pub key_index: usize,
    /// The validator's consensus key: base64 or 64 hex characters, or `basalt show-validator`'s JSON.
    #[arg(long)]
    pub pubkey: String,
    /// Its new voting power (0 removes it).
    #[arg(long)]
    pub power: VotingPower,
    /// Fee paid to the block's proposer.
    #[arg(long, default_value_t = 0)]
    pub fee: u128,
    /// Signer's nonce (default: the committed account nonce, queried from the node).
    #[arg(long)]
    pub nonce: Option<u64>,
    /// Chain id (default: the node's, from `status`).
    #[arg(long)]
    pub chain_id: Option<String>,
    /// RPC address of the node.
    #[arg(long, default_value = "http://127.0.0.1:26657")]
    pub node: String,
    /// Timeout of each RPC request.
    #[arg(long, default_value = "10s", value_parser = parse_timeout)]
    pub timeout: Duration,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

fn bad(argument: &'static str, reason: impl Into<String>) -> TxError {
    TxError::BadArgument {
        argument,
        reason: reason.into(),
    }
}

/// A consensus key as an operator has it: base64 (CometBFT's `pub_key.value`), 64 hex characters, or
/// the whole `{"type": "tendermint/PubKeyEd25519", "value": …}` object `basalt show-validator` prints.
pub fn parse_pubkey(text: &str) -> Result<PublicKey, TxError> {
    let text = text.trim();
    let value = if text.starts_with('{') {
        let json: serde_json::Value =
            serde_json::from_str(text).map_err(|e| bad("--pubkey", e.to_string()))?;
        json.get("value")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| bad("--pubkey", "a JSON key needs a string \"value\""))?
            .to_owned()
    } else {
        text.to_owned()
    };
    let bytes = if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(&value).map_err(|e| bad("--pubkey", e.to_string()))?
    } else {
        BASE64
            .decode(&value)
            .map_err(|e| bad("--pubkey", format!("neither hex nor base64: {e}")))?
    };
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| bad("--pubkey", "an ed25519 key is 32 bytes"))?;
    PublicKey::from_bytes(&bytes).map_err(|e| bad("--pubkey", e.to_string()))
}

/// Signs the change and encodes it; the bytes are decoded again exactly as the node will.
pub fn build_validator_tx(
    key: &PrivateKey,
    chain_id: ChainId,
    validator: PublicKey,
    power: VotingPower,
    fee: u128,
    nonce: u64,
) -> Result<BuiltTx, TxError> {
    let gas_limit = gas(1);
    if gas_limit > MAX_GAS_LIMIT {
        return Err(bad("--gas-limit", format!("at most {MAX_GAS_LIMIT}")));
    }
    let bytes = ValidatorTxBody {
        chain_id,
        from: key.public_key(),
        nonce,
        fee,
        gas_limit,
        changes: vec![(validator, power)],
    }
    .sign(key)
    .to_bytes();
    let invalid = |reason: String| TxError::Invalid { reason };
    SignedValidatorTx::decode(&bytes)
        .map_err(|e| invalid(e.to_string()))?
        .verify()
        .map_err(|e| invalid(e.to_string()))?;
    let hash = tx_hash(&bytes);
    Ok(BuiltTx { bytes, hash })
}

/// `tx validator`: build, submit with `broadcast_tx_sync`, report.
pub async fn validator_command(args: &ValidatorArgs) -> Result<(), TxError> {
    let key = load_signing_key(&args.key_file, args.key_index)?;
    let validator = parse_pubkey(&args.pubkey)?;
    let client = RpcClient::new(&args.node, args.timeout)?;
    let (chain_id, nonce) = chain_and_nonce(
        &client,
        args.chain_id.as_deref(),
        args.nonce,
        &key.public_key().address(),
    )
    .await?;
    let built = build_validator_tx(&key, chain_id, validator, args.power, args.fee, nonce)?;
    let result = client.broadcast_tx_sync(&built.bytes).await?;
    report(args.output, result)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    #[test]
    fn a_key_is_read_in_every_form_an_operator_has_it() {
        let key = PrivateKey::from_seed(&[2; 32]).public_key();
        let b64 = BASE64.encode(key.to_bytes());
        let json = format!(r#"{{"type":"tendermint/PubKeyEd25519","value":"{b64}"}}"#);
        for text in [b64.clone(), hex::encode(key.to_bytes()), json] {
            assert_eq!(parse_pubkey(&text).unwrap(), key, "{text}");
        }
        for text in ["", "abcd", "{}", "{\"value\": 5}", &"0".repeat(64)] {
            assert!(parse_pubkey(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn the_built_transaction_is_what_the_node_decodes() {
        let key = PrivateKey::from_seed(&[1; 32]);
        let validator = PrivateKey::from_seed(&[2; 32]).public_key();
        let chain = ChainId::new("basalt-1").unwrap();
        let built = build_validator_tx(&key, chain.clone(), validator, 10, 10, 0).unwrap();
        let decoded = SignedValidatorTx::decode(&built.bytes).unwrap();
        assert_eq!(decoded.body().changes, vec![(validator, 10)]);
        assert_eq!(decoded.body().chain_id, chain);
        assert_eq!(decoded.body().gas_limit, gas(1));
    }
}
