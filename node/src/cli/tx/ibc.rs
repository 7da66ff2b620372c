//! `basalt tx ibc-transfer`: sign an ICS-20 `MsgTransfer` in an IBC transaction (kind `1`) and submit it.
//! The sender is the key's account (the node refuses any other); the packet times out at a height of the
//! destination chain and/or a number of seconds from now, as the operator chooses.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use basalt_consensus::types::{tx_hash, ChainId, PrivateKey};
use basalt_ibc::transfer::{MAX_MEMO_BYTES, MAX_RECEIVER_BYTES, NATIVE_DENOM};
use basalt_ibc::tx::{IbcAction, IbcMessage, IbcTxBody, SignedIbcTx, MAX_GAS_LIMIT};
use ibc_app_transfer::types::msgs::transfer::MsgTransfer;
use ibc_app_transfer::types::packet::PacketData;
use ibc_app_transfer::types::{Memo, PrefixedCoin};
use ibc_core::channel::types::timeout::{TimeoutHeight, TimeoutTimestamp};
use ibc_core::client::types::Height as IbcHeight;
use ibc_core::host::types::identifiers::{ChannelId, PortId};
use ibc_core::primitives::{Signer, Timestamp, ToProto};

use super::build::{load_signing_key, BuiltTx};
use super::client::RpcClient;
use super::{chain_and_nonce, parse_timeout, report, OutputFormat, TxError};

/// Default gas limit of an IBC transfer (one `MsgTransfer` needs well under it).
pub const DEFAULT_IBC_GAS: u64 = 200_000;

/// Arguments of `basalt tx ibc-transfer`.
#[derive(Debug, Clone, clap::Args)]
pub struct IbcTransferArgs {
    /// Sender's key: a priv_validator_key.json, an accounts.json entry, or a whole accounts.json.
    #[arg(long)]
    pub key_file: PathBuf,
    /// With an accounts.json array, which entry signs (0-based).
    #[arg(long, default_value_t = 0)]
    pub key_index: usize,
    /// The channel on this chain (e.g. channel-0).
    #[arg(long)]
    pub channel: String,
    /// The port on this chain.
    #[arg(long, default_value = "transfer")]
    pub port: String,
    /// The receiver's address on the destination chain (as that chain spells it).
    #[arg(long)]
    pub receiver: String,
    /// Amount to send (at least 1).
    #[arg(long)]
    pub amount: u128,
    /// Denomination: `basalt` (this chain's token) or a voucher's trace (`transfer/channel-0/basalt`).
    #[arg(long, default_value = NATIVE_DENOM)]
    pub denom: String,
    /// Memo carried in the packet.
    #[arg(long, default_value = "")]
    pub memo: String,
    /// Times out at this height of the destination chain (its revision height; 0: no height timeout).
    #[arg(long, default_value_t = 0)]
    pub timeout_height: u64,
    /// The destination's revision number for --timeout-height (0 for a chain id without `-<n>`).
    #[arg(long, default_value_t = 0)]
    pub timeout_revision: u64,
    /// Times out this many seconds from now by the destination's clock (0: no time timeout).
    #[arg(long, default_value_t = 600)]
    pub timeout_seconds: u64,
    /// Fee paid to the block's proposer (paid even if the transfer fails).
    #[arg(long, default_value_t = 0)]
    pub fee: u128,
    /// Gas limit.
    #[arg(long, default_value_t = DEFAULT_IBC_GAS)]
    pub gas_limit: u64,
    /// Sender's nonce (default: the committed account nonce, queried from the node).
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

/// An ICS-20 transfer's fields besides the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IbcTransferParams {
    /// This chain.
    pub chain_id: ChainId,
    /// Source port and channel.
    pub port: String,
    /// Source channel.
    pub channel: String,
    /// Receiver on the destination.
    pub receiver: String,
    /// Amount.
    pub amount: u128,
    /// Denomination.
    pub denom: String,
    /// Memo.
    pub memo: String,
    /// Destination height timeout (`None`: none).
    pub timeout_height: Option<(u64, u64)>,
    /// Timeout as ns since the Unix epoch (`None`: none).
    pub timeout_ns: Option<u64>,
    /// Fee.
    pub fee: u128,
    /// Gas limit.
    pub gas_limit: u64,
    /// Nonce.
    pub nonce: u64,
}

fn bad(argument: &'static str, reason: impl Into<String>) -> TxError {
    TxError::BadArgument {
        argument,
        reason: reason.into(),
    }
}

/// Signs the transfer and encodes it; the bytes are decoded again exactly as the node will (so a
/// transaction the node would refuse as malformed is never returned).
pub fn build_ibc_transfer(key: &PrivateKey, p: &IbcTransferParams) -> Result<BuiltTx, TxError> {
    if p.amount == 0 {
        return Err(bad("--amount", "must be at least 1"));
    }
    if p.receiver.is_empty() || p.receiver.len() > MAX_RECEIVER_BYTES {
        return Err(bad(
            "--receiver",
            format!("1 to {MAX_RECEIVER_BYTES} bytes"),
        ));
    }
    if p.memo.len() > MAX_MEMO_BYTES {
        return Err(bad("--memo", format!("at most {MAX_MEMO_BYTES} bytes")));
    }
    if p.gas_limit > MAX_GAS_LIMIT {
        return Err(bad("--gas-limit", format!("at most {MAX_GAS_LIMIT}")));
    }
    let timeout_height = match p.timeout_height {
        None => TimeoutHeight::Never,
        Some((revision, height)) => TimeoutHeight::At(
            IbcHeight::new(revision, height).map_err(|e| bad("--timeout-height", e.to_string()))?,
        ),
    };
    let timeout_timestamp = match p.timeout_ns {
        None => TimeoutTimestamp::Never,
        Some(ns) => TimeoutTimestamp::At(Timestamp::from_nanoseconds(ns)),
    };
    if timeout_height == TimeoutHeight::Never && timeout_timestamp == TimeoutTimestamp::Never {
        return Err(bad(
            "--timeout-height/--timeout-seconds",
            "a packet needs a timeout (height, seconds or both)",
        ));
    }
    let msg = MsgTransfer {
        port_id_on_a: p
            .port
            .parse::<PortId>()
            .map_err(|e| bad("--port", e.to_string()))?,
        chan_id_on_a: p
            .channel
            .parse::<ChannelId>()
            .map_err(|e| bad("--channel", e.to_string()))?,
        packet_data: PacketData {
            token: PrefixedCoin {
                denom: p.denom.parse().map_err(
                    |e: ibc_core::host::types::error::DecodingError| bad("--denom", e.to_string()),
                )?,
                amount: p.amount.to_string().parse().map_err(
                    |e: ibc_core::host::types::error::DecodingError| bad("--amount", e.to_string()),
                )?,
            },
            sender: Signer::from(key.public_key().address().to_hex_upper()),
            receiver: Signer::from(p.receiver.clone()),
            memo: Memo::from(p.memo.as_str()),
        },
        timeout_height_on_b: timeout_height,
        timeout_timestamp_on_b: timeout_timestamp,
    };
    let body = IbcTxBody {
        chain_id: p.chain_id.clone(),
        from: key.public_key(),
        nonce: p.nonce,
        fee: p.fee,
        gas_limit: p.gas_limit,
        messages: vec![IbcMessage::from(msg.to_any())],
    };
    let bytes = body.sign(key).to_bytes();
    let invalid = |reason: String| TxError::Invalid { reason };
    let decoded = SignedIbcTx::decode(&bytes).map_err(|e| invalid(e.to_string()))?;
    match decoded
        .actions()
        .map_err(|e| invalid(e.to_string()))?
        .as_slice()
    {
        [IbcAction::Transfer(_)] => {}
        _ => {
            return Err(invalid(
                "the message is not read back as a transfer".to_owned(),
            ))
        }
    }
    decoded.verify().map_err(|e| invalid(e.to_string()))?;
    let hash = tx_hash(&bytes);
    Ok(BuiltTx { bytes, hash })
}

/// `tx ibc-transfer`: build, submit with `broadcast_tx_sync`, report.
pub async fn ibc_transfer_command(args: &IbcTransferArgs) -> Result<(), TxError> {
    let key = load_signing_key(&args.key_file, args.key_index)?;
    let client = RpcClient::new(&args.node, args.timeout)?;
    let (chain_id, nonce) = chain_and_nonce(
        &client,
        args.chain_id.as_deref(),
        args.nonce,
        &key.public_key().address(),
    )
    .await?;
    let timeout_ns = if args.timeout_seconds == 0 {
        None
    } else {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|e| bad("--timeout-seconds", e.to_string()))?;
        let at = now.saturating_add(Duration::from_secs(args.timeout_seconds));
        Some(u64::try_from(at.as_nanos()).unwrap_or(u64::MAX))
    };
    let built = build_ibc_transfer(
        &key,
        &IbcTransferParams {
            chain_id,
            port: args.port.clone(),
            channel: args.channel.clone(),
            receiver: args.receiver.clone(),
            amount: args.amount,
            denom: args.denom.clone(),
            memo: args.memo.clone(),
            timeout_height: (args.timeout_height > 0)
                .then_some((args.timeout_revision, args.timeout_height)),
            timeout_ns,
            fee: args.fee,
            gas_limit: args.gas_limit,
            nonce,
        },
    )?;
    let result = client.broadcast_tx_sync(&built.bytes).await?;
    report(args.output, result)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    fn params() -> IbcTransferParams {
        IbcTransferParams {
            chain_id: ChainId::new("basalt-a").unwrap(),
            port: "transfer".to_owned(),
            channel: "channel-3".to_owned(),
            receiver: "AB".repeat(20),
            amount: 42,
            denom: "transfer/channel-0/basalt".to_owned(),
            memo: "hi".to_owned(),
            timeout_height: Some((0, 900)),
            timeout_ns: None,
            fee: 7,
            gas_limit: DEFAULT_IBC_GAS,
            nonce: 5,
        }
    }

    #[test]
    fn an_ibc_transfer_is_built_as_the_node_reads_it() {
        let key = PrivateKey::from_seed(&[4; 32]);
        let built = build_ibc_transfer(&key, &params()).unwrap();
        let tx = SignedIbcTx::decode(&built.bytes).unwrap();
        assert_eq!((tx.body().nonce, tx.body().fee), (5, 7));
        let actions = tx.actions().unwrap();
        let [IbcAction::Transfer(msg)] = actions.as_slice() else {
            panic!("not a transfer");
        };
        assert_eq!(msg.chan_id_on_a.as_str(), "channel-3");
        assert_eq!(
            msg.packet_data.token.denom.to_string(),
            "transfer/channel-0/basalt"
        );
        assert_eq!(msg.packet_data.token.amount.to_string(), "42");
        let sender: &str = msg.packet_data.sender.as_ref();
        assert_eq!(sender, key.public_key().address().to_hex_upper());
        assert_eq!(
            msg.timeout_height_on_b,
            TimeoutHeight::At(IbcHeight::new(0, 900).unwrap())
        );
    }

    #[test]
    fn bad_ibc_transfer_arguments_are_named() {
        let key = PrivateKey::from_seed(&[4; 32]);
        type Change = fn(&mut IbcTransferParams);
        let cases: [(Change, &str); 4] = [
            (|p| p.amount = 0, "--amount"),
            (|p| p.channel = "chan 0".to_owned(), "--channel"),
            (
                |p| p.timeout_height = None,
                "--timeout-height/--timeout-seconds",
            ),
            (|p| p.memo = "m".repeat(MAX_MEMO_BYTES + 1), "--memo"),
        ];
        for (change, argument) in cases {
            let mut p = params();
            change(&mut p);
            match build_ibc_transfer(&key, &p) {
                Err(TxError::BadArgument { argument: got, .. }) => assert_eq!(got, argument),
                other => panic!("{argument}: {other:?}"),
            }
        }
    }
}
