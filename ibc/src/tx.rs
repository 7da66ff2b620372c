//! The IBC transaction (kind byte `1`): IBC messages (`google.protobuf.Any`, as ibc-go's and ibc-rs's
//! relayers build them) signed by one account, which pays the fee and is the only signer the messages
//! may name. Byte layout in docs/TRANSACTIONS.md.
//!
//! Bytes become a [`SignedIbcTx`] only through [`SignedIbcTx::decode`]: size bound first, then strict
//! Borsh (no trailing bytes, canonical key and signature), then the body's rules (message count, type
//! URL lengths, gas). Whether the signature verifies is a separate step ([`SignedIbcTx::verify`]), and so
//! is turning the messages into ibc-rs's types ([`SignedIbcTx::actions`]).

use std::io;

use basalt_consensus::types::crypto::{CryptoError, SIGNATURE_LEN};
use basalt_consensus::types::encoding::MAX_TX_BYTES;
use basalt_consensus::types::{encode, Address, ChainId, PrivateKey, PublicKey, Signature};
use borsh::{BorshDeserialize, BorshSerialize};
use ibc_app_transfer::types::msgs::transfer::MsgTransfer;
use ibc_core::client::types::msgs::ClientMsg;
use ibc_core::handler::types::msgs::MsgEnvelope;
use ibc_core::primitives::proto::{Any, Protobuf};

use crate::transfer::{MAX_DENOM_BYTES, MAX_MEMO_BYTES, MAX_RECEIVER_BYTES};

/// The transaction kind byte of an IBC transaction (a bank transfer's is `0`).
pub const IBC_TX_KIND: u8 = 1;
/// Domain tag prefixed to the body in the sign bytes: an IBC transaction's signature can never be taken
/// for a transfer's, a vote's or a proposal's made with the same key.
pub const IBC_TX_SIGN_DOMAIN: &[u8] = b"basalt/ibc/tx/v1\0";
/// Largest IBC transaction (a light client header with a large validator set and its commit fits).
pub const MAX_IBC_TX_BYTES: usize = MAX_TX_BYTES;
/// Most messages in one transaction (a relayer batches an update with the packets it proves).
pub const MAX_IBC_MESSAGES: usize = 32;
/// Longest message type URL (ibc-go's longest is under 64 bytes).
pub const MAX_TYPE_URL_BYTES: usize = 128;
/// Largest gas limit a transaction may ask for (the bank's limit).
pub const MAX_GAS_LIMIT: u64 = 10_000_000;

/// Why bytes are not an IBC transaction, or its messages not IBC messages.
#[derive(Debug, thiserror::Error)]
pub enum IbcTxError {
    /// Larger than [`MAX_IBC_TX_BYTES`].
    #[error("transaction of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Input length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The first byte is not [`IBC_TX_KIND`].
    #[error("transaction kind {0} is not an IBC transaction")]
    WrongKind(u8),
    /// Not canonical Borsh, or an invalid chain id, key or signature.
    #[error("malformed IBC transaction: {source}")]
    Malformed {
        /// The decoder's reason.
        #[source]
        source: io::Error,
    },
    /// The body breaks one of its rules.
    #[error("invalid IBC transaction: {0}")]
    Invalid(&'static str),
    /// A message is not one ibc-rs handles (unknown type URL, or bytes that do not decode).
    #[error("message {index}: {reason}")]
    Message {
        /// Its position in the transaction.
        index: usize,
        /// ibc-rs's reason.
        reason: String,
    },
}

/// The type URL of ICS-20's `MsgTransfer`.
pub const MSG_TRANSFER_TYPE_URL: &str = "/ibc.applications.transfer.v1.MsgTransfer";

/// A decoded IBC message: one ibc-rs core handles (`dispatch`), or an ICS-20 transfer (`send_transfer`).
#[derive(Debug)]
pub enum IbcAction {
    /// Clients, connections, channels, packets.
    Core(MsgEnvelope),
    /// An ICS-20 transfer whose sender is the transaction's signer and whose fields are within bounds.
    Transfer(MsgTransfer),
}

/// One IBC message: a protobuf `Any`.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct IbcMessage {
    /// The message's type URL, e.g. `/ibc.core.client.v1.MsgUpdateClient`.
    pub type_url: String,
    /// Its protobuf encoding.
    pub value: Vec<u8>,
}

impl From<Any> for IbcMessage {
    fn from(any: Any) -> IbcMessage {
        IbcMessage {
            type_url: any.type_url,
            value: any.value,
        }
    }
}

/// The signed part of an IBC transaction.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct IbcTxBody {
    /// Chain the transaction is valid on.
    pub chain_id: ChainId,
    /// The signer's public key: its account pays the fee, and messages may name only its address.
    pub from: PublicKey,
    /// Must equal the signer's account nonce when executed (replay protection).
    pub nonce: u64,
    /// Fee paid to the block's proposer.
    pub fee: u128,
    /// Most gas the signer pays for, at most [`MAX_GAS_LIMIT`].
    pub gas_limit: u64,
    /// One to [`MAX_IBC_MESSAGES`] messages, executed in order, all or none.
    pub messages: Vec<IbcMessage>,
}

impl IbcTxBody {
    /// The body's rules (checked on every decode).
    pub fn check(&self) -> Result<(), IbcTxError> {
        if self.messages.is_empty() {
            return Err(IbcTxError::Invalid("no messages"));
        }
        if self.messages.len() > MAX_IBC_MESSAGES {
            return Err(IbcTxError::Invalid("more messages than allowed"));
        }
        if self
            .messages
            .iter()
            .any(|m| m.type_url.is_empty() || m.type_url.len() > MAX_TYPE_URL_BYTES)
        {
            return Err(IbcTxError::Invalid("a type URL is empty or too long"));
        }
        if self.gas_limit > MAX_GAS_LIMIT {
            return Err(IbcTxError::Invalid("gas limit above the maximum"));
        }
        Ok(())
    }

    /// The bytes signed: [`IBC_TX_SIGN_DOMAIN`] followed by the body's Borsh encoding.
    pub fn sign_bytes(&self) -> Vec<u8> {
        let body = encode(self);
        let mut out = Vec::with_capacity(IBC_TX_SIGN_DOMAIN.len() + body.len());
        out.extend_from_slice(IBC_TX_SIGN_DOMAIN);
        out.extend_from_slice(&body);
        out
    }

    /// The signer's account.
    pub fn signer(&self) -> Address {
        self.from.address()
    }

    /// Signs the body (for relayers and tests).
    pub fn sign(self, key: &PrivateKey) -> SignedIbcTx {
        let signature = key.sign(&self.sign_bytes());
        SignedIbcTx {
            body: self,
            signature,
        }
    }
}

/// An IBC transaction with its signature; structurally valid by construction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedIbcTx {
    body: IbcTxBody,
    signature: Signature,
}

impl SignedIbcTx {
    /// The only way bytes become an IBC transaction: size, kind, strict decoding, body rules.
    pub fn decode(bytes: &[u8]) -> Result<SignedIbcTx, IbcTxError> {
        if bytes.len() > MAX_IBC_TX_BYTES {
            return Err(IbcTxError::TooLarge {
                len: bytes.len(),
                max: MAX_IBC_TX_BYTES,
            });
        }
        let (&kind, rest) = bytes
            .split_first()
            .ok_or(IbcTxError::Invalid("empty transaction"))?;
        if kind != IBC_TX_KIND {
            return Err(IbcTxError::WrongKind(kind));
        }
        let (body, signature): (IbcTxBody, [u8; SIGNATURE_LEN]) =
            borsh::from_slice(rest).map_err(|source| IbcTxError::Malformed { source })?;
        let signature = Signature::from_bytes(&signature).map_err(|e| IbcTxError::Malformed {
            source: io::Error::new(io::ErrorKind::InvalidData, e),
        })?;
        body.check()?;
        Ok(SignedIbcTx { body, signature })
    }

    /// Its canonical bytes: the kind byte, the body, the signature.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![IBC_TX_KIND];
        out.extend_from_slice(&encode(&(&self.body, self.signature.to_bytes())));
        out
    }

    /// The signed body.
    pub fn body(&self) -> &IbcTxBody {
        &self.body
    }

    /// Checks the signature (strict ed25519).
    pub fn verify(&self) -> Result<(), CryptoError> {
        self.body
            .from
            .verify(&self.body.sign_bytes(), &self.signature)
    }

    /// The messages as ibc-rs's types, in order; the first that ibc-rs does not handle (or that breaks
    /// Basalt's rules) is the error.
    pub fn actions(&self) -> Result<Vec<IbcAction>, IbcTxError> {
        let signer = self.body.signer();
        self.body
            .messages
            .iter()
            .enumerate()
            .map(|(index, m)| {
                let fail = |reason: String| IbcTxError::Message { index, reason };
                if m.type_url == MSG_TRANSFER_TYPE_URL {
                    let msg = MsgTransfer::decode_vec(&m.value).map_err(|e| fail(e.to_string()))?;
                    check_transfer(&msg, &signer).map_err(|r| fail(r.to_owned()))?;
                    return Ok(IbcAction::Transfer(msg));
                }
                let any = Any {
                    type_url: m.type_url.clone(),
                    value: m.value.clone(),
                };
                let envelope = MsgEnvelope::try_from(any).map_err(|e| fail(e.to_string()))?;
                // Upgrades and recovery need governance Basalt chains do not have (and ibc-rs would run
                // a recovery without checking its signer): refused here, before any handler.
                match envelope {
                    MsgEnvelope::Client(
                        ClientMsg::UpgradeClient(_) | ClientMsg::RecoverClient(_),
                    ) => Err(fail(
                        "client upgrade and recovery are not supported".to_owned(),
                    )),
                    other => Ok(IbcAction::Core(other)),
                }
            })
            .collect()
    }
}

/// Basalt's rules for an ICS-20 transfer that ibc-rs does not check: the sender is the signer (ibc-rs
/// escrows from whoever `sender` names), and the denomination, memo and receiver are bounded.
fn check_transfer(msg: &MsgTransfer, signer: &Address) -> Result<(), &'static str> {
    let data = &msg.packet_data;
    let sender: &str = data.sender.as_ref();
    if Address::from_hex(sender).ok().as_ref() != Some(signer) {
        return Err("the transfer's sender is not the transaction's signer");
    }
    if data.token.denom.to_string().len() > MAX_DENOM_BYTES {
        return Err("denomination too long");
    }
    if data.memo.as_ref().len() > MAX_MEMO_BYTES {
        return Err("memo too long");
    }
    let receiver: &str = data.receiver.as_ref();
    if receiver.is_empty() || receiver.len() > MAX_RECEIVER_BYTES {
        return Err("receiver empty or too long");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
