//! The driver core against an in-memory host: the real chain state (validator sets, evidence checks,
//! block building) and the real double-sign rule, with the WAL, network and timers recorded in order.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use basalt_consensus::engine::EngineConfig;
use basalt_consensus::types::{
    BlockId, ChainId, CommitSig, Hash, PrivateKey, SignedProposal, SignedVote,
};
use basalt_consensus::{ValidatorIndex, VoteType};

use super::*;
use crate::durability::privval::{Hrs, LastSignState, SignPermit};
use crate::rpc::backend::{RoundState, RoundStep};
use crate::runtime::chain::ChainState;
use crate::runtime::valsets::SetHistory;
use basalt_consensus::TimeoutKind;

/// What the host was asked to do, in order.
#[derive(Clone, Debug, PartialEq)]
enum Did {
    Log(WalRecord),
    Publish(ConsensusMessage),
    Timeout(Height, Timeout),
    Start(Height),
    EmptyBlockDue(Height),
    Build(Height, Round),
    Commit(Height),
    Claim(u8, u64),
}

/// The in-memory host. Peers are named by a byte.
struct TestHost {
    chain: ChainState,
    key: PrivateKey,
    /// The signer's persisted state: the real double-sign rule decides what may be signed.
    last_signed: LastSignState,
    /// Signatures made anew (not handed back for the same sign bytes).
    fresh_signatures: usize,
    did: Vec<Did>,
    /// Consensus events announced, in order.
    events: Vec<ConsensusEvent>,
    /// `create_empty_blocks = false`.
    no_empty_blocks: bool,
    /// Transactions in the mempool.
    mempool: usize,
    /// The app hash the next commit leaves.
    next_app_hash: Hash,
}

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct TestError(#[from] EngineError);

impl TestHost {
    fn sign(
        &mut self,
        hrs: Hrs,
        sign_bytes: Vec<u8>,
    ) -> Option<basalt_consensus::types::Signature> {
        let signature = match self.last_signed.permit(hrs, &sign_bytes).ok()? {
            SignPermit::Repeat(signature) => signature,
            SignPermit::New => {
                self.fresh_signatures += 1;
                self.key.sign(&sign_bytes)
            }
        };
        self.last_signed = LastSignState::after_signing(hrs, signature, sign_bytes);
        Some(signature)
    }

    fn wal(&self) -> Vec<WalRecord> {
        self.did
            .iter()
            .filter_map(|d| match d {
                Did::Log(record) => Some(record.clone()),
                _ => None,
            })
            .collect()
    }

    fn published(&self) -> Vec<ConsensusMessage> {
        self.did
            .iter()
            .filter_map(|d| match d {
                Did::Publish(m) => Some(m.clone()),
                _ => None,
            })
            .collect()
    }
}

impl Host for TestHost {
    type Peer = u8;
    type Error = TestError;

    fn validity(&mut self, _block: &Block) -> Validity {
        Validity::Valid
    }

    fn log_input(&mut self, height: Height, record: Vec<u8>) -> Result<(), TestError> {
        let record = WalRecord::from_bytes(&record).unwrap();
        assert_eq!(record.height(), height);
        self.did.push(Did::Log(record));
        Ok(())
    }

    fn sign_vote(
        &mut self,
        vote: Vote,
        _replaying: bool,
    ) -> Result<Option<ConsensusMessage>, TestError> {
        let bytes = vote.sign_bytes(self.chain.chain_id());
        let Some(signature) = self.sign(Hrs::of_vote(&vote), bytes) else {
            return Ok(None);
        };
        let message = ConsensusMessage::Vote(SignedVote { vote, signature });
        // The node's signer logs its signed message to the WAL before it may leave the process.
        self.did.push(Did::Log(WalRecord::Message(message.clone())));
        Ok(Some(message))
    }

    fn sign_proposal(
        &mut self,
        proposal: Proposal,
        block: Block,
        _replaying: bool,
    ) -> Result<Option<ConsensusMessage>, TestError> {
        let bytes = proposal.sign_bytes(self.chain.chain_id());
        let Some(signature) = self.sign(Hrs::of_proposal(&proposal), bytes) else {
            return Ok(None);
        };
        let signed = SignedProposal {
            proposal,
            signature,
        };
        let message =
            ConsensusMessage::Proposal(basalt_consensus::types::ProposalMessage { signed, block });
        self.did.push(Did::Log(WalRecord::Message(message.clone())));
        Ok(Some(message))
    }

    fn publish_own(&mut self, message: &ConsensusMessage) -> Result<(), TestError> {
        self.did.push(Did::Publish(message.clone()));
        Ok(())
    }

    fn publish_evidence(&mut self, message: &ConsensusMessage) -> Result<(), TestError> {
        self.did.push(Did::Publish(message.clone()));
        Ok(())
    }

    fn schedule_timeout(&mut self, height: Height, timeout: Timeout) {
        self.did.push(Did::Timeout(height, timeout));
    }

    fn schedule_start(&mut self, height: Height) {
        self.did.push(Did::Start(height));
    }

    fn wait_for_txs(&mut self, _height: Height) -> bool {
        self.no_empty_blocks && !self.chain.needs_proof_block() && self.mempool == 0
    }

    fn schedule_empty_block(&mut self, height: Height) {
        self.did.push(Did::EmptyBlockDue(height));
    }

    fn build_block(
        &mut self,
        height: Height,
        round: Round,
        evidence: Vec<DuplicateVoteEvidence>,
        complete_last_commit: &dyn Fn(&Commit) -> Commit,
    ) -> Result<Option<Block>, TestError> {
        self.did.push(Did::Build(height, round));
        let proposer = self.key.public_key().address();
        Ok(Some(
            self.chain
                .build_block(proposer, 1_000, Vec::new(), evidence, complete_last_commit)
                .unwrap(),
        ))
    }

    fn commit(
        &mut self,
        _round: Round,
        block: Block,
        commit: Commit,
        _syncing: bool,
    ) -> Result<(), TestError> {
        self.did.push(Did::Commit(block.height()));
        self.chain
            .advance(block, commit, self.next_app_hash, Hash::ZERO, &[])
            .expect("no validator updates");
        Ok(())
    }

    fn next_height(&self) -> Height {
        self.chain.next_height()
    }

    fn validators_at(&mut self, height: Height) -> ValidatorSet {
        self.chain.validators_at(height.0)
    }

    fn check_evidence(
        &mut self,
        evidence: &DuplicateVoteEvidence,
        height: u64,
    ) -> Result<(), EvidenceRefused> {
        self.chain.check_evidence(evidence, height)
    }

    fn peer_claims(&mut self, peer: &u8, latest: u64, _syncing: bool) {
        self.did.push(Did::Claim(*peer, latest));
    }

    fn detected(&mut self, _evidence: &DuplicateVoteEvidence) {}

    fn settled(&mut self, _engine: &Engine, _syncing: bool) {}

    fn wants_consensus_events(&self) -> bool {
        true
    }

    fn consensus_event(&mut self, event: ConsensusEvent) {
        self.events.push(event);
    }
}

fn chain_id() -> ChainId {
    ChainId::new("core-test").unwrap()
}

/// Four validators of equal power and their keys in the set's order (`keys[i]` signs as index `i`).
fn set_and_keys() -> (ValidatorSet, Vec<PrivateKey>) {
    let keys: Vec<PrivateKey> = (1..=4u8).map(|i| PrivateKey::from_seed(&[i; 32])).collect();
    let set = ValidatorSet::new(keys.iter().map(|k| (k.public_key(), 10)).collect()).unwrap();
    let ordered = set
        .validators()
        .iter()
        .map(|v| {
            keys.iter()
                .find(|k| k.public_key() == v.public_key)
                .unwrap()
                .clone()
        })
        .collect();
    (set, ordered)
}

/// The chain before its first block.
fn fresh_chain() -> ChainState {
    let (set, _) = set_and_keys();
    ChainState::new(
        chain_id(),
        1,
        0,
        Arc::new(SetHistory::new(1, set)),
        0,
        None,
        Hash::ZERO,
        Hash::ZERO,
    )
}

/// A node that is validator `me` at height 1, its host and the keys of all four validators.
fn node(me: usize) -> (DriverCore<u8>, TestHost, Vec<PrivateKey>) {
    let (_, keys) = set_and_keys();
    let host = TestHost {
        chain: fresh_chain(),
        key: keys[me].clone(),
        last_signed: LastSignState::default(),
        fresh_signatures: 0,
        did: Vec::new(),
        events: Vec::new(),
        no_empty_blocks: false,
        mempool: 0,
        next_app_hash: Hash::ZERO,
    };
    let core = DriverCore::new(engine_for(&host));
    (core, host, keys)
}

fn engine_for(host: &TestHost) -> Engine {
    let height = host.chain.next_height();
    Engine::new(
        chain_id(),
        EngineConfig::default(),
        Some(host.key.public_key().address()),
        height,
        host.chain.validators_at(height.0),
        Some(host.chain.validators_at(height.0 + 1)),
    )
    .unwrap()
}

/// The index of round 0's proposer at height 1.
fn proposer() -> usize {
    let (set, _) = set_and_keys();
    set.proposer_for_round(Round(0)).0 as usize
}

fn vote(
    keys: &[PrivateKey],
    index: usize,
    vote_type: VoteType,
    height: u64,
    block_id: Option<BlockId>,
) -> ConsensusMessage {
    let vote = Vote {
        vote_type,
        height: Height(height),
        round: Round(0),
        block_id,
        validator_index: ValidatorIndex(u32::try_from(index).unwrap()),
    };
    let signature = keys[index].sign(&vote.sign_bytes(&chain_id()));
    ConsensusMessage::Vote(SignedVote { vote, signature })
}

/// The same vote with its signature made by the wrong key: a forgery anyone can detect.
fn forged(keys: &[PrivateKey], index: usize, height: u64) -> ConsensusMessage {
    let ConsensusMessage::Vote(mut signed) = vote(keys, index, VoteType::Prevote, height, None)
    else {
        unreachable!()
    };
    signed.signature = keys[(index + 1) % keys.len()].sign(&signed.vote.sign_bytes(&chain_id()));
    ConsensusMessage::Vote(signed)
}

const ACCEPT: Judgement = Judgement::ACCEPT;
const IGNORE: Judgement = Judgement::IGNORE;

fn not_proposer() -> usize {
    (proposer() + 1) % 4
}

/// Issue 14, hole 2: on 9496b9c a message of any other height was accepted unchecked (`Ok(vec![])`),
/// so it was forwarded to the mesh, buffered and written to the WAL — junk a peer made up, and peers at
/// that height then banned the honest forwarder. Now: a message the node cannot judge is ignored (not
/// forwarded, not logged, not punished); a next-height message is checked against the next height's set
/// before it is kept, logged or forwarded, and a forged one is the sender's offence.
#[test]
fn messages_of_other_heights_are_checked_before_they_are_logged_or_forwarded() {
    let me = not_proposer();
    let (mut core, mut host, keys) = node(me);
    let engine = engine_for(&host);
    core.start(&mut host, engine, Vec::new()).unwrap();
    host.did.clear();
    let peer = u8::try_from(proposer()).unwrap();
    let other = (me + 2) % 4;

    // Far heights: signed or forged, the node cannot judge them. Ignored, nothing logged.
    for message in [
        vote(&keys, other, VoteType::Prevote, 5, None),
        forged(&keys, other, 5),
        vote(&keys, other, VoteType::Prevote, u64::MAX, None),
    ] {
        assert_eq!(core.on_message(&mut host, &peer, message).unwrap(), IGNORE);
    }
    assert_eq!(host.did, Vec::new());

    // The next height: a forgery is refused as misbehaviour, a valid vote is kept and logged.
    let judgement = core
        .on_message(&mut host, &peer, forged(&keys, other, 2))
        .unwrap();
    assert_eq!(judgement.verdict, Verdict::Reject);
    assert_eq!(judgement.offence, Some(Misbehaviour::BadSignature));
    assert_eq!(host.did, Vec::new());
    let next = vote(&keys, other, VoteType::Prevote, 2, None);
    assert_eq!(
        core.on_message(&mut host, &peer, next.clone()).unwrap(),
        ACCEPT
    );
    assert_eq!(host.did, vec![Did::Log(WalRecord::Message(next))]);

    // The current height: a forgery is the sender's offence and never reaches the WAL.
    host.did.clear();
    let judgement = core
        .on_message(&mut host, &peer, forged(&keys, other, 1))
        .unwrap();
    assert_eq!(judgement.offence, Some(Misbehaviour::BadSignature));
    assert_eq!(host.did, Vec::new());
}

/// Issue 14, hole 5: on 9496b9c a Status saying "1–2 heights behind" made every node broadcast its last
/// block and commit to the whole mesh. Now a Status is a hint about its sender: its claim goes to block
/// sync and its position to re-gossip; nothing is published, forwarded or logged, whatever it says.
#[test]
fn a_status_is_recorded_for_its_sender_and_never_answered_to_the_mesh() {
    let (mut core, mut host, _) = node(not_proposer());
    let engine = engine_for(&host);
    core.start(&mut host, engine, Vec::new()).unwrap();
    host.did.clear();
    for (height, round) in [(0, 0), (1, 3), (2, 0), (u64::MAX, u32::MAX)] {
        let status = ConsensusMessage::Status {
            height: Height(height),
            round: Round(round),
        };
        assert_eq!(core.on_message(&mut host, &7, status).unwrap(), IGNORE);
    }
    assert_eq!(
        host.did,
        vec![
            Did::Claim(7, 0),
            Did::Claim(7, 0),
            Did::Claim(7, 1),
            Did::Claim(7, u64::MAX - 1)
        ]
    );
}

/// Issue 14, hole 1: evidence naming a height far beyond ours is refused before any validator set is
/// looked up (the chain's height test), ignored rather than punished (we cannot judge it), and not kept.
#[test]
fn evidence_of_a_far_height_is_ignored_and_not_kept() {
    let (mut core, mut host, keys) = node(not_proposer());
    let engine = engine_for(&host);
    core.start(&mut host, engine, Vec::new()).unwrap();
    host.did.clear();
    let ConsensusMessage::Vote(a) = vote(&keys, 1, VoteType::Prevote, 1 << 62, None) else {
        unreachable!()
    };
    let block = Some(BlockId {
        hash: Hash([9; 32]),
    });
    let ConsensusMessage::Vote(b) = vote(&keys, 1, VoteType::Prevote, 1 << 62, block) else {
        unreachable!()
    };
    let evidence = DuplicateVoteEvidence::new(a, b).unwrap();
    let judgement = core
        .on_message(&mut host, &3, ConsensusMessage::Evidence(evidence))
        .unwrap();
    assert_eq!(judgement, IGNORE);
    assert!(core.evidence().is_empty());
    assert_eq!(host.did, Vec::new());
}

/// One height end to end as the proposer: the block is logged before the proposal is signed, every own
/// message is logged before it is sent, and the decision is committed before the next height is
/// scheduled. Then a restart replays the WAL: the signer is asked again and hands back the same
/// signatures — nothing is signed anew and no second block is built.
#[test]
fn a_proposer_logs_before_it_sends_and_replay_signs_nothing_new() {
    let me = proposer();
    let (mut core, mut host, keys) = node(me);
    let engine = engine_for(&host);
    core.start(&mut host, engine, Vec::new()).unwrap();
    let published = host.published();
    let [ConsensusMessage::Proposal(proposal), ConsensusMessage::Vote(prevote)] = &published[..]
    else {
        panic!("expected our proposal and prevote, got {published:?}");
    };
    let block_id = *proposal.signed.proposal.block_id();
    assert_eq!(prevote.vote.block_id, Some(block_id));
    let built = host
        .did
        .iter()
        .position(|d| *d == Did::Build(Height(1), Round(0)))
        .expect("our block built");
    assert!(matches!(
        host.did[built + 1],
        Did::Log(WalRecord::ProposeBlock { .. })
    ));

    // Two more prevotes make a polka: we precommit. Two more precommits decide.
    let others: Vec<usize> = (0..4).filter(|i| *i != me).collect();
    for &i in &others[..2] {
        let prevote = vote(&keys, i, VoteType::Prevote, 1, Some(block_id));
        assert_eq!(core.on_message(&mut host, &1, prevote).unwrap(), ACCEPT);
    }
    for &i in &others[..2] {
        let precommit = vote(&keys, i, VoteType::Precommit, 1, Some(block_id));
        assert_eq!(core.on_message(&mut host, &1, precommit).unwrap(), ACCEPT);
    }
    let commit_at = host
        .did
        .iter()
        .position(|d| *d == Did::Commit(Height(1)))
        .expect("height 1 committed");
    assert_eq!(host.did.last(), Some(&Did::Start(Height(2))));
    assert!(commit_at < host.did.len() - 1);
    let (_, commit) = host.chain.last().unwrap();
    let signed = commit
        .signatures
        .iter()
        .filter(|s| matches!(s, CommitSig::ForBlock(_)))
        .count();
    assert!(signed >= 3);

    // Every message we sent was in the WAL before it left, after the inputs that led to it.
    for (at, did) in host.did.iter().enumerate() {
        if let Did::Publish(message) = did {
            let logged = host.did[..at]
                .iter()
                .any(|d| *d == Did::Log(WalRecord::Message(message.clone())));
            assert!(logged, "sent before it was logged: {message:?}");
        }
    }
    let signatures = host.fresh_signatures;
    assert_eq!(signatures, 3, "proposal, prevote, precommit");

    // Restarts before the commit reached the store: the same height, its WAL replayed — once cut
    // just after our precommit (the crash came before the others' precommits), once whole.
    let records: Vec<WalRecord> = host.wal();
    let ours = records
        .iter()
        .position(|r| {
            matches!(r, WalRecord::Message(ConsensusMessage::Vote(v))
                if v.vote.vote_type == VoteType::Precommit
                    && v.vote.validator_index.0 as usize == me)
        })
        .expect("our precommit is in the WAL");
    for cut in [ours + 1, records.len()] {
        host.chain = fresh_chain();
        host.did.clear();
        let mut restarted = DriverCore::new(engine_for(&host));
        let engine = engine_for(&host);
        restarted
            .start(&mut host, engine, records[..cut].to_vec())
            .unwrap();
        assert_eq!(host.fresh_signatures, signatures, "replay signed anew");
        assert!(!host.did.iter().any(|d| matches!(d, Did::Build(..))));
        let committed = host.did.contains(&Did::Commit(Height(1)));
        assert_eq!(committed, cut == records.len());
        if !committed {
            // Our messages from before the restart are re-gossiped like new ones.
            let own = restarted.own_messages();
            assert!(own.contains(&ConsensusMessage::Vote(prevote.clone())));
            assert_eq!(own.len(), 3, "proposal, prevote and precommit: {own:?}");
        }
    }
}

/// A validator that is not the proposer prevotes nil when `timeout_propose` fires, and the timeout is in
/// the WAL before the vote is signed; a timeout of another height is dropped.
#[test]
fn a_timeout_is_logged_before_the_vote_it_causes() {
    let (mut core, mut host, _) = node(not_proposer());
    let engine = engine_for(&host);
    core.start(&mut host, engine, Vec::new()).unwrap();
    let Some(Did::Timeout(height, timeout)) = host
        .did
        .iter()
        .find(|d| matches!(d, Did::Timeout(..)))
        .cloned()
    else {
        panic!("no propose timeout scheduled: {:?}", host.did);
    };
    host.did.clear();
    core.timeout(&mut host, Height(7), timeout).unwrap();
    assert_eq!(host.did, Vec::new());
    core.timeout(&mut host, height, timeout).unwrap();
    assert_eq!(
        host.did.first(),
        Some(&Did::Log(WalRecord::Timeout { height, timeout }))
    );
    let published = host.published();
    let [ConsensusMessage::Vote(nil)] = &published[..] else {
        panic!("expected a nil prevote, got {published:?}");
    };
    assert_eq!(nil.vote.block_id, None);
}

/// The `tm.event` names of the events announced, in order.
fn event_names(host: &TestHost) -> Vec<&'static str> {
    host.events.iter().map(ConsensusEvent::name).collect()
}

/// Issue 15, item 6: a height as a validator that is not the proposer, announced as CometBFT announces
/// it — the complete proposal, each new vote once (ours included, with the voter's address), the steps,
/// the polka with the lock and the valid block, the commit step. A copy of a known vote is no news.
#[test]
fn a_height_is_announced_with_cometbft_consensus_events() {
    let me = not_proposer();
    let (proposer_core, proposal) = {
        let (mut core, mut host, _) = node(proposer());
        let engine = engine_for(&host);
        core.start(&mut host, engine, Vec::new()).unwrap();
        let proposal = host.published().into_iter().next().unwrap();
        (core, proposal)
    };
    drop(proposer_core);
    let ConsensusMessage::Proposal(p) = &proposal else {
        panic!("expected a proposal, got {proposal:?}")
    };
    let block_id = *p.signed.proposal.block_id();
    let (mut core, mut host, keys) = node(me);
    let engine = engine_for(&host);
    core.start(&mut host, engine, Vec::new()).unwrap();
    host.events.clear();
    let at = |round: u32, step: RoundStep| RoundState {
        height: 1,
        round,
        step,
    };

    assert_eq!(
        core.on_message(&mut host, &0, proposal.clone()).unwrap(),
        ACCEPT
    );
    assert_eq!(
        event_names(&host),
        ["CompleteProposal", "NewRoundStep", "Vote"]
    );
    assert_eq!(
        host.events[0],
        ConsensusEvent::CompleteProposal {
            state: at(0, RoundStep::Propose),
            block: block_id.hash,
        }
    );
    assert_eq!(
        host.events[1].round_state(),
        Some(at(0, RoundStep::Prevote))
    );
    let (set, _) = set_and_keys();
    let ConsensusEvent::Vote {
        vote: own,
        validator,
    } = &host.events[2]
    else {
        unreachable!()
    };
    assert_eq!(own.vote.validator_index.0 as usize, me, "our own prevote");
    assert_eq!(own.vote.block_id, Some(block_id));
    assert_eq!(
        *validator,
        set.get(own.vote.validator_index).unwrap().address
    );
    // The proposal again is no news.
    host.events.clear();
    core.on_message(&mut host, &0, proposal).unwrap();
    assert_eq!(event_names(&host), Vec::<&str>::new());

    // Two more prevotes for the block: a polka, and we lock, note the valid block and precommit.
    let others: Vec<usize> = (0..4).filter(|i| *i != me).collect();
    let first = vote(&keys, others[0], VoteType::Prevote, 1, Some(block_id));
    core.on_message(&mut host, &0, first.clone()).unwrap();
    assert_eq!(event_names(&host), ["Vote"]);
    assert_eq!(core.on_message(&mut host, &0, first).unwrap(), ACCEPT);
    assert_eq!(
        event_names(&host),
        ["Vote"],
        "a copy is not announced again"
    );
    host.events.clear();
    let second = vote(&keys, others[1], VoteType::Prevote, 1, Some(block_id));
    core.on_message(&mut host, &0, second).unwrap();
    assert_eq!(
        event_names(&host),
        [
            "Vote",
            "NewRoundStep",
            "Polka",
            "Lock",
            "ValidBlock",
            "Vote"
        ]
    );
    for event in &host.events[1..5] {
        assert_eq!(event.round_state(), Some(at(0, RoundStep::Precommit)));
    }

    // Two precommits decide the block: the commit step.
    host.events.clear();
    for &i in &others[..2] {
        let precommit = vote(&keys, i, VoteType::Precommit, 1, Some(block_id));
        core.on_message(&mut host, &0, precommit).unwrap();
    }
    assert_eq!(event_names(&host), ["Vote", "Vote", "NewRoundStep"]);
    assert_eq!(host.events[2].round_state(), Some(at(0, RoundStep::Commit)));

    // The next height starts with a new round and its proposer.
    host.events.clear();
    core.start_height(&mut host, Height(2)).unwrap();
    let ConsensusEvent::NewRound { state, proposer } = &host.events[0] else {
        panic!("expected NewRound first, got {:?}", host.events);
    };
    assert_eq!(
        (state.height, state.round, state.step),
        (2, 0, RoundStep::NewRound)
    );
    let set = host.chain.validators_at(2);
    let index = set.proposer_for_round(Round(0));
    assert_eq!(*proposer, (set.get(index).unwrap().address, index.0));
}

/// Timeouts are announced only when they count (the current round's timeout of the current step), a
/// polka for nil is a polka without a lock, and the precommit wait and the next round are announced.
#[test]
fn timeouts_and_nil_polkas_are_announced_when_they_count() {
    let me = not_proposer();
    let (mut core, mut host, keys) = node(me);
    let engine = engine_for(&host);
    core.start(&mut host, engine, Vec::new()).unwrap();
    let timeouts: Vec<Timeout> = host
        .did
        .iter()
        .filter_map(|d| match d {
            Did::Timeout(_, t) => Some(*t),
            _ => None,
        })
        .collect();
    let [propose] = timeouts[..] else {
        panic!("expected one propose timeout, got {timeouts:?}");
    };
    host.events.clear();
    let at = |step: RoundStep| RoundState {
        height: 1,
        round: 0,
        step,
    };

    core.timeout(&mut host, Height(1), propose).unwrap();
    assert_eq!(
        event_names(&host),
        ["TimeoutPropose", "NewRoundStep", "Vote"]
    );
    assert_eq!(host.events[0].round_state(), Some(at(RoundStep::Propose)));
    // The same timeout again: the propose step is over, no event.
    host.events.clear();
    core.timeout(&mut host, Height(1), propose).unwrap();
    assert_eq!(event_names(&host), Vec::<&str>::new());

    // Prevotes for nil from two others: a polka for nil, we precommit nil, nothing is locked.
    let others: Vec<usize> = (0..4).filter(|i| *i != me).collect();
    for &i in &others[..2] {
        core.on_message(&mut host, &0, vote(&keys, i, VoteType::Prevote, 1, None))
            .unwrap();
    }
    let names = event_names(&host);
    assert_eq!(names, ["Vote", "Vote", "NewRoundStep", "Polka", "Vote"]);
    assert_eq!(host.events[3].round_state(), Some(at(RoundStep::Precommit)));

    // Precommits for nil from two others: +2/3 precommitted something, the precommit wait starts.
    host.events.clear();
    host.did.clear();
    for &i in &others[..2] {
        core.on_message(&mut host, &0, vote(&keys, i, VoteType::Precommit, 1, None))
            .unwrap();
    }
    assert_eq!(event_names(&host), ["Vote", "Vote", "NewRoundStep"]);
    assert_eq!(
        host.events[2].round_state(),
        Some(at(RoundStep::PrecommitWait))
    );
    let precommit = host
        .did
        .iter()
        .find_map(|d| match d {
            Did::Timeout(_, t) if t.kind == TimeoutKind::Precommit => Some(*t),
            _ => None,
        })
        .expect("precommit timeout scheduled");

    // It fires: a wait timeout, then round 1.
    host.events.clear();
    core.timeout(&mut host, Height(1), precommit).unwrap();
    let names = event_names(&host);
    assert_eq!(names[..3], ["TimeoutWait", "NewRound", "NewRoundStep"]);
    assert_eq!(
        host.events[0].round_state(),
        Some(at(RoundStep::PrecommitWait))
    );
    let ConsensusEvent::NewRound { state, .. } = &host.events[1] else {
        unreachable!()
    };
    assert_eq!((state.round, state.step), (1, RoundStep::NewRound));
}

/// Nothing is announced while the WAL is replayed (it was announced before the restart) or while block
/// syncing.
#[test]
fn replay_announces_nothing() {
    let me = not_proposer();
    let (mut core, mut host, _) = node(me);
    let engine = engine_for(&host);
    core.start(&mut host, engine, Vec::new()).unwrap();
    let Some(Did::Timeout(height, timeout)) = host
        .did
        .iter()
        .find(|d| matches!(d, Did::Timeout(..)))
        .cloned()
    else {
        panic!("no propose timeout scheduled");
    };
    core.timeout(&mut host, height, timeout).unwrap();
    assert!(!host.events.is_empty());
    let records = host.wal();
    host.events.clear();
    let mut restarted = DriverCore::new(engine_for(&host));
    let engine = engine_for(&host);
    restarted.start(&mut host, engine, records).unwrap();
    assert_eq!(event_names(&host), Vec::<&str>::new());
}

/// Round 0's proposal at height 1, as its proposer publishes it (the message, and its contents).
fn round_zero_proposal() -> (ConsensusMessage, basalt_consensus::types::ProposalMessage) {
    let (mut core, mut host, _) = node(proposer());
    let engine = engine_for(&host);
    core.start(&mut host, engine, Vec::new()).unwrap();
    let message = host.published().into_iter().next().unwrap();
    let ConsensusMessage::Proposal(first) = &message else {
        panic!("expected a proposal, got {message:?}")
    };
    let first = first.clone();
    (message, first)
}

/// A vote of `round`, signed by validator `index`.
fn vote_in(
    keys: &[PrivateKey],
    index: usize,
    vote_type: VoteType,
    round: u32,
    block_id: Option<BlockId>,
) -> ConsensusMessage {
    let vote = Vote {
        vote_type,
        height: Height(1),
        round: Round(round),
        block_id,
        validator_index: ValidatorIndex(u32::try_from(index).unwrap()),
    };
    let signature = keys[index].sign(&vote.sign_bytes(&chain_id()));
    ConsensusMessage::Vote(SignedVote { vote, signature })
}

/// Locked on a block in round 0, a node that sees a new polka for the same block in round 1 moves its
/// lock: `Relock`, not `Lock`.
#[test]
fn a_new_polka_for_the_locked_block_is_a_relock() {
    let (proposal, first) = round_zero_proposal();
    let block = first.block.clone();
    let block_id = block.id();
    let me = not_proposer();
    let (mut core, mut host, keys) = node(me);
    let engine = engine_for(&host);
    core.start(&mut host, engine, Vec::new()).unwrap();
    let others: Vec<usize> = (0..4).filter(|i| *i != me).collect();

    // Round 0: the proposal, a polka for it (we lock), then nil precommits: round 1 after the wait.
    core.on_message(&mut host, &0, proposal).unwrap();
    for &i in &others[..2] {
        let prevote = vote_in(&keys, i, VoteType::Prevote, 0, Some(block_id));
        core.on_message(&mut host, &0, prevote).unwrap();
    }
    assert!(event_names(&host).contains(&"Lock"));
    for &i in &others[..2] {
        let precommit = vote_in(&keys, i, VoteType::Precommit, 0, None);
        core.on_message(&mut host, &0, precommit).unwrap();
    }
    let wait = host
        .did
        .iter()
        .rev()
        .find_map(|d| match d {
            Did::Timeout(_, t) if t.kind == TimeoutKind::Precommit => Some(*t),
            _ => None,
        })
        .expect("precommit timeout scheduled");
    core.timeout(&mut host, Height(1), wait).unwrap();
    assert_eq!(core.engine().round(), Round(1));

    // Round 1: the block again, with its round-0 proof of lock (re-proposed by round 1's proposer, which
    // may be this node), and a new polka for it.
    let (set, _) = set_and_keys();
    let next_proposer = set.proposer_for_round(Round(1)).0 as usize;
    if next_proposer != me {
        let proposal = Proposal::new(Height(1), Round(1), Some(Round(0)), block_id).unwrap();
        let signature = keys[next_proposer].sign(&proposal.sign_bytes(&chain_id()));
        let message = ConsensusMessage::Proposal(basalt_consensus::types::ProposalMessage {
            signed: SignedProposal {
                proposal,
                signature,
            },
            block,
        });
        assert_eq!(core.on_message(&mut host, &0, message).unwrap(), ACCEPT);
    }
    host.events.clear();
    for &i in &others[..2] {
        let prevote = vote_in(&keys, i, VoteType::Prevote, 1, Some(block_id));
        core.on_message(&mut host, &0, prevote).unwrap();
    }
    let names = event_names(&host);
    assert!(names.contains(&"Polka"), "{names:?}");
    assert!(names.contains(&"Relock"), "{names:?}");
    assert!(!names.contains(&"Lock"), "{names:?}");
    let relock = host
        .events
        .iter()
        .find(|e| e.name() == "Relock")
        .unwrap()
        .round_state()
        .unwrap();
    assert_eq!((relock.round, relock.step), (1, RoundStep::Precommit));
}

/// Byzantine simulation seed 1005743: a node that joined a height by replaying next-height records
/// signed its round-0 votes during that replay, so the WAL held them *after* the round-1 records that
/// replay had already fed. A later restart replayed the log in order: the signer (by then past round 2)
/// refused to hand the round-0 votes back, the engine skipped to round 1 before it saw them, never
/// locked, and asked to prevote round 2's other block against the lock it had signed. Now a replay hands
/// the engine its own recorded messages when it asks for them, wherever they sit in the log.
#[test]
fn a_replay_restores_a_lock_whose_votes_were_logged_after_later_rounds() {
    let (proposal, first) = round_zero_proposal();
    let block_id = first.block.id();
    let (set, _) = set_and_keys();
    let me = (0..4)
        .find(|i| {
            [0, 1, 2]
                .iter()
                .all(|r| set.proposer_for_round(Round(*r)).0 as usize != *i)
        })
        .expect("a validator proposing none of rounds 0-2");
    let (mut core, mut host, keys) = node(me);
    let others: Vec<usize> = (0..4).filter(|i| *i != me).collect();

    // Joining the height: its records, logged while the node was a height behind, replayed at once.
    // The proposal and two prevotes for it (with ours, a polka: we lock), then two nil prevotes of
    // round 1 (a third of the power: we move to round 1).
    let mut joined = vec![WalRecord::Message(proposal.clone())];
    for &i in &others[..2] {
        let prevote = vote_in(&keys, i, VoteType::Prevote, 0, Some(block_id));
        joined.push(WalRecord::Message(prevote));
    }
    for &i in &others[..2] {
        joined.push(WalRecord::Message(vote_in(
            &keys,
            i,
            VoteType::Prevote,
            1,
            None,
        )));
    }
    host.did = joined.iter().cloned().map(Did::Log).collect();
    let engine = engine_for(&host);
    core.start(&mut host, engine, joined).unwrap();
    let locked = |core: &DriverCore<u8>| core.engine().driver().state().locked.clone();
    assert!(locked(&core).is_some(), "the polka of round 0 locks");
    assert_eq!(core.engine().round(), Round(1));
    // Our round-0 votes were signed during that replay: logged after the round-1 records.
    let wal = host.wal();
    let own_prevote = wal
        .iter()
        .position(|r| {
            matches!(r, WalRecord::Message(ConsensusMessage::Vote(v))
            if v.vote.validator_index.0 as usize == me && v.vote.round == Round(0))
        })
        .unwrap();
    assert!(
        own_prevote > 4,
        "logged after the round-1 records: {own_prevote}"
    );

    // Round 1 runs out (nil polka, nil precommits); round 2 proposes another block.
    let fire = |core: &mut DriverCore<u8>, host: &mut TestHost, kind: TimeoutKind| {
        let timeout = host
            .did
            .iter()
            .rev()
            .find_map(|d| match d {
                Did::Timeout(_, t) if t.kind == kind => Some(*t),
                _ => None,
            })
            .unwrap();
        core.timeout(host, Height(1), timeout).unwrap();
    };
    fire(&mut core, &mut host, TimeoutKind::Propose);
    for &i in &others[..2] {
        let precommit = vote_in(&keys, i, VoteType::Precommit, 1, None);
        core.on_message(&mut host, &0, precommit).unwrap();
    }
    fire(&mut core, &mut host, TimeoutKind::Precommit);
    assert_eq!(core.engine().round(), Round(2));
    let other_block = {
        let mut header = first.block.header().clone();
        header.time_ms += 1;
        Block::new(header, Vec::new(), Vec::new(), None).unwrap()
    };
    assert_ne!(other_block.id(), block_id);
    let proposer_2 = set.proposer_for_round(Round(2)).0 as usize;
    let proposal_2 = Proposal::new(Height(1), Round(2), None, other_block.id()).unwrap();
    let signature = keys[proposer_2].sign(&proposal_2.sign_bytes(&chain_id()));
    let message = ConsensusMessage::Proposal(basalt_consensus::types::ProposalMessage {
        signed: SignedProposal {
            proposal: proposal_2,
            signature,
        },
        block: other_block,
    });
    core.on_message(&mut host, &0, message).unwrap();
    let prevote_2 = host.published().into_iter().rev().find_map(|m| match m {
        ConsensusMessage::Vote(v) if v.vote.round == Round(2) => Some(v),
        _ => None,
    });
    assert_eq!(
        prevote_2.map(|v| v.vote.block_id),
        Some(None),
        "locked on round 0's block: nil"
    );

    // Restart: the whole WAL replayed in order. The lock comes back and nothing conflicting is asked.
    let records = host.wal();
    let signed_before = host.fresh_signatures;
    let mut restarted = DriverCore::new(engine_for(&host));
    let engine = engine_for(&host);
    let before = host.last_signed.clone();
    restarted.start(&mut host, engine, records).unwrap();
    assert_eq!(host.fresh_signatures, signed_before, "replay signed anew");
    assert_eq!(
        host.last_signed, before,
        "the signer was asked for something else"
    );
    assert_eq!(locked(&restarted), locked(&core));
    assert_eq!(restarted.engine().round(), Round(2));
}

/// A peer re-sending a vote we hold (re-gossip, or an attacker replaying valid votes) gets it forwarded
/// as before, but the WAL keeps one record of it: copies change nothing, and must not grow the log.
#[test]
fn an_exact_copy_of_a_held_message_is_forwarded_but_logged_once() {
    let (proposal, first) = round_zero_proposal();
    let block_id = first.block.id();
    let me = not_proposer();
    let (mut core, mut host, keys) = node(me);
    let engine = engine_for(&host);
    core.start(&mut host, engine, Vec::new()).unwrap();
    let other = (0..4).find(|i| *i != me && *i != proposer()).unwrap();
    let prevote = vote_in(&keys, other, VoteType::Prevote, 0, Some(block_id));
    for _ in 0..3 {
        assert_eq!(
            core.on_message(&mut host, &1, proposal.clone()).unwrap(),
            ACCEPT
        );
        assert_eq!(
            core.on_message(&mut host, &1, prevote.clone()).unwrap(),
            ACCEPT
        );
    }
    let logged = |message: &ConsensusMessage| {
        host.wal()
            .iter()
            .filter(|r| **r == WalRecord::Message(message.clone()))
            .count()
    };
    assert_eq!(logged(&proposal), 1);
    assert_eq!(logged(&prevote), 1);
    // The same vote under another signature is no copy: checked, refused, not logged.
    let ConsensusMessage::Vote(mut forged) = prevote.clone() else {
        unreachable!()
    };
    forged.signature = keys[me].sign(&forged.vote.sign_bytes(&chain_id()));
    let judged = core
        .on_message(&mut host, &1, ConsensusMessage::Vote(forged))
        .unwrap();
    assert_eq!(judged.verdict, basalt_p2p::Verdict::Reject);
    assert_eq!(host.wal().len(), 3, "proposal, prevote and our prevote");
}

/// The proposer of height 1 with height 1 decided and committed (leaving `app_hash`), its next height
/// due to start after `timeout_commit`.
fn decided_height_one(
    no_empty_blocks: bool,
    app_hash: Hash,
) -> (DriverCore<u8>, TestHost, Vec<PrivateKey>) {
    let me = proposer();
    let (mut core, mut host, keys) = node(me);
    host.no_empty_blocks = no_empty_blocks;
    host.next_app_hash = app_hash;
    let engine = engine_for(&host);
    core.start(&mut host, engine, Vec::new()).unwrap();
    let Some(ConsensusMessage::Proposal(proposal)) = host.published().into_iter().next() else {
        panic!("expected our proposal");
    };
    let block_id = *proposal.signed.proposal.block_id();
    let others: Vec<usize> = (0..4).filter(|i| *i != me).collect();
    for vote_type in [VoteType::Prevote, VoteType::Precommit] {
        for &i in &others[..2] {
            let v = vote(&keys, i, vote_type, 1, Some(block_id));
            assert_eq!(core.on_message(&mut host, &1, v).unwrap(), ACCEPT);
        }
    }
    assert_eq!(host.did.last(), Some(&Did::Start(Height(2))));
    (core, host, keys)
}

/// `create_empty_blocks = false`: after a block that left the state as it was, the next height waits
/// (no round starts, nothing is built) until the mempool has a transaction; a forged vote for it starts
/// nothing, a validator's verified one starts it; the empty-block interval is asked for once.
#[test]
fn without_empty_blocks_a_height_waits_for_a_transaction_or_a_validator() {
    let (mut core, mut host, keys) = decided_height_one(true, Hash::ZERO);
    core.commit_timeout_elapsed(&mut host, Height(2)).unwrap();
    assert_eq!(core.parked(), Some(Height(2)));
    assert_eq!(core.engine().height(), Height(1));
    assert_eq!(host.did.last(), Some(&Did::EmptyBlockDue(Height(2))));
    // Asked again (a duplicate timer): still waiting, no second interval.
    core.commit_timeout_elapsed(&mut host, Height(2)).unwrap();
    assert_eq!(
        host.did
            .iter()
            .filter(|d| **d == Did::EmptyBlockDue(Height(2)))
            .count(),
        1
    );
    // A forged vote for height 2 is refused and starts nothing.
    let judgement = core.on_message(&mut host, &2, forged(&keys, 1, 2)).unwrap();
    assert_eq!(judgement.verdict, Verdict::Reject);
    assert_eq!(core.parked(), Some(Height(2)));
    // A transaction arrives: height 2 starts (round 0's propose timeout is set).
    host.mempool = 1;
    core.txs_available(&mut host).unwrap();
    assert_eq!(core.parked(), None);
    assert_eq!(core.engine().height(), Height(2));
    assert!(host
        .did
        .iter()
        .any(|d| matches!(d, Did::Timeout(Height(2), _)) || *d == Did::Build(Height(2), Round(0))));

    // Another validator's verified prevote for the waiting height starts it too.
    let (mut core, mut host, keys) = decided_height_one(true, Hash::ZERO);
    core.commit_timeout_elapsed(&mut host, Height(2)).unwrap();
    assert_eq!(core.parked(), Some(Height(2)));
    let other = (proposer() + 1) % 4;
    let prevote = vote(&keys, other, VoteType::Prevote, 2, None);
    assert_eq!(core.on_message(&mut host, &2, prevote).unwrap(), ACCEPT);
    assert_eq!(core.parked(), None);
    assert_eq!(core.engine().height(), Height(2));
}

/// The block after one that changed the state is made without transactions (it carries the new app
/// hash), and with empty blocks on nothing ever waits.
#[test]
fn a_proof_block_and_empty_blocks_start_at_once() {
    let (mut core, mut host, _) = decided_height_one(true, Hash([7; 32]));
    core.commit_timeout_elapsed(&mut host, Height(2)).unwrap();
    assert_eq!(core.parked(), None);
    assert_eq!(core.engine().height(), Height(2));

    let (mut core, mut host, _) = decided_height_one(false, Hash::ZERO);
    core.commit_timeout_elapsed(&mut host, Height(2)).unwrap();
    assert_eq!(core.parked(), None);
    assert_eq!(core.engine().height(), Height(2));
}
