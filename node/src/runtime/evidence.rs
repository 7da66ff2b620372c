//! Verified evidence of equivocation waiting to be committed in a block.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use basalt_consensus::types::DuplicateVoteEvidence;
use basalt_consensus::{Round, ValidatorIndex, VoteType};

/// Most pending pieces of evidence (the oldest are dropped first).
pub const MAX_PENDING_EVIDENCE: usize = 1_000;
/// Most evidence included in one block.
pub const MAX_EVIDENCE_PER_PROPOSAL: usize = 32;
/// Committed evidence keys remembered so the same offence is not committed twice.
const MAX_REMEMBERED: usize = 10_000;

/// What identifies one offence: a validator's two votes of one (height, round, type).
type OffenceKey = (u64, Round, VoteType, ValidatorIndex);

fn key_of(e: &DuplicateVoteEvidence) -> OffenceKey {
    let v = &e.vote_a().vote;
    (v.height.0, v.round, v.vote_type, v.validator_index)
}

/// The pool. Callers verify evidence before adding it.
#[derive(Debug, Default)]
pub struct EvidencePool {
    pending: BTreeMap<OffenceKey, DuplicateVoteEvidence>,
    committed: BTreeSet<OffenceKey>,
    committed_order: VecDeque<OffenceKey>,
}

impl EvidencePool {
    /// Adds verified evidence; returns false if already known (pending or committed).
    pub fn add(&mut self, evidence: DuplicateVoteEvidence) -> bool {
        let key = key_of(&evidence);
        if self.committed.contains(&key) || self.pending.contains_key(&key) {
            return false;
        }
        if self.pending.len() >= MAX_PENDING_EVIDENCE {
            self.pending.pop_first();
        }
        self.pending.insert(key, evidence);
        true
    }

    /// Whether the offence of `evidence` is known (pending or committed since start): a re-sent copy
    /// need not be checked again.
    pub fn knows(&self, evidence: &DuplicateVoteEvidence) -> bool {
        let key = key_of(evidence);
        self.committed.contains(&key) || self.pending.contains_key(&key)
    }

    /// Evidence for a block at `height` (only of earlier heights), at most [`MAX_EVIDENCE_PER_PROPOSAL`].
    pub fn for_proposal(&self, height: u64) -> Vec<DuplicateVoteEvidence> {
        self.pending
            .iter()
            .filter(|(k, _)| k.0 < height)
            .take(MAX_EVIDENCE_PER_PROPOSAL)
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// Marks a block's evidence as committed.
    pub fn committed(&mut self, evidence: &[DuplicateVoteEvidence]) {
        for e in evidence {
            let key = key_of(e);
            self.pending.remove(&key);
            if self.committed.insert(key) {
                self.committed_order.push_back(key);
            }
        }
        while self.committed_order.len() > MAX_REMEMBERED {
            if let Some(old) = self.committed_order.pop_front() {
                self.committed.remove(&old);
            }
        }
    }

    /// Number of pending pieces.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}
