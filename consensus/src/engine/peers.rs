//! Where each peer says it is in consensus, so a node can relay the votes a lagging peer lacks.
//!
//! Tendermint's liveness assumes that whatever one honest node received, every honest node eventually
//! receives. Gossip alone does not give that: a validator that restarted, or a message lost to a peer
//! that then went silent, can leave one honest node holding a vote another needs, while the first has
//! moved to a later round and no longer re-sends it (simulation seed 1000280: a byzantine validator's
//! round-0 precommit reached one honest node only; the other, still in round 0, waited for it forever).
//! CometBFT keeps a `PeerRoundState` per peer and sends each peer the votes of the round it is in. Basalt
//! gossips to the whole mesh, so it does the same by round rather than by peer: each node tracks the
//! `(height, round)` its peers report in their Status messages, and while the round makes no progress it
//! re-gossips the votes it holds for the earlier rounds of its height that peers still report.
//!
//! Pure and bounded: a report is only a hint (it selects which already-verified votes get relayed, never
//! what is accepted), the map holds at most `capacity` peers, and at most [`MAX_CATCH_UP_ROUNDS`] rounds
//! are chosen per re-gossip — those the most peers report, so a liar needs as many identities as there are
//! honest lagging peers to crowd them out.

use std::collections::BTreeMap;

use crate::primitives::{Height, Round};

/// The most earlier rounds whose votes one re-gossip relays.
pub const MAX_CATCH_UP_ROUNDS: usize = 2;

/// The last `(height, round)` each peer reported, for at most `capacity` peers.
#[derive(Clone, Debug)]
pub struct PeerPositions<P> {
    positions: BTreeMap<P, (Height, Round)>,
    capacity: usize,
}

impl<P: Ord> PeerPositions<P> {
    /// An empty map that tracks at most `capacity` peers.
    pub fn new(capacity: usize) -> Self {
        PeerPositions {
            positions: BTreeMap::new(),
            capacity,
        }
    }

    /// Records `peer`'s report that it is at `height`, `round`. A peer not yet tracked is ignored once
    /// `capacity` peers are (the transport bounds connections too; this keeps the map bounded by itself).
    pub fn record(&mut self, peer: P, height: Height, round: Round) {
        if self.positions.len() >= self.capacity && !self.positions.contains_key(&peer) {
            return;
        }
        self.positions.insert(peer, (height, round));
    }

    /// Forgets `peer` (it disconnected).
    pub fn forget(&mut self, peer: &P) {
        self.positions.remove(peer);
    }

    /// How many peers are tracked.
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    /// Whether no peer is tracked.
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// The rounds of `height` before `round` that peers report being in: at most
    /// [`MAX_CATCH_UP_ROUNDS`], those the most peers report (the later round first on a tie), returned in
    /// ascending order.
    pub fn lagging_rounds(&self, height: Height, round: Round) -> Vec<Round> {
        let mut reports: BTreeMap<Round, usize> = BTreeMap::new();
        for &(h, r) in self.positions.values() {
            if h == height && r < round {
                *reports.entry(r).or_default() += 1;
            }
        }
        let mut ranked: Vec<(usize, Round)> = reports.into_iter().map(|(r, n)| (n, r)).collect();
        ranked.sort_unstable_by(|a, b| b.cmp(a));
        let mut chosen: Vec<Round> = ranked
            .into_iter()
            .take(MAX_CATCH_UP_ROUNDS)
            .map(|(_, r)| r)
            .collect();
        chosen.sort_unstable();
        chosen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_earlier_rounds_of_our_height_are_lagging() {
        let mut peers = PeerPositions::new(16);
        peers.record(1, Height(5), Round(0));
        peers.record(2, Height(5), Round(3)); // our round: nothing to catch up
        peers.record(3, Height(5), Round(9)); // ahead of us
        peers.record(4, Height(4), Round(0)); // another height: block sync's business
        peers.record(5, Height(6), Round(0));
        assert_eq!(peers.lagging_rounds(Height(5), Round(3)), vec![Round(0)]);
        assert!(peers.lagging_rounds(Height(5), Round(0)).is_empty());
    }

    #[test]
    fn a_new_report_replaces_the_old_and_forgotten_peers_count_no_more() {
        let mut peers = PeerPositions::new(16);
        peers.record(1, Height(5), Round(0));
        peers.record(1, Height(5), Round(2));
        assert_eq!(peers.lagging_rounds(Height(5), Round(3)), vec![Round(2)]);
        peers.forget(&1);
        assert!(peers.is_empty());
        assert!(peers.lagging_rounds(Height(5), Round(3)).is_empty());
    }

    #[test]
    fn the_rounds_most_peers_report_are_chosen_and_a_liar_cannot_crowd_out_a_majority() {
        let mut peers = PeerPositions::new(16);
        // Two honest peers stuck in round 1, one in round 0; one liar claims rounds one by one.
        peers.record(1, Height(7), Round(1));
        peers.record(2, Height(7), Round(1));
        peers.record(3, Height(7), Round(0));
        peers.record(9, Height(7), Round(4));
        let chosen = peers.lagging_rounds(Height(7), Round(5));
        assert_eq!(chosen.len(), MAX_CATCH_UP_ROUNDS);
        assert!(chosen.contains(&Round(1)), "{chosen:?}");
        assert_eq!(chosen, vec![Round(1), Round(4)]); // tie between 0 and 4: the later round
    }

    #[test]
    fn the_map_is_bounded() {
        let mut peers = PeerPositions::new(2);
        peers.record(1, Height(1), Round(0));
        peers.record(2, Height(1), Round(0));
        peers.record(3, Height(1), Round(0)); // not tracked: full
        assert_eq!(peers.len(), 2);
        peers.record(2, Height(1), Round(1)); // a tracked peer still updates
        assert_eq!(
            peers.lagging_rounds(Height(1), Round(2)),
            vec![Round(0), Round(1)]
        );
        peers.record(u64::MAX, Height(u64::MAX), Round(u32::MAX));
        assert_eq!(peers.len(), 2);
    }
}
