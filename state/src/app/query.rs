//! `abci_query` paths as state keys, and checking an answer against an app hash.
//!
//! [`QueryTarget::of`] is the one place a query's path and `data` become the state key it reads: the
//! application answers with it ([`super::BankApp`]) and a light client that checks an answer's proof
//! derives the key the same way, never taking the key a server reports. [`verify_answer`] then
//! accepts an answer only when its proof shows the value (or the absence) under a trusted root.

use basalt_consensus::types::{Address, Hash};

use super::bank_app::{IBC_STORE_PREFIX, MAX_QUERY_KEY_BYTES, TRANSFER_STORE_PREFIX};
use crate::bank::{account_key, Account};
use crate::merkle::spec::{verify_membership, verify_non_membership};

/// What a query path reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueryTarget {
    /// `/bank/account/<address>`: the account record exactly as stored (empty when absent).
    Account {
        /// Its state key.
        key: Vec<u8>,
    },
    /// `/bank/balance/<address>`: the balance of the stored record, as decimal ASCII (`"0"` when
    /// absent).
    Balance {
        /// The account's state key.
        key: Vec<u8>,
    },
    /// `/store/ibc/key`, `/store/transfer/key`: the stored bytes of `prefix ‖ data` (empty when
    /// absent).
    Raw {
        /// Its state key.
        key: Vec<u8>,
    },
}

/// Why a query path names no state key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryPathError {
    /// Not a path the application serves.
    #[error("unknown query path {0:?}")]
    UnknownPath(String),
    /// The address is neither 40 hex characters in the path nor 20 bytes of `data`.
    #[error("address must be 40 hex characters in the path or 20 bytes in data")]
    BadAddress,
    /// A store key of the wrong size.
    #[error("the key (data) must be 1 to {MAX_QUERY_KEY_BYTES} bytes, got {len}")]
    BadKey {
        /// Its length.
        len: usize,
    },
}

impl QueryTarget {
    /// The target of `path` with `data`.
    pub fn of(path: &str, data: &[u8]) -> Result<QueryTarget, QueryPathError> {
        let store = |prefix: &[u8]| {
            if data.is_empty() || data.len() > MAX_QUERY_KEY_BYTES {
                return Err(QueryPathError::BadKey { len: data.len() });
            }
            let mut key = prefix.to_vec();
            key.extend_from_slice(data);
            Ok(QueryTarget::Raw { key })
        };
        if path == "/store/ibc/key" || path == "store/ibc/key" {
            return store(IBC_STORE_PREFIX);
        }
        if path == "/store/transfer/key" || path == "store/transfer/key" {
            return store(TRANSFER_STORE_PREFIX);
        }
        if let Some(rest) = path.strip_prefix("/bank/account") {
            let address = parse_query_address(rest, data).ok_or(QueryPathError::BadAddress)?;
            return Ok(QueryTarget::Account {
                key: account_key(&address),
            });
        }
        if let Some(rest) = path.strip_prefix("/bank/balance") {
            let address = parse_query_address(rest, data).ok_or(QueryPathError::BadAddress)?;
            return Ok(QueryTarget::Balance {
                key: account_key(&address),
            });
        }
        Err(QueryPathError::UnknownPath(truncate(path).to_owned()))
    }

    /// The state key read.
    pub fn key(&self) -> &[u8] {
        match self {
            QueryTarget::Account { key }
            | QueryTarget::Balance { key }
            | QueryTarget::Raw { key } => key,
        }
    }

    /// The state key read, owned.
    pub fn into_key(self) -> Vec<u8> {
        match self {
            QueryTarget::Account { key }
            | QueryTarget::Balance { key }
            | QueryTarget::Raw { key } => key,
        }
    }
}

/// Why an answer is not proven.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// The proof does not show the answered value under the root.
    #[error("the proof does not show the answered value under app hash {root}")]
    NotProven {
        /// The root.
        root: Hash,
    },
    /// A balance answer that is not the balance of the proven record.
    #[error("the answered balance {answered:?} is not the proven record's {proven}")]
    WrongBalance {
        /// What the server said.
        answered: String,
        /// What the proof holds.
        proven: u128,
    },
}

/// Checks that `proof` shows `value` — the answer to a query of `target` — under `root`: membership
/// of `key ↦ value` for a non-empty value, absence of `key` for an empty one; a balance against the
/// record the proof carries.
pub fn verify_answer(
    target: &QueryTarget,
    value: &[u8],
    proof: &ics23::CommitmentProof,
    root: &Hash,
) -> Result<(), AnswerError> {
    let key = target.key();
    let not_proven = || AnswerError::NotProven { root: *root };
    match target {
        QueryTarget::Account { .. } | QueryTarget::Raw { .. } => {
            let proven = if value.is_empty() {
                verify_non_membership(proof, &root.0, key)
            } else {
                verify_membership(proof, &root.0, key, value)
            };
            proven.then_some(()).ok_or_else(not_proven)
        }
        QueryTarget::Balance { .. } => {
            let stored = match &proof.proof {
                Some(ics23::commitment_proof::Proof::Exist(e)) => Some(e.value.as_slice()),
                _ => None,
            };
            let balance = match stored {
                Some(record) => {
                    if !verify_membership(proof, &root.0, key, record) {
                        return Err(not_proven());
                    }
                    Account::from_bytes(record)
                        .map_err(|_| not_proven())?
                        .balance
                }
                None => {
                    if !verify_non_membership(proof, &root.0, key) {
                        return Err(not_proven());
                    }
                    0
                }
            };
            if value != balance.to_string().as_bytes() {
                return Err(AnswerError::WrongBalance {
                    answered: String::from_utf8_lossy(value).into_owned(),
                    proven: balance,
                });
            }
            Ok(())
        }
    }
}

fn truncate(s: &str) -> &str {
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `rest` is what follows the path's kind: `/<hex>` or empty (then `data` holds the raw address).
fn parse_query_address(rest: &str, data: &[u8]) -> Option<Address> {
    if let Some(hex) = rest.strip_prefix('/') {
        return Address::from_hex(hex).ok();
    }
    if !rest.is_empty() {
        return None;
    }
    let bytes: [u8; 20] = data.try_into().ok()?;
    Some(Address(bytes))
}
