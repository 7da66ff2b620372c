//! Following a chain from one trusted header: skipping verification forwards (CometBFT's
//! `VerifySkipping`, bisecting when too little of the trusted set signed) and hash-linked verification
//! backwards (a header below the trusted one is trusted when the next header's `last_block_id` names
//! it). Pure: [`Skipping`] says which height it wants next and the caller fetches it (over RPC, from
//! a test fixture) and feeds it back with the clock's reading, so a light proxy, state sync and the
//! tests all run the same steps.

use super::{verify, LightBlock, Options, TrustedBlock, VerifyError};
use crate::primitives::Height;
use crate::types::{ChainId, CommitError, Hash, Header, ValidatorSet};

#[cfg(test)]
mod tests;

/// Most pending pivots of one skipping verification: each pivot halves the remaining distance, so 64
/// covers every `u64` height gap; a source that made the verifier go deeper is lying.
pub const MAX_PIVOTS: usize = 64;

/// A light block the verifier trusts, with the validator set that signs the next height (needed to
/// verify anything above it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedBlock {
    /// The header, the commit that signed it and its validator set.
    pub block: LightBlock,
    /// The set of the next height; hashes to `block.header.next_validators_hash`.
    pub next_validators: ValidatorSet,
}

impl VerifiedBlock {
    /// The root of trust: `block` (with `next_validators`) accepted because its header hashes to
    /// `trusted_hash`, which the operator got out of band. Its sets must be the ones its header names
    /// and its commit a valid +2/3 commit of it, so a root that could never verify a successor is
    /// refused now rather than at the first step.
    pub fn trust_root(
        block: LightBlock,
        next_validators: ValidatorSet,
        trusted_hash: &Hash,
    ) -> Result<VerifiedBlock, SkipError> {
        let height = block.header.height;
        let got = block.header.hash();
        if got != *trusted_hash {
            return Err(SkipError::WrongRootHash {
                height,
                got,
                expected: *trusted_hash,
            });
        }
        VerifiedBlock::self_consistent(block, next_validators)
    }

    /// `block` and `next_validators` as they hash into `block.header`, with the commit verified by
    /// the block's own set. Says nothing about whether the header belongs to the chain: callers
    /// establish that by hash (root, backwards) or by [`verify`] (forwards).
    fn self_consistent(
        block: LightBlock,
        next_validators: ValidatorSet,
    ) -> Result<VerifiedBlock, SkipError> {
        let header = &block.header;
        let height = header.height;
        let got = block.validators.hash();
        if got != header.validators_hash {
            return Err(SkipError::Verify {
                height,
                source: VerifyError::ValidatorsMismatch {
                    got,
                    expected: header.validators_hash,
                },
            });
        }
        check_next(header, &next_validators)?;
        let block_id = crate::types::BlockId {
            hash: header.hash(),
        };
        if block.commit.height != height || block.commit.block_id != block_id {
            return Err(SkipError::Verify {
                height,
                source: VerifyError::Commit(CommitError::WrongBlock {
                    got_height: block.commit.height,
                    got_block: block.commit.block_id.hash,
                    expected_height: height,
                    expected_block: block_id.hash,
                }),
            });
        }
        block
            .commit
            .verify(&header.chain_id, &block.validators)
            .map_err(|e| SkipError::Verify {
                height,
                source: VerifyError::Commit(e),
            })?;
        Ok(VerifiedBlock {
            block,
            next_validators,
        })
    }

    /// Its height.
    pub fn height(&self) -> Height {
        self.block.header.height
    }

    /// Its chain.
    pub fn chain_id(&self) -> &ChainId {
        &self.block.header.chain_id
    }

    /// What [`verify`] needs of it as the trusted side.
    pub fn trusted(&self) -> TrustedBlock {
        TrustedBlock::of(&self.block.header)
    }
}

/// Why a header could not be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkipError {
    /// The root block's header is not the one the operator trusts.
    #[error("the header at height {height} hashes to {got}, the trusted hash is {expected}")]
    WrongRootHash {
        /// Its height.
        height: Height,
        /// Its hash.
        got: Hash,
        /// The trusted hash.
        expected: Hash,
    },
    /// The target is not above the trusted height (forwards) or not below it (backwards).
    #[error("height {target} cannot be reached from the trusted height {trusted} this way")]
    WrongDirection {
        /// The target.
        target: Height,
        /// The trusted height.
        trusted: Height,
    },
    /// The source answered with a block of another height than asked.
    #[error("asked for height {asked}, got a block of height {got}")]
    WrongHeight {
        /// The height asked for.
        asked: Height,
        /// The height received.
        got: Height,
    },
    /// The next validator set given with a header is not the one it names.
    #[error("the next validator set given for height {height} hashes to {got}, the header names {expected}")]
    NextValidatorsMismatch {
        /// The header's height.
        height: Height,
        /// Hash of the set given.
        got: Hash,
        /// The header's `next_validators_hash`.
        expected: Hash,
    },
    /// An older header is not the one the newer trusted header links to.
    #[error("the header at height {height} hashes to {got}, the trusted header above it links to {expected}")]
    BrokenLink {
        /// The older header's height.
        height: Height,
        /// Its hash.
        got: Hash,
        /// The hash the trusted header's `last_block_id` names (zero for none).
        expected: Hash,
    },
    /// Bisection went deeper than [`MAX_PIVOTS`].
    #[error("more than {MAX_PIVOTS} pivots needed to reach height {target}")]
    TooManyPivots {
        /// The target.
        target: Height,
    },
    /// A header failed verification.
    #[error("header at height {height}: {source}")]
    Verify {
        /// Its height.
        height: Height,
        /// Why.
        #[source]
        source: VerifyError,
    },
}

fn check_next(header: &Header, next: &ValidatorSet) -> Result<(), SkipError> {
    let got = next.hash();
    if got != header.next_validators_hash {
        return Err(SkipError::NextValidatorsMismatch {
            height: header.height,
            got,
            expected: header.next_validators_hash,
        });
    }
    Ok(())
}

/// One skipping verification from a trusted block up to a target height. Ask [`Skipping::wanted`]
/// for the height to fetch, give the block to [`Skipping::feed`]; every block it returns is
/// verified (the pivots on the way and, last, the target), after which `wanted` is `None`.
///
/// It first tries the target directly (one step when a third of the trusted power still signs it); a
/// header with too little trusted power sends it to the midpoint between the trusted height and that
/// header, and so on down; every verified pivot becomes the trust for the heights above it.
#[derive(Clone, Debug)]
pub struct Skipping {
    trusted: VerifiedBlock,
    /// Heights still to verify, the next to fetch last; strictly decreasing from bottom to top.
    pending: Vec<Height>,
    options: Options,
}

impl Skipping {
    /// A verification of `target` from `trusted`, refused unless `target` is above it.
    pub fn new(
        trusted: VerifiedBlock,
        target: Height,
        options: Options,
    ) -> Result<Skipping, SkipError> {
        if target <= trusted.height() {
            return Err(SkipError::WrongDirection {
                target,
                trusted: trusted.height(),
            });
        }
        Ok(Skipping {
            trusted,
            pending: vec![target],
            options,
        })
    }

    /// The height whose light block (and next validator set) to fetch next; `None` when the target
    /// is verified.
    pub fn wanted(&self) -> Option<Height> {
        self.pending.last().copied()
    }

    /// The most recent block verified (the starting one before any step).
    pub fn trusted(&self) -> &VerifiedBlock {
        &self.trusted
    }

    /// Judges `block` (with `next`, the set of its next height) fetched for [`Skipping::wanted`] at
    /// `now_ms`: `Some` of it when it verified (it is now the trust), `None` when too little of the
    /// trusted set signed it (a pivot below it is wanted first). Any other failure ends the
    /// verification: the source served a block that is not the chain's.
    pub fn feed(
        &mut self,
        block: LightBlock,
        next: ValidatorSet,
        now_ms: u64,
    ) -> Result<Option<VerifiedBlock>, SkipError> {
        let Some(asked) = self.wanted() else {
            return Err(SkipError::WrongDirection {
                target: block.header.height,
                trusted: self.trusted.height(),
            });
        };
        let height = block.header.height;
        if height != asked {
            return Err(SkipError::WrongHeight { asked, got: height });
        }
        check_next(&block.header, &next)?;
        match verify(
            &self.trusted.trusted(),
            &self.trusted.next_validators,
            &block,
            &self.options,
            now_ms,
        ) {
            Ok(()) => {
                self.pending.pop();
                let verified = VerifiedBlock {
                    block,
                    next_validators: next,
                };
                self.trusted = verified.clone();
                Ok(Some(verified))
            }
            Err(VerifyError::NotEnoughTrust { .. }) => {
                // Adjacent headers never end here (their rule is the +2/3 of the named next set),
                // so the gap is at least 2 and the midpoint lies strictly between.
                let from = self.trusted.height().0;
                let pivot = Height(from + (height.0 - from) / 2);
                if self.pending.len() >= MAX_PIVOTS || pivot.0 <= from {
                    return Err(SkipError::TooManyPivots {
                        target: self.pending[0],
                    });
                }
                self.pending.push(pivot);
                Ok(None)
            }
            Err(source) => Err(SkipError::Verify { height, source }),
        }
    }
}

/// Trusts `older` (with `next`, the set of the height above it) because `newer`, already trusted, is
/// the header right above it and links to it by hash (`newer.last_block_id`): no signature or clock
/// is needed for the link, and the commit carried with `older` is checked against its own set so a
/// proxy never serves a commit that does not sign the header.
pub fn verify_backwards(
    newer: &Header,
    older: LightBlock,
    next: ValidatorSet,
) -> Result<VerifiedBlock, SkipError> {
    let height = older.header.height;
    if height.next() != Some(newer.height) {
        return Err(SkipError::WrongDirection {
            target: height,
            trusted: newer.height,
        });
    }
    let got = older.header.hash();
    let expected = newer.last_block_id.map_or(Hash::ZERO, |id| id.hash);
    if got != expected {
        return Err(SkipError::BrokenLink {
            height,
            got,
            expected,
        });
    }
    VerifiedBlock::self_consistent(older, next)
}
