//! Block sync bookkeeping: which peer has which heights, which ranges are in flight, and the fetched blocks
//! waiting to be applied in order. Pure state (no I/O): the driver sends the requests it returns and feeds
//! back the answers, then applies blocks through the consensus engine's `Decision` path, which verifies each
//! commit (+2/3 of the height's validator set, batch-verified).
//!
//! Claims are cheap, serving is not: a peer's claimed height counts only while the peer serves what it
//! claims. A request that fails (timeout, transport error, wrong answer) discredits the peer: its claim is
//! forgotten and its new claims are not believed for a pause that doubles with each failure (up to
//! [`MAX_DISCREDIT`]). A peer that answers "nothing" for a height it claimed is discredited the same way,
//! not reported: a pruning node can lose a height between its Status and our request. So one peer claiming
//! `u64::MAX` costs a node a request now and then, never its place in consensus, and no honest peer is
//! punished for an answer it could not give.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use basalt_consensus::types::{Block, Commit};
use basalt_p2p::{Misbehaviour, PeerId};

/// How long a node in consensus must have reached no new height before it asks a peer that claims later
/// blocks for them (a node merely a moment behind catches up through consensus itself).
pub const PROBE_AFTER_STALL: Duration = Duration::from_secs(1);
/// How long a node in block sync waits for any peer's claim before it joins consensus alone.
pub const SYNC_STARTUP_WAIT: Duration = Duration::from_secs(3);

/// How far past our height fetched blocks may be buffered (bounds memory: ≤ this many blocks).
pub const MAX_BUFFERED_BLOCKS: u64 = 512;
/// How long a peer that failed a request is not believed, after its first failure (doubles per failure).
const FAILED_PEER_PAUSE: Duration = Duration::from_secs(5);
/// Longest time a peer's claims are not believed.
pub const MAX_DISCREDIT: Duration = Duration::from_secs(600);

/// Why a block request got no blocks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestFailed {
    /// The request did not complete (timeout, disconnect, stream error).
    #[error("request failed: {0}")]
    Transport(String),
    /// The peer answered with something other than blocks.
    #[error("the peer answered a block request with another kind of answer")]
    UnexpectedAnswer,
}

/// Block sync tunables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncConfig {
    /// Requests in flight at once (spread over peers).
    pub max_parallel_requests: usize,
    /// Blocks per request.
    pub batch_blocks: u32,
    /// How long a node in consensus must have reached no new height before it asks a peer that claims
    /// later blocks for them (the node: [`PROBE_AFTER_STALL`]).
    pub probe_after_stall: Duration,
    /// How long a node in block sync waits for any peer's claim before it joins consensus alone (the
    /// node: [`SYNC_STARTUP_WAIT`]).
    pub startup_wait: Duration,
}

impl SyncConfig {
    /// The node's block sync: `[blocksync]`'s request limits with the node's waits.
    pub fn new(max_parallel_requests: usize, batch_blocks: u32) -> SyncConfig {
        SyncConfig {
            max_parallel_requests,
            batch_blocks,
            probe_after_stall: PROBE_AFTER_STALL,
            startup_wait: SYNC_STARTUP_WAIT,
        }
    }
}

#[derive(Debug, Default)]
struct PeerState {
    /// Latest height the peer said it has.
    latest: u64,
    /// Oldest height it has, once it said so (a gossiped Status carries no base; a pruning node has
    /// none of the heights below it).
    base: Option<u64>,
    /// Requests to it in flight.
    in_flight: usize,
    /// Its claims are not believed (and it is not asked) before this instant.
    discredited_until: Option<Instant>,
    /// Failed requests so far (the discredit pause doubles with each).
    failures: u32,
}

impl PeerState {
    fn credible(&self, now: Instant) -> bool {
        self.discredited_until.is_none_or(|t| t <= now)
    }
}

/// A request the driver must send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockRequest<P = PeerId> {
    /// To whom.
    pub peer: P,
    /// First height.
    pub from: u64,
    /// Number of blocks.
    pub count: u32,
}

/// The bookkeeping, over any peer identity (libp2p's `PeerId` in the node, an index in the simulation).
#[derive(Debug)]
pub struct BlockSync<P = PeerId> {
    config: SyncConfig,
    peers: BTreeMap<P, PeerState>,
    /// In-flight ranges by first height: (peer, count).
    in_flight: BTreeMap<u64, (P, u32)>,
    /// Fetched blocks by height with the peer that served them.
    ready: BTreeMap<u64, (Block, Commit, P)>,
    /// Round-robin cursor over peers.
    cursor: usize,
}

impl<P: Copy + Ord> BlockSync<P> {
    /// Empty bookkeeping.
    pub fn new(config: SyncConfig) -> BlockSync<P> {
        BlockSync {
            config,
            peers: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            ready: BTreeMap::new(),
            cursor: 0,
        }
    }

    /// A peer reported its stored range (its latest claim replaces the previous one; a `None` base keeps
    /// the one it reported before). Ignored while the peer is discredited.
    pub fn peer_status(&mut self, peer: P, base: Option<u64>, latest: u64, now: Instant) {
        let state = self.peers.entry(peer).or_default();
        if !state.credible(now) {
            return;
        }
        state.discredited_until = None;
        if base.is_some() {
            state.base = base;
        }
        state.latest = latest;
    }

    /// A peer is gone (or banned): forget it and what it was asked.
    pub fn remove_peer(&mut self, peer: &P) {
        self.peers.remove(peer);
        self.in_flight.retain(|_, (p, _)| p != peer);
        self.ready.retain(|_, (_, _, p)| p != peer);
    }

    /// Highest height a peer claims whose claim stands (a discredited peer's claim is reset to 0).
    pub fn max_peer_height(&self) -> u64 {
        self.peers.values().map(|p| p.latest).max().unwrap_or(0)
    }

    /// Peers we know of.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// Peers whose claims stand (not discredited, or their pause is over and they claimed again).
    pub fn credible_peers(&self) -> usize {
        self.peers
            .values()
            .filter(|p| p.discredited_until.is_none())
            .count()
    }

    /// Whether the block at `height` was fetched and waits to be applied.
    pub fn has_ready(&self, height: u64) -> bool {
        self.ready.contains_key(&height)
    }

    /// One request, if none is in flight, for the blocks after `our_height` from a credible peer that
    /// claims them: how a node in consensus checks a claim before acting on it.
    pub fn probe(&mut self, our_height: u64, now: Instant) -> Option<BlockRequest<P>> {
        if !self.in_flight.is_empty() {
            return None;
        }
        self.requests(our_height, now, 1).into_iter().next()
    }

    /// The requests to send now so that heights after `our_height` get fetched.
    pub fn next_requests(&mut self, our_height: u64, now: Instant) -> Vec<BlockRequest<P>> {
        let max_parallel = self.config.max_parallel_requests;
        self.requests(our_height, now, max_parallel)
    }

    fn requests(
        &mut self,
        our_height: u64,
        now: Instant,
        max_parallel: usize,
    ) -> Vec<BlockRequest<P>> {
        // Drop what is already applied.
        self.ready.retain(|h, _| *h > our_height);
        let mut out = Vec::new();
        let target = self.max_peer_height();
        let limit = our_height.saturating_add(MAX_BUFFERED_BLOCKS).min(target);
        let mut next = our_height.saturating_add(1);
        while self.in_flight.len() < max_parallel && next <= limit {
            // Skip heights already fetched or requested.
            if self.ready.contains_key(&next) {
                next += 1;
                continue;
            }
            if let Some((&start, &(_, count))) = self.in_flight.range(..=next).next_back() {
                if start + u64::from(count) > next {
                    next = start + u64::from(count);
                    continue;
                }
            }
            let end_of_gap = self
                .in_flight
                .range(next..)
                .next()
                .map_or(limit, |(&start, _)| start.saturating_sub(1))
                .min(limit);
            let want = (end_of_gap - next + 1).min(u64::from(self.config.batch_blocks));
            let Some(peer) = self.pick_peer(next, now) else {
                break;
            };
            let count = u32::try_from(want).unwrap_or(self.config.batch_blocks);
            self.in_flight.insert(next, (peer, count));
            if let Some(p) = self.peers.get_mut(&peer) {
                p.in_flight += 1;
            }
            out.push(BlockRequest {
                peer,
                from: next,
                count,
            });
            next += u64::from(count);
        }
        out
    }

    /// A peer that has `height`, not paused, least loaded, rotating.
    fn pick_peer(&mut self, height: u64, now: Instant) -> Option<P> {
        let mut candidates: Vec<(&P, &PeerState)> = self
            .peers
            .iter()
            .filter(|(_, p)| {
                p.latest >= height && p.base.is_none_or(|b| b <= height) && p.credible(now)
            })
            .collect();
        if candidates.is_empty() {
            return None;
        }
        // Peers come in key order; a stable sort keeps it among equals.
        candidates.sort_by_key(|(_, p)| p.in_flight);
        let least = candidates[0].1.in_flight;
        let tied: Vec<P> = candidates
            .iter()
            .filter(|(_, p)| p.in_flight == least)
            .map(|(id, _)| **id)
            .collect();
        self.cursor = self.cursor.wrapping_add(1);
        tied.get(self.cursor % tied.len()).copied()
    }

    /// The answer to a request: `Ok(blocks)` or a failure (`Err`, which discredits the peer). Returns the
    /// misbehaviour to punish if the peer provably lied.
    pub fn on_response(
        &mut self,
        request: BlockRequest<P>,
        result: Result<Vec<(Block, Commit)>, RequestFailed>,
        now: Instant,
    ) -> Option<Misbehaviour> {
        if self.in_flight.get(&request.from) == Some(&(request.peer, request.count)) {
            self.in_flight.remove(&request.from);
        }
        let claimed = self.peers.get(&request.peer).map_or(0, |p| p.latest);
        if let Some(p) = self.peers.get_mut(&request.peer) {
            p.in_flight = p.in_flight.saturating_sub(1);
        }
        let blocks = match result {
            Ok(blocks) => blocks,
            Err(_) => {
                self.discredit(&request.peer, now);
                return None;
            }
        };
        if blocks.len() > request.count as usize {
            return Some(Misbehaviour::Other(format!(
                "sent {} blocks for a request of {}",
                blocks.len(),
                request.count
            )));
        }
        for (offset, (block, commit)) in blocks.iter().enumerate() {
            let expected = request.from + offset as u64;
            if block.height().0 != expected || commit.height != block.height() {
                return Some(Misbehaviour::InvalidBlock);
            }
        }
        if blocks.is_empty() && claimed >= request.from {
            // It claimed the height, then served nothing. Not proof of a lie: a pruning node's base moves
            // on after it reported it, so an honest peer can lose a height between its Status and our
            // request. Its claim no longer counts, and it is not believed for a while; nobody is punished.
            self.discredit(&request.peer, now);
        }
        for (block, commit) in blocks {
            let height = block.height().0;
            self.ready.insert(height, (block, commit, request.peer));
        }
        None
    }

    /// Forgets the peer's claim and does not believe new ones for a pause that doubles per failure. A
    /// failed request is not proof of a lie (networks time out), so the peer is not reported.
    fn discredit(&mut self, peer: &P, now: Instant) {
        if let Some(p) = self.peers.get_mut(peer) {
            if !p.credible(now) {
                return; // requests sent before the first failure: one failure, one pause
            }
            p.failures = p.failures.saturating_add(1);
            let pause = FAILED_PEER_PAUSE
                .saturating_mul(1 << p.failures.saturating_sub(1).min(8))
                .min(MAX_DISCREDIT);
            p.discredited_until = Some(now + pause);
            p.latest = 0;
            p.base = None;
        }
        // Its fetched blocks stay: each is verified by its commit when applied.
    }

    /// The fetched block at `height`, if any, removed from the buffer.
    pub fn take(&mut self, height: u64) -> Option<(Block, Commit, P)> {
        self.ready.remove(&height)
    }

    /// In consensus, when a peer claims blocks after `ours` and the node has reached no new height for
    /// `probe_after_stall` (`stalled_for`; new rounds of the same height do not count: a node the others
    /// decided without keeps moving through rounds): one request (one at a time) for them. The answer, if it
    /// holds the next block, moves the node to block sync ([`BlockSync::should_enter_sync`]); a peer that
    /// fails to serve what it claimed loses its claim ([`BlockSync::on_response`]). Claims alone never
    /// take a validator out of consensus; served blocks do.
    pub fn probe_if_stalled(
        &mut self,
        ours: u64,
        stalled_for: Duration,
        now: Instant,
    ) -> Option<BlockRequest<P>> {
        if stalled_for < self.config.probe_after_stall || self.max_peer_height() <= ours {
            return None;
        }
        self.probe(ours, now)
    }

    /// In consensus at `ours`: whether a peer served the block after ours (we are behind, by a height or
    /// by thousands), so the node should catch up by block sync and then rejoin consensus.
    pub fn should_enter_sync(&self, ours: u64) -> bool {
        self.has_ready(ours.saturating_add(1))
    }

    /// In block sync at `ours`, after applying what was ready: whether to rejoin consensus. Yes once
    /// every credible claim is reached, or when no peer's claim stands after `startup_wait` in sync
    /// (`in_sync_for`). Only claims that still stand count: a peer that failed to serve what it
    /// claimed is not waited for, so one peer claiming a huge height cannot keep us out of consensus.
    pub fn caught_up(&self, ours: u64, in_sync_for: Duration) -> bool {
        let heard = self.credible_peers() > 0;
        (heard && ours >= self.max_peer_height())
            || (!heard && in_sync_for >= self.config.startup_wait)
    }

    /// Whether anything is in flight.
    pub fn is_idle(&self) -> bool {
        self.in_flight.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn peer(n: u8) -> PeerId {
        basalt_p2p::peer_id_from_seed(&[n; 32])
    }

    #[test]
    fn requests_cover_the_range_once_across_peers() {
        let mut sync = BlockSync::new(SyncConfig::new(4, 10));
        sync.peer_status(peer(1), Some(1), 35, Instant::now());
        sync.peer_status(peer(2), Some(1), 100, Instant::now());
        let now = Instant::now();
        let reqs = sync.next_requests(0, now);
        assert_eq!(reqs.len(), 4);
        let mut covered: Vec<u64> = reqs
            .iter()
            .flat_map(|r| r.from..r.from + u64::from(r.count))
            .collect();
        covered.sort();
        assert_eq!(covered, (1..=40).collect::<Vec<_>>());
        // Heights above 35 only from the peer that has them.
        for r in &reqs {
            if r.from + u64::from(r.count) - 1 > 35 {
                assert_eq!(r.peer, peer(2));
            }
        }
        // Nothing more while all slots are busy.
        assert!(sync.next_requests(0, now).is_empty());
    }

    /// An empty answer for a claimed height discredits the peer (its claim stops counting) without a
    /// report: a pruning node can lose the height between its Status and the request.
    #[test]
    fn empty_answer_for_a_claimed_height_discredits_without_blame() {
        let mut sync = BlockSync::new(SyncConfig::new(1, 10));
        sync.peer_status(peer(1), Some(1), 50, Instant::now());
        let now = Instant::now();
        let req = sync.next_requests(0, now)[0];
        assert!(sync.on_response(req, Ok(Vec::new()), now).is_none());
        assert_eq!(sync.max_peer_height(), 0);
        assert!(sync.next_requests(0, now).is_empty());
    }

    #[test]
    fn failed_peer_is_paused_and_range_is_re_requested() {
        let mut sync = BlockSync::new(SyncConfig::new(1, 10));
        sync.peer_status(peer(1), Some(1), 50, Instant::now());
        sync.peer_status(peer(2), Some(1), 50, Instant::now());
        let now = Instant::now();
        let first = sync.next_requests(0, now)[0];
        assert!(sync
            .on_response(first, Err(RequestFailed::Transport("timeout".into())), now)
            .is_none());
        let second = sync.next_requests(0, now)[0];
        assert_eq!(second.from, 1);
        assert_ne!(second.peer, first.peer);
    }

    /// Hole 4 of issue 14: on 9496b9c a claim of `u64::MAX` stayed the best height forever (claims were a
    /// running maximum and a failed request only paused the peer), so block sync never caught up and the
    /// validator never rejoined consensus.
    #[test]
    fn a_claim_counts_only_while_the_peer_serves_it() {
        let mut sync = BlockSync::new(SyncConfig::new(4, 10));
        let now = Instant::now();
        let honest = peer(1);
        let liar = peer(2);
        sync.peer_status(honest, Some(1), 20, now);
        sync.peer_status(liar, Some(1), u64::MAX, now);
        assert_eq!(sync.max_peer_height(), u64::MAX);
        // Heights beyond the honest peer are asked of the liar, which does not answer.
        let requests = sync.next_requests(20, now);
        assert!(!requests.is_empty());
        assert!(requests.iter().all(|r| r.peer == liar));
        for r in requests {
            let failed = sync.on_response(r, Err(RequestFailed::Transport("timeout".into())), now);
            assert!(failed.is_none(), "a timeout is not proof of a lie");
        }
        // Its claim is forgotten, and new claims are not believed during the pause.
        assert_eq!(sync.max_peer_height(), 20);
        assert_eq!(sync.credible_peers(), 1);
        sync.peer_status(liar, Some(1), u64::MAX, now + FAILED_PEER_PAUSE / 2);
        assert_eq!(sync.max_peer_height(), 20);
        assert!(sync.next_requests(20, now).is_empty());
        // After the pause it is believed again; a second failure pauses it twice as long.
        let later = now + FAILED_PEER_PAUSE;
        sync.peer_status(liar, Some(1), u64::MAX, later);
        assert_eq!(sync.max_peer_height(), u64::MAX);
        let r = sync.next_requests(20, later)[0];
        sync.on_response(r, Err(RequestFailed::UnexpectedAnswer), later);
        sync.peer_status(liar, Some(1), u64::MAX, later + FAILED_PEER_PAUSE * 3 / 2);
        assert_eq!(sync.max_peer_height(), 20, "second pause is doubled");
        sync.peer_status(liar, Some(1), u64::MAX, later + FAILED_PEER_PAUSE * 2);
        assert_eq!(sync.max_peer_height(), u64::MAX);
    }

    #[test]
    fn the_latest_claim_replaces_an_earlier_one() {
        let mut sync = BlockSync::new(SyncConfig::new(1, 10));
        let now = Instant::now();
        sync.peer_status(peer(1), Some(1), 500, now);
        sync.peer_status(peer(1), Some(1), 40, now);
        assert_eq!(sync.max_peer_height(), 40);
    }

    #[test]
    fn a_probe_is_one_request_at_a_time() {
        let mut sync = BlockSync::new(SyncConfig::new(8, 10));
        let now = Instant::now();
        sync.peer_status(peer(1), Some(1), 100, now);
        let probe = sync.probe(50, now).unwrap();
        assert_eq!((probe.from, probe.peer), (51, peer(1)));
        assert!(sync.probe(50, now).is_none(), "one in flight");
        sync.on_response(probe, Ok(Vec::new()), now);
        // Nothing to probe for at the claimed height.
        assert!(sync.probe(100, now).is_none());
    }

    /// The mode decisions the driver and the simulation share: a probe only after a stall and only for a
    /// claim above ours; block sync only once the next block was served; back to consensus once every
    /// standing claim is reached, or after the start-up wait when none stands.
    #[test]
    fn mode_decisions_follow_served_blocks_not_claims() {
        let mut sync: BlockSync<u8> = BlockSync::new(SyncConfig::new(4, 10));
        let now = Instant::now();
        let stalled = PROBE_AFTER_STALL;
        assert!(
            sync.probe_if_stalled(10, stalled, now).is_none(),
            "no claims"
        );
        sync.peer_status(1, None, u64::MAX, now);
        assert!(
            sync.probe_if_stalled(10, stalled / 2, now).is_none(),
            "progressing: no probe"
        );
        let probe = sync.probe_if_stalled(10, stalled, now).unwrap();
        assert_eq!((probe.peer, probe.from), (1, 11));
        assert!(!sync.should_enter_sync(10), "a claim alone does not");
        // The liar serves nothing: its claim stops counting, and nothing keeps a syncing node from
        // rejoining consensus once the start-up wait is over.
        assert!(sync.on_response(probe, Ok(Vec::new()), now).is_none());
        assert!(!sync.should_enter_sync(10));
        assert!(!sync.caught_up(10, SYNC_STARTUP_WAIT / 2));
        assert!(sync.caught_up(10, SYNC_STARTUP_WAIT));
        // An honest claim counts until it is reached.
        sync.peer_status(2, None, 12, now);
        assert!(!sync.caught_up(10, SYNC_STARTUP_WAIT));
        assert!(sync.caught_up(12, Duration::ZERO));
    }

    /// A pruning node has none of the heights below its base; a gossiped Status does not say its base, so
    /// a base learnt from a Status answer is kept, and heights below it are not asked of the peer.
    #[test]
    fn a_known_base_is_kept_and_respected() {
        let mut sync = BlockSync::new(SyncConfig::new(1, 10));
        let now = Instant::now();
        sync.peer_status(peer(1), Some(30), 50, now);
        sync.peer_status(peer(1), None, 60, now);
        assert!(
            sync.next_requests(0, now).is_empty(),
            "heights below its base are not asked of it"
        );
        let req = sync.next_requests(29, now)[0];
        assert_eq!((req.from, req.peer), (30, peer(1)));
    }
}
