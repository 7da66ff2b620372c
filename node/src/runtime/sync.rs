//! Block sync bookkeeping: which peer has which heights, which ranges are in flight, and the fetched blocks
//! waiting to be applied in order. Pure state (no I/O): the driver sends the requests it returns and feeds
//! back the answers, then applies blocks through the consensus engine's `Decision` path, which verifies each
//! commit (+2/3 of the height's validator set, batch-verified).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use basalt_consensus::types::{Block, Commit};
use basalt_p2p::{Misbehaviour, PeerId};

/// How far past our height fetched blocks may be buffered (bounds memory: ≤ this many blocks).
pub const MAX_BUFFERED_BLOCKS: u64 = 512;
/// How long a peer that failed a request is not asked again.
const FAILED_PEER_PAUSE: Duration = Duration::from_secs(5);

/// Block sync tunables.
#[derive(Clone, Copy, Debug)]
pub struct SyncConfig {
    /// Requests in flight at once (spread over peers).
    pub max_parallel_requests: usize,
    /// Blocks per request.
    pub batch_blocks: u32,
}

#[derive(Debug, Default)]
struct PeerState {
    /// Latest height the peer said it has.
    latest: u64,
    /// Oldest height it has.
    base: u64,
    /// Requests to it in flight.
    in_flight: usize,
    /// Not asked again before this instant.
    paused_until: Option<Instant>,
}

/// A request the driver must send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockRequest {
    /// To whom.
    pub peer: PeerId,
    /// First height.
    pub from: u64,
    /// Number of blocks.
    pub count: u32,
}

/// The bookkeeping.
#[derive(Debug)]
pub struct BlockSync {
    config: SyncConfig,
    peers: HashMap<PeerId, PeerState>,
    /// In-flight ranges by first height: (peer, count).
    in_flight: BTreeMap<u64, (PeerId, u32)>,
    /// Fetched blocks by height with the peer that served them.
    ready: BTreeMap<u64, (Block, Commit, PeerId)>,
    /// Round-robin cursor over peers.
    cursor: usize,
}

impl BlockSync {
    /// Empty bookkeeping.
    pub fn new(config: SyncConfig) -> BlockSync {
        BlockSync {
            config,
            peers: HashMap::new(),
            in_flight: BTreeMap::new(),
            ready: BTreeMap::new(),
            cursor: 0,
        }
    }

    /// A peer reported its stored range.
    pub fn peer_status(&mut self, peer: PeerId, base: u64, latest: u64) {
        let state = self.peers.entry(peer).or_default();
        state.base = base;
        state.latest = state.latest.max(latest);
    }

    /// A peer is gone (or banned): forget it and what it was asked.
    pub fn remove_peer(&mut self, peer: &PeerId) {
        self.peers.remove(peer);
        self.in_flight.retain(|_, (p, _)| p != peer);
        self.ready.retain(|_, (_, _, p)| p != peer);
    }

    /// Highest height any peer claims.
    pub fn max_peer_height(&self) -> u64 {
        self.peers.values().map(|p| p.latest).max().unwrap_or(0)
    }

    /// Peers we know of.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// The requests to send now so that heights after `our_height` get fetched.
    pub fn next_requests(&mut self, our_height: u64, now: Instant) -> Vec<BlockRequest> {
        // Drop what is already applied.
        self.ready.retain(|h, _| *h > our_height);
        let mut out = Vec::new();
        let target = self.max_peer_height();
        let limit = our_height.saturating_add(MAX_BUFFERED_BLOCKS).min(target);
        let mut next = our_height.saturating_add(1);
        while self.in_flight.len() < self.config.max_parallel_requests && next <= limit {
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
    fn pick_peer(&mut self, height: u64, now: Instant) -> Option<PeerId> {
        let mut candidates: Vec<(&PeerId, &PeerState)> = self
            .peers
            .iter()
            .filter(|(_, p)| {
                p.latest >= height && p.base <= height && p.paused_until.is_none_or(|t| t <= now)
            })
            .collect();
        if candidates.is_empty() {
            return None;
        }
        candidates.sort_by_key(|(id, p)| (p.in_flight, id.to_bytes()));
        let least = candidates[0].1.in_flight;
        let tied: Vec<PeerId> = candidates
            .iter()
            .filter(|(_, p)| p.in_flight == least)
            .map(|(id, _)| **id)
            .collect();
        self.cursor = self.cursor.wrapping_add(1);
        tied.get(self.cursor % tied.len()).copied()
    }

    /// The answer to a request: `Ok(blocks)` or a transport failure (`Err`). Returns the misbehaviour to
    /// punish if the peer provably lied.
    pub fn on_response(
        &mut self,
        request: BlockRequest,
        result: Result<Vec<(Block, Commit)>, String>,
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
                self.pause(&request.peer, now);
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
            // It said it has the height, then served nothing.
            return Some(Misbehaviour::LiedAboutHeight);
        }
        for (block, commit) in blocks {
            let height = block.height().0;
            self.ready.insert(height, (block, commit, request.peer));
        }
        None
    }

    fn pause(&mut self, peer: &PeerId, now: Instant) {
        if let Some(p) = self.peers.get_mut(peer) {
            p.paused_until = Some(now + FAILED_PEER_PAUSE);
        }
    }

    /// The fetched block at `height`, if any, removed from the buffer.
    pub fn take(&mut self, height: u64) -> Option<(Block, Commit, PeerId)> {
        self.ready.remove(&height)
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
        let mut sync = BlockSync::new(SyncConfig {
            max_parallel_requests: 4,
            batch_blocks: 10,
        });
        sync.peer_status(peer(1), 1, 35);
        sync.peer_status(peer(2), 1, 100);
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

    #[test]
    fn empty_answer_from_a_peer_claiming_the_height_is_a_lie() {
        let mut sync = BlockSync::new(SyncConfig {
            max_parallel_requests: 1,
            batch_blocks: 10,
        });
        sync.peer_status(peer(1), 1, 50);
        let now = Instant::now();
        let req = sync.next_requests(0, now)[0];
        let verdict = sync.on_response(req, Ok(Vec::new()), now);
        assert!(matches!(verdict, Some(Misbehaviour::LiedAboutHeight)));
    }

    #[test]
    fn failed_peer_is_paused_and_range_is_re_requested() {
        let mut sync = BlockSync::new(SyncConfig {
            max_parallel_requests: 1,
            batch_blocks: 10,
        });
        sync.peer_status(peer(1), 1, 50);
        sync.peer_status(peer(2), 1, 50);
        let now = Instant::now();
        let first = sync.next_requests(0, now)[0];
        assert!(sync
            .on_response(first, Err("timeout".into()), now)
            .is_none());
        let second = sync.next_requests(0, now)[0];
        assert_eq!(second.from, 1);
        assert_ne!(second.peer, first.peer);
    }
}
