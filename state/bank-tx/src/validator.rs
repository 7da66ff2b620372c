//! The validator-update transaction (kind byte `2`): the chain's validator authority sets validators'
//! powers (power 0 removes). Byte layout in docs/TRANSACTIONS.md.
//!
//! Bytes become a [`SignedValidatorTx`] only through [`SignedValidatorTx::decode`]: size bound first,
//! then strict Borsh (no trailing bytes, canonical keys and signature), then the body's rules (1 to
//! [`MAX_CHANGES`] changes, no key twice, gas limit bounded). Whether the signature verifies is a
//! separate step ([`SignedValidatorTx::verify`]).

use std::collections::BTreeSet;
use std::io;

use basalt_consensus::types::crypto::{CryptoError, SIGNATURE_LEN};
use basalt_consensus::types::{
    encode, Address, ChainId, PrivateKey, PublicKey, Signature, ValidatorChange,
};
use basalt_consensus::VotingPower;
use borsh::{BorshDeserialize, BorshSerialize};

/// The transaction kind byte of a validator update (a transfer's is `0`, an IBC transaction's `1`).
pub const VALIDATOR_TX_KIND: u8 = 2;
/// Domain tag prefixed to the body in the sign bytes, so this signature is never another message's.
pub const VALIDATOR_TX_SIGN_DOMAIN: &[u8] = b"basalt/validator/tx/v1\0";
/// Most changes in one transaction.
pub const MAX_CHANGES: usize = 16;
/// Largest validator transaction (16 changes and the envelope fit with room to spare).
pub const MAX_VALIDATOR_TX_BYTES: usize = 4096;
/// Largest gas limit a transaction may ask for (the bank's limit).
pub const MAX_GAS_LIMIT: u64 = 10_000_000;

/// Why bytes are not a validator transaction.
#[derive(Debug, thiserror::Error)]
pub enum ValidatorTxError {
    /// Larger than [`MAX_VALIDATOR_TX_BYTES`].
    #[error("transaction of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Input length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The first byte is not [`VALIDATOR_TX_KIND`].
    #[error("transaction kind {0} is not a validator transaction")]
    WrongKind(u8),
    /// Not canonical Borsh, or an invalid chain id, key or signature.
    #[error("malformed validator transaction: {source}")]
    Malformed {
        /// The decoder's reason.
        #[source]
        source: io::Error,
    },
    /// The body breaks one of its rules.
    #[error("invalid validator transaction: {0}")]
    Invalid(&'static str),
}

/// The signed part of a validator transaction.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ValidatorTxBody {
    /// Chain the transaction is valid on.
    pub chain_id: ChainId,
    /// The signer's public key: its account pays the fee and must be the chain's validator authority.
    pub from: PublicKey,
    /// Must equal the signer's account nonce when executed.
    pub nonce: u64,
    /// Fee paid to the block's proposer.
    pub fee: u128,
    /// Most gas the signer pays for, at most [`MAX_GAS_LIMIT`].
    pub gas_limit: u64,
    /// One to [`MAX_CHANGES`] (consensus key, new power) pairs, each key once; power 0 removes.
    pub changes: Vec<(PublicKey, VotingPower)>,
}

impl ValidatorTxBody {
    /// The body's rules (checked on every decode).
    pub fn check(&self) -> Result<(), ValidatorTxError> {
        if self.changes.is_empty() {
            return Err(ValidatorTxError::Invalid("no changes"));
        }
        if self.changes.len() > MAX_CHANGES {
            return Err(ValidatorTxError::Invalid("more changes than allowed"));
        }
        let mut keys = BTreeSet::new();
        if !self
            .changes
            .iter()
            .all(|(key, _)| keys.insert(key.address()))
        {
            return Err(ValidatorTxError::Invalid("a validator is changed twice"));
        }
        if self.gas_limit > MAX_GAS_LIMIT {
            return Err(ValidatorTxError::Invalid("gas limit above the maximum"));
        }
        Ok(())
    }

    /// The bytes signed: [`VALIDATOR_TX_SIGN_DOMAIN`] followed by the body's Borsh encoding.
    pub fn sign_bytes(&self) -> Vec<u8> {
        let body = encode(self);
        let mut out = Vec::with_capacity(VALIDATOR_TX_SIGN_DOMAIN.len() + body.len());
        out.extend_from_slice(VALIDATOR_TX_SIGN_DOMAIN);
        out.extend_from_slice(&body);
        out
    }

    /// The signer's account.
    pub fn signer(&self) -> Address {
        self.from.address()
    }

    /// The changes as the validator set applies them.
    pub fn validator_changes(&self) -> Vec<ValidatorChange> {
        self.changes
            .iter()
            .map(|(public_key, power)| ValidatorChange {
                public_key: *public_key,
                power: *power,
            })
            .collect()
    }

    /// Signs the body.
    pub fn sign(self, key: &PrivateKey) -> SignedValidatorTx {
        let signature = key.sign(&self.sign_bytes());
        SignedValidatorTx {
            body: self,
            signature,
        }
    }
}

/// A validator transaction with its signature; structurally valid by construction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedValidatorTx {
    body: ValidatorTxBody,
    signature: Signature,
}

impl SignedValidatorTx {
    /// The only way bytes become a validator transaction: size, kind, strict decoding, body rules.
    pub fn decode(bytes: &[u8]) -> Result<SignedValidatorTx, ValidatorTxError> {
        if bytes.len() > MAX_VALIDATOR_TX_BYTES {
            return Err(ValidatorTxError::TooLarge {
                len: bytes.len(),
                max: MAX_VALIDATOR_TX_BYTES,
            });
        }
        let (&kind, rest) = bytes
            .split_first()
            .ok_or(ValidatorTxError::Invalid("empty transaction"))?;
        if kind != VALIDATOR_TX_KIND {
            return Err(ValidatorTxError::WrongKind(kind));
        }
        let (body, signature): (ValidatorTxBody, [u8; SIGNATURE_LEN]) =
            borsh::from_slice(rest).map_err(|source| ValidatorTxError::Malformed { source })?;
        let signature =
            Signature::from_bytes(&signature).map_err(|e| ValidatorTxError::Malformed {
                source: io::Error::new(io::ErrorKind::InvalidData, e),
            })?;
        body.check()?;
        Ok(SignedValidatorTx { body, signature })
    }

    /// Its canonical bytes: the kind byte, the body, the signature.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![VALIDATOR_TX_KIND];
        out.extend_from_slice(&encode(&(&self.body, self.signature.to_bytes())));
        out
    }

    /// The signed body.
    pub fn body(&self) -> &ValidatorTxBody {
        &self.body
    }

    /// Checks the signature (ZIP-215, as every Basalt signature).
    pub fn verify(&self) -> Result<(), CryptoError> {
        self.body
            .from
            .verify(&self.body.sign_bytes(), &self.signature)
    }
}
