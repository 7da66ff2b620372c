//! The properties checked on every run, and the record of what happened that they are checked against.

use std::collections::{BTreeMap, BTreeSet};

use basalt_consensus::types::{BlockId, Hash};
use basalt_consensus::{Height, Round, ValidatorIndex, VoteType};

use super::network::NodeId;

/// Identifies an equivocation: a validator's two votes at one (height, round, type).
pub type EquivocationKey = (Height, Round, VoteType, ValidatorIndex);

/// What the run recorded.
#[derive(Debug, Default)]
pub struct Record {
    /// Decisions of honest nodes: height → node → (block, round, time).
    pub decisions: BTreeMap<Height, BTreeMap<NodeId, (BlockId, Round, u64)>>,
    /// Every block id that appeared in a signed proposal on the network.
    pub proposed: BTreeSet<BlockId>,
    /// Block ids that honest validators judge invalid (poisoned).
    pub invalid: BTreeSet<BlockId>,
    /// Equivocations byzantine validators made.
    pub equivocations: BTreeSet<EquivocationKey>,
    /// (node, incarnation, equivocation) → how many of the two conflicting votes the node accepted while
    /// at the equivocation's height or the next.
    pub halves_accepted: BTreeMap<(NodeId, u64, EquivocationKey), BTreeSet<bool>>,
    /// Evidence reported by honest nodes: (node, equivocation).
    pub evidence_reported: BTreeSet<(NodeId, EquivocationKey)>,
    /// Equivocations included in decided blocks.
    pub evidence_committed: BTreeSet<EquivocationKey>,
    /// Signatures the double-sign protection refused to an honest node (must stay 0).
    pub double_sign_refusals: u64,
    /// Undecodable or invalid messages honest nodes rejected.
    pub rejected_messages: u64,
    /// Forged votes (signed with a key that is not the named validator's) an honest engine accepted —
    /// what the node would then forward and log: (node, height of the vote). Must stay empty.
    pub accepted_forgeries: Vec<(NodeId, Height)>,
    /// Evidence an honest node accepted (kept, to forward) before any block could carry it: (node, the
    /// evidence's height). Must stay empty.
    pub accepted_unusable_evidence: Vec<(NodeId, Height)>,
    /// Gossiped transaction batches honest nodes refused and punished (bad signature, undecodable).
    pub refused_tx_batches: u64,
    /// Client transfers that honest nodes decided.
    pub client_txs_committed: BTreeSet<Hash>,
    /// WAL logs or signer-state files an honest node could not read back at boot, or records it could not
    /// frame (a crash tears only the last WAL record; the signer state is replaced whole): (node,
    /// reason). Must stay empty.
    pub unreadable: Vec<(NodeId, String)>,
    /// Torn WAL tails (a crash during an append) cut off at boot.
    pub torn_tails: u64,
    /// Times an honest node went from consensus into block sync (a peer served the block after its
    /// latest).
    pub sync_entries: u64,
    /// Honest senders an honest node penalised (the edge punished what the sender could not have
    /// refused): (penalising node, sender, time). Must stay empty.
    pub honest_penalised: Vec<(NodeId, NodeId, u64)>,
    /// Precommits of validators that were not in the genesis set, in the commits the honest nodes
    /// stored (with validator-set changes: the added validators took part).
    pub newcomer_signatures: u64,
    /// Diagnostic notes (signer refusals, rejected decisions) for replaying a failed seed.
    pub notes: Vec<String>,
}

/// A property violation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// Two honest nodes decided different blocks at a height.
    Agreement {
        /// The height.
        height: Height,
        /// The different decisions.
        blocks: Vec<(NodeId, BlockId)>,
    },
    /// A decided block was never proposed or is invalid.
    Validity {
        /// Height.
        height: Height,
        /// Node.
        node: NodeId,
        /// Block.
        block: BlockId,
    },
    /// An honest node did not reach the target height by the deadline.
    Liveness {
        /// Node.
        node: NodeId,
        /// Height reached.
        reached: u64,
        /// Target.
        target: u64,
    },
    /// After GST a height took more rounds than the bound.
    TooManyRounds {
        /// Height.
        height: Height,
        /// Round of the decision.
        round: Round,
        /// The bound.
        bound: u32,
    },
    /// An honest node saw both halves of an equivocation but reported no evidence.
    Accountability {
        /// Node.
        node: NodeId,
        /// The equivocation.
        key: EquivocationKey,
    },
    /// The double-sign protection had to refuse an honest node (its replay diverged).
    DoubleSignAttempt {
        /// How many times.
        count: u64,
    },
    /// An honest engine accepted a forged vote (issue 14, hole 2: on 9496b9c next-height votes were
    /// kept, forwarded and logged unverified).
    AcceptedForgery {
        /// The node.
        node: NodeId,
        /// The vote's height.
        height: Height,
    },
    /// An honest node accepted evidence of a height after the one it works on (issue 14, hole 1: on
    /// 9496b9c such evidence was looked up at its own height and forwarded).
    AcceptedUnusableEvidence {
        /// The node.
        node: NodeId,
        /// The evidence's height.
        height: Height,
    },
    /// An honest node's WAL or signer state did not read back as the node wrote it.
    UnreadableOnRestart {
        /// The node.
        node: NodeId,
        /// The reader's error.
        reason: String,
    },
    /// An honest node penalised an honest sender (issue 14: a node is punished only for what it could
    /// have checked).
    PenalisedHonest {
        /// The node that penalised.
        node: NodeId,
        /// The honest sender.
        sender: NodeId,
        /// When.
        at_ms: u64,
    },
    /// A block an honest node stored does not name the validator sets of its height and the next, or
    /// its stored commit is not a +2/3 commit of its height's set.
    WrongSet {
        /// The node.
        node: NodeId,
        /// The block's height.
        height: Height,
        /// What is wrong.
        reason: String,
    },
}

/// Inputs to the checks besides the record.
pub struct Expectations<'a> {
    /// Honest nodes.
    pub honest: &'a [NodeId],
    /// Chain height each honest node reached.
    pub reached: &'a BTreeMap<NodeId, u64>,
    /// Target height.
    pub target: u64,
    /// GST.
    pub gst_ms: u64,
    /// Max rounds per height after GST.
    pub round_bound: u32,
    /// First height that certainly started after GST (the bound on rounds applies from it on).
    pub first_height_after_gst: u64,
    /// Whether liveness is expected (not in the negative control).
    pub expect_liveness: bool,
}

/// Checks agreement, validity, liveness, accountability and double-sign freedom.
pub fn check(record: &Record, exp: &Expectations<'_>) -> Vec<Violation> {
    let mut violations = Vec::new();
    for (height, by_node) in &record.decisions {
        let distinct: BTreeSet<BlockId> = by_node.values().map(|(b, _, _)| *b).collect();
        if distinct.len() > 1 {
            violations.push(Violation::Agreement {
                height: *height,
                blocks: by_node.iter().map(|(n, (b, _, _))| (*n, *b)).collect(),
            });
        }
        for (node, (block, round, time)) in by_node {
            if !record.proposed.contains(block) || record.invalid.contains(block) {
                violations.push(Violation::Validity {
                    height: *height,
                    node: *node,
                    block: *block,
                });
            }
            let started_after_gst = height.0 >= exp.first_height_after_gst && *time > exp.gst_ms;
            if exp.expect_liveness && started_after_gst && round.0 > exp.round_bound {
                violations.push(Violation::TooManyRounds {
                    height: *height,
                    round: *round,
                    bound: exp.round_bound,
                });
            }
        }
    }
    if exp.expect_liveness {
        for node in exp.honest {
            let reached = exp.reached.get(node).copied().unwrap_or(0);
            if reached < exp.target {
                violations.push(Violation::Liveness {
                    node: *node,
                    reached,
                    target: exp.target,
                });
            }
        }
    }
    for ((node, _, key), halves) in &record.halves_accepted {
        if halves.len() == 2 && !record.evidence_reported.contains(&(*node, *key)) {
            violations.push(Violation::Accountability {
                node: *node,
                key: *key,
            });
        }
    }
    if record.double_sign_refusals > 0 {
        violations.push(Violation::DoubleSignAttempt {
            count: record.double_sign_refusals,
        });
    }
    for &(node, sender, at_ms) in &record.honest_penalised {
        violations.push(Violation::PenalisedHonest {
            node,
            sender,
            at_ms,
        });
    }
    for (node, height) in &record.accepted_forgeries {
        violations.push(Violation::AcceptedForgery {
            node: *node,
            height: *height,
        });
    }
    for (node, reason) in &record.unreadable {
        violations.push(Violation::UnreadableOnRestart {
            node: *node,
            reason: reason.clone(),
        });
    }
    for &(node, height) in &record.accepted_unusable_evidence {
        violations.push(Violation::AcceptedUnusableEvidence { node, height });
    }
    violations
}
