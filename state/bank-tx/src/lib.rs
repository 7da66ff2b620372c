//! The bank's transaction: an ed25519-signed transfer (byte layout in `docs/TRANSACTIONS.md`).
//!
//! Bytes become a [`SignedTransfer`] only through [`SignedTransfer::decode`], which bounds the input,
//! decodes strict Borsh (no trailing bytes, canonical keys and signatures) and checks the body's
//! invariants. Whether the signature verifies is a separate, explicit step ([`SignedTransfer::verify`]),
//! so a block's signatures can be batch-verified.
//!
//! [`validator`] holds the validator-update transaction (kind `2`) the same way: its own crate-free
//! format, so the fuzzer reaches it without the state crate.

pub mod validator;

use std::io;

use basalt_consensus::types::crypto::{CryptoError, SIGNATURE_LEN};
use basalt_consensus::types::{encode, Address, ChainId, PrivateKey, PublicKey, Signature};
use borsh::{BorshDeserialize, BorshSerialize};

/// Domain tag prefixed to the body in the sign bytes, so a transfer signature can never be mistaken for
/// any other signature made with the same key (votes, proposals, future transaction kinds).
pub const TRANSFER_SIGN_DOMAIN: &[u8] = b"basalt/bank/transfer/v1\0";

/// Largest encoded transaction the bank accepts (the largest valid transfer is 219 bytes).
pub const MAX_BANK_TX_BYTES: usize = 256;

/// Largest gas limit a transaction may ask for.
pub const MAX_GAS_LIMIT: u64 = 10_000_000;

/// Gas charged for one transfer (fixed: a transfer always touches the same number of records).
pub const TRANSFER_GAS: u64 = 1_000;

/// Why bytes are not a bank transaction.
#[derive(Debug, thiserror::Error)]
pub enum TxDecodeError {
    /// The input is larger than [`MAX_BANK_TX_BYTES`].
    #[error("transaction of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Input length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not a canonical Borsh encoding of a [`BankTx`], or an invalid key, signature or chain id.
    #[error("malformed transaction: {source}")]
    Malformed {
        /// The decoder's reason.
        #[source]
        source: io::Error,
    },
    /// The body breaks an invariant of [`TransferBody::check`].
    #[error("invalid transfer: {reason}")]
    Invalid {
        /// Which rule.
        reason: &'static str,
    },
}

/// The signed part of a transfer.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct TransferBody {
    /// Chain the transfer is valid on (domain separation between chains).
    pub chain_id: ChainId,
    /// The sender's public key; the sender's account is its [`Address`].
    pub from: PublicKey,
    /// The recipient's account.
    pub to: Address,
    /// Amount moved from sender to recipient; at least 1.
    pub amount: u128,
    /// Fee paid by the sender to the block's proposer.
    pub fee: u128,
    /// Must equal the sender's account nonce when executed (replay protection).
    pub nonce: u64,
    /// Most gas the sender accepts to pay for; at least [`TRANSFER_GAS`], at most [`MAX_GAS_LIMIT`].
    pub gas_limit: u64,
}

impl TransferBody {
    /// The body's invariants (checked on every decode).
    pub fn check(&self) -> Result<(), TxDecodeError> {
        let invalid = |reason| Err(TxDecodeError::Invalid { reason });
        if self.amount == 0 {
            return invalid("amount must be at least 1");
        }
        if self.gas_limit > MAX_GAS_LIMIT {
            return invalid("gas limit above the maximum");
        }
        Ok(())
    }

    /// The bytes signed by the sender: [`TRANSFER_SIGN_DOMAIN`] followed by the body's Borsh encoding.
    pub fn sign_bytes(&self) -> Vec<u8> {
        let body = encode(self);
        let mut out = Vec::with_capacity(TRANSFER_SIGN_DOMAIN.len() + body.len());
        out.extend_from_slice(TRANSFER_SIGN_DOMAIN);
        out.extend_from_slice(&body);
        out
    }

    /// The sender's account address.
    pub fn sender(&self) -> Address {
        self.from.address()
    }

    /// Signs the body (for clients and tests).
    pub fn sign(self, key: &PrivateKey) -> SignedTransfer {
        let signature = key.sign(&self.sign_bytes());
        SignedTransfer {
            body: self,
            signature,
        }
    }
}

/// A transfer with its signature. Structurally valid by construction; see [`SignedTransfer::verify`].
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize)]
pub struct SignedTransfer {
    body: TransferBody,
    signature: Signature,
}

impl BorshDeserialize for SignedTransfer {
    fn deserialize_reader<R: io::Read>(reader: &mut R) -> io::Result<Self> {
        let body = TransferBody::deserialize_reader(reader)?;
        let bytes = <[u8; SIGNATURE_LEN]>::deserialize_reader(reader)?;
        let signature = Signature::from_bytes(&bytes)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        body.check()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        Ok(SignedTransfer { body, signature })
    }
}

impl SignedTransfer {
    /// Assembles a transfer from parts, checking the body (the signature is checked by
    /// [`SignedTransfer::verify`]).
    pub fn new(body: TransferBody, signature: Signature) -> Result<SignedTransfer, TxDecodeError> {
        body.check()?;
        Ok(SignedTransfer { body, signature })
    }

    /// The signed body.
    pub fn body(&self) -> &TransferBody {
        &self.body
    }

    /// The signature over [`TransferBody::sign_bytes`].
    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// Checks the signature (ZIP-215, as every Basalt signature; see `basalt_consensus::types::crypto`).
    pub fn verify(&self) -> Result<(), CryptoError> {
        self.body
            .from
            .verify(&self.body.sign_bytes(), &self.signature)
    }

    /// The transaction bytes: the Borsh encoding of [`BankTx::Transfer`].
    pub fn to_tx_bytes(&self) -> Vec<u8> {
        BankTx::Transfer(self.clone()).to_bytes()
    }
}

/// Every transaction the bank understands, as one Borsh enum: the first byte is the kind
/// (`0` = transfer), leaving room for more kinds without ambiguity.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum BankTx {
    /// A signed transfer (kind byte `0`).
    Transfer(SignedTransfer),
}

impl BankTx {
    /// The only way bytes become a transaction: size bound, strict decoding, body checks.
    pub fn decode(bytes: &[u8]) -> Result<BankTx, TxDecodeError> {
        if bytes.len() > MAX_BANK_TX_BYTES {
            return Err(TxDecodeError::TooLarge {
                len: bytes.len(),
                max: MAX_BANK_TX_BYTES,
            });
        }
        borsh::from_slice(bytes).map_err(|source| TxDecodeError::Malformed { source })
    }

    /// Its canonical bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(self)
    }

    /// The transfer inside.
    pub fn transfer(&self) -> &SignedTransfer {
        match self {
            BankTx::Transfer(t) => t,
        }
    }
}
