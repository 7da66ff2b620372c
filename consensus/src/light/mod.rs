//! Light-client verification: whether a header, its commit and its validator set can be trusted given an
//! earlier header that is — the Tendermint light client's rules, as IBC's ICS-07 client applies them, for
//! Basalt's headers and commits. Pure (the caller passes the time), so the IBC client of another Basalt
//! chain, state sync and a light proxy all run the same checks.
//!
//! [`verify`] accepts `untrusted` after `trusted` when all of these hold:
//! - the trusted header is within the trusting period (`trusted time + trusting_period > now`), and the
//!   validator set the caller supplies for it hashes to its `next_validators_hash`;
//! - `untrusted` is of the same chain, at a greater height, with a later time, and not more than
//!   `max_clock_drift` ahead of `now`;
//! - its validator set hashes to its header's `validators_hash`, and its commit is for that header
//!   (height and header hash);
//! - **adjacent** (`height = trusted height + 1`): its `validators_hash` is the trusted header's
//!   `next_validators_hash`, and more than 2/3 of its set's power signed;
//! - **non-adjacent**: validators of the trusted next set holding more than `trust_level` of that set's
//!   power signed this commit (each counted once, by address, with its key from the trusted set), and
//!   more than 2/3 of the new set's power signed.
//!
//! Validator sets may change between the two headers; only signatures for the block count (nil
//! precommits do not); power sums are `u128`, so no set can overflow them.

use std::collections::{BTreeMap, BTreeSet};

pub use skipping::{verify_backwards, SkipError, Skipping, VerifiedBlock};

use crate::primitives::{Height, ValidatorIndex, VoteType};
use crate::types::vote::sign_bytes;
use crate::types::{
    verify_batch, Address, ChainId, Commit, CommitError, CommitSig, Hash, Header, PublicKey,
    Signature, ValidatorSet,
};

#[cfg(any(test, feature = "testing"))]
pub mod fixture;
pub mod skipping;
#[cfg(test)]
mod tests;

/// The share of a trusted validator set's power that must sign a non-adjacent header: between 1/3 and 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrustLevel {
    numerator: u64,
    denominator: u64,
}

impl TrustLevel {
    /// 1/3, the usual (and smallest safe) trust level.
    pub const ONE_THIRD: TrustLevel = TrustLevel {
        numerator: 1,
        denominator: 3,
    };

    /// `numerator / denominator`, refused unless 1/3 ≤ it ≤ 1 (below 1/3 a trusted set's faulty third
    /// alone could vouch for a header).
    pub fn new(numerator: u64, denominator: u64) -> Result<TrustLevel, VerifyError> {
        let (n, d) = (u128::from(numerator), u128::from(denominator));
        if denominator == 0 || n * 3 < d || n > d {
            return Err(VerifyError::InvalidTrustLevel {
                numerator,
                denominator,
            });
        }
        Ok(TrustLevel {
            numerator,
            denominator,
        })
    }

    /// The numerator.
    pub fn numerator(self) -> u64 {
        self.numerator
    }

    /// The denominator.
    pub fn denominator(self) -> u64 {
        self.denominator
    }

    /// Whether `signed` is more than this share of `total`.
    fn exceeded_by(self, signed: u128, total: u128) -> bool {
        signed * u128::from(self.denominator) > total * u128::from(self.numerator)
    }
}

/// How much a verifier trusts, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Share of the trusted set that must sign a non-adjacent header.
    pub trust_level: TrustLevel,
    /// How long a verified header may be built on, in ms (shorter than the unbonding period).
    pub trusting_period_ms: u64,
    /// How far a header's time may be ahead of the verifier's clock, in ms.
    pub max_clock_drift_ms: u64,
}

/// What a verifier keeps of a header it trusts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedBlock {
    /// Its chain.
    pub chain_id: ChainId,
    /// Its height.
    pub height: Height,
    /// Its time, ms since the Unix epoch.
    pub time_ms: u64,
    /// Its `next_validators_hash`: the set that signs the next height.
    pub next_validators_hash: Hash,
}

impl TrustedBlock {
    /// What to keep of a verified `header`.
    pub fn of(header: &Header) -> TrustedBlock {
        TrustedBlock {
            chain_id: header.chain_id.clone(),
            height: header.height,
            time_ms: header.time_ms,
            next_validators_hash: header.next_validators_hash,
        }
    }
}

/// A header to verify, with the commit that signed it and the validator set of its height.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LightBlock {
    /// The header.
    pub header: Header,
    /// The commit for it (the next block's `last_commit`, or the seen commit).
    pub commit: Commit,
    /// The validator set that signed it (must hash to `header.validators_hash`).
    pub validators: ValidatorSet,
}

/// Why a header is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A trust level outside [1/3, 1].
    #[error("trust level {numerator}/{denominator} is outside [1/3, 1]")]
    InvalidTrustLevel {
        /// Numerator.
        numerator: u64,
        /// Denominator.
        denominator: u64,
    },
    /// The trusted header is older than the trusting period.
    #[error("trusted header of height {height} expired at {expired_at_ms} ms (now {now_ms} ms)")]
    Expired {
        /// Its height.
        height: Height,
        /// When its trust ended.
        expired_at_ms: u64,
        /// Now.
        now_ms: u64,
    },
    /// The set given for the trusted header is not the one it names.
    #[error("the trusted validator set hashes to {got}, the trusted header names {expected}")]
    TrustedValidatorsMismatch {
        /// Hash of the set given.
        got: Hash,
        /// The trusted header's `next_validators_hash`.
        expected: Hash,
    },
    /// Another chain's header.
    #[error("header is of chain {got}, expected {expected}")]
    WrongChainId {
        /// The header's chain.
        got: String,
        /// The trusted chain.
        expected: String,
    },
    /// Not above the trusted height.
    #[error("header height {got} is not above the trusted height {trusted}")]
    NonIncreasingHeight {
        /// The header's height.
        got: Height,
        /// The trusted height.
        trusted: Height,
    },
    /// Not after the trusted time.
    #[error("header time {got_ms} ms is not after the trusted time {trusted_ms} ms")]
    NonIncreasingTime {
        /// The header's time.
        got_ms: u64,
        /// The trusted time.
        trusted_ms: u64,
    },
    /// Too far in the future.
    #[error("header time {got_ms} ms is more than the allowed drift ahead of now ({now_ms} ms)")]
    FromTheFuture {
        /// The header's time.
        got_ms: u64,
        /// Now.
        now_ms: u64,
    },
    /// The validator set given with the header is not the one it names.
    #[error("the header's validator set hashes to {got}, the header names {expected}")]
    ValidatorsMismatch {
        /// Hash of the set given.
        got: Hash,
        /// The header's `validators_hash`.
        expected: Hash,
    },
    /// An adjacent header whose set is not the trusted header's next set.
    #[error("adjacent header names validators {got}, the trusted header's next set is {expected}")]
    AdjacentValidatorsMismatch {
        /// The header's `validators_hash`.
        got: Hash,
        /// The trusted `next_validators_hash`.
        expected: Hash,
    },
    /// The commit is not a valid +2/3 commit of the header by its set.
    #[error(transparent)]
    Commit(#[from] CommitError),
    /// Too little of the trusted set signed a non-adjacent header.
    #[error("validators of the trusted set with {signed} of {total} power signed; more than {numerator}/{denominator} is needed")]
    NotEnoughTrust {
        /// Trusted power that signed.
        signed: u128,
        /// The trusted set's total power.
        total: u128,
        /// Trust level numerator.
        numerator: u64,
        /// Trust level denominator.
        denominator: u64,
    },
    /// A signature by a trusted validator does not verify.
    #[error("signature of trusted validator {address} does not verify")]
    BadTrustedSignature {
        /// The signer.
        address: String,
    },
}

/// Verifies `untrusted` against `trusted` (whose next validator set is `trusted_next`) at `now_ms`; see
/// the module docs for the rules. Cheap checks come first: no signature is verified for a header that
/// fails any of them.
pub fn verify(
    trusted: &TrustedBlock,
    trusted_next: &ValidatorSet,
    untrusted: &LightBlock,
    options: &Options,
    now_ms: u64,
) -> Result<(), VerifyError> {
    let got = trusted_next.hash();
    if got != trusted.next_validators_hash {
        return Err(VerifyError::TrustedValidatorsMismatch {
            got,
            expected: trusted.next_validators_hash,
        });
    }
    let expired_at_ms = trusted.time_ms.saturating_add(options.trusting_period_ms);
    if expired_at_ms <= now_ms {
        return Err(VerifyError::Expired {
            height: trusted.height,
            expired_at_ms,
            now_ms,
        });
    }
    let header = &untrusted.header;
    if header.chain_id != trusted.chain_id {
        return Err(VerifyError::WrongChainId {
            got: header.chain_id.as_str().to_owned(),
            expected: trusted.chain_id.as_str().to_owned(),
        });
    }
    if header.height <= trusted.height {
        return Err(VerifyError::NonIncreasingHeight {
            got: header.height,
            trusted: trusted.height,
        });
    }
    if header.time_ms <= trusted.time_ms {
        return Err(VerifyError::NonIncreasingTime {
            got_ms: header.time_ms,
            trusted_ms: trusted.time_ms,
        });
    }
    if header.time_ms > now_ms.saturating_add(options.max_clock_drift_ms) {
        return Err(VerifyError::FromTheFuture {
            got_ms: header.time_ms,
            now_ms,
        });
    }
    let got = untrusted.validators.hash();
    if got != header.validators_hash {
        return Err(VerifyError::ValidatorsMismatch {
            got,
            expected: header.validators_hash,
        });
    }
    let block_id = crate::types::BlockId {
        hash: header.hash(),
    };
    // The commit must be for this header before any of its signatures is weighed.
    if untrusted.commit.height != header.height || untrusted.commit.block_id != block_id {
        return Err(VerifyError::Commit(CommitError::WrongBlock {
            got_height: untrusted.commit.height,
            got_block: untrusted.commit.block_id.hash,
            expected_height: header.height,
            expected_block: block_id.hash,
        }));
    }
    if trusted.height.next() == Some(header.height) {
        if header.validators_hash != trusted.next_validators_hash {
            return Err(VerifyError::AdjacentValidatorsMismatch {
                got: header.validators_hash,
                expected: trusted.next_validators_hash,
            });
        }
    } else {
        verify_trusting(
            &trusted.chain_id,
            trusted_next,
            untrusted,
            options.trust_level,
        )?;
    }
    untrusted
        .commit
        .verify(&trusted.chain_id, &untrusted.validators)?;
    Ok(())
}

/// Whether members of `trusted_next` holding more than `trust_level` of its power signed the commit for
/// the block (CometBFT's `VerifyCommitLightTrusting`): each trusted validator counted once, found by
/// address, its signature checked with the trusted set's key.
fn verify_trusting(
    chain_id: &ChainId,
    trusted_next: &ValidatorSet,
    untrusted: &LightBlock,
    trust_level: TrustLevel,
) -> Result<(), VerifyError> {
    let commit = &untrusted.commit;
    if commit.signatures.len() != untrusted.validators.len() {
        return Err(VerifyError::Commit(CommitError::WrongSize {
            height: commit.height,
            got: commit.signatures.len(),
            expected: untrusted.validators.len(),
        }));
    }
    let message = sign_bytes(
        chain_id,
        VoteType::Precommit,
        commit.height,
        commit.round,
        Some(&commit.block_id),
    );
    let total = u128::from(trusted_next.total_power());
    // Members by address, built once: a linear search per commit slot would cost sets of 10,000
    // validators 10^8 comparisons per header.
    let members: BTreeMap<Address, ValidatorIndex> = trusted_next
        .validators()
        .iter()
        .enumerate()
        .filter_map(|(i, v)| Some((v.address, ValidatorIndex(u32::try_from(i).ok()?))))
        .collect();
    let mut counted = BTreeSet::new();
    let mut signed: u128 = 0;
    let mut signers: Vec<(String, PublicKey, Signature)> = Vec::new();
    for (slot, validator) in commit
        .signatures
        .iter()
        .zip(untrusted.validators.validators())
    {
        let CommitSig::ForBlock(signature) = slot else {
            continue;
        };
        let Some(&index) = members.get(&validator.address) else {
            continue; // not a member of the trusted set: counts only towards the new set's +2/3
        };
        if !counted.insert(index) {
            continue;
        }
        let Some(member) = trusted_next.get(index) else {
            continue;
        };
        signed += u128::from(member.voting_power);
        signers.push((member.address.to_hex_upper(), member.public_key, *signature));
        if trust_level.exceeded_by(signed, total) {
            break;
        }
    }
    if !trust_level.exceeded_by(signed, total) {
        return Err(VerifyError::NotEnoughTrust {
            signed,
            total,
            numerator: trust_level.numerator,
            denominator: trust_level.denominator,
        });
    }
    let messages: Vec<&[u8]> = signers.iter().map(|_| message.as_slice()).collect();
    let signatures: Vec<Signature> = signers.iter().map(|s| s.2).collect();
    let keys: Vec<PublicKey> = signers.iter().map(|s| s.1).collect();
    if verify_batch(&messages, &signatures, &keys).is_err() {
        // Name the culprit: the batch failed, so at least one single check fails.
        let culprit = signers
            .iter()
            .find(|(_, key, signature)| key.verify(&message, signature).is_err())
            .map_or_else(String::new, |s| s.0.clone());
        return Err(VerifyError::BadTrustedSignature { address: culprit });
    }
    Ok(())
}
