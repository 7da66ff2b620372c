//! Peer bookkeeping that needs no swarm: the ban list with expiry and the persistent-peer redial schedule.
//! Both take the current time as an argument, so they are tested without clocks or sleeps.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;

use crate::config::PeerAddr;

/// Most peers banned at once; past it, the ban closest to expiry is dropped to make room.
pub const MAX_BANNED: usize = 10_000;
/// First redial delay of a persistent peer.
pub const REDIAL_INITIAL: Duration = Duration::from_secs(1);
/// Largest redial delay of a persistent peer.
pub const REDIAL_MAX: Duration = Duration::from_secs(30);

/// Banned peers and when each ban ends.
#[derive(Debug, Default)]
pub struct BanList {
    until: HashMap<PeerId, Instant>,
}

impl BanList {
    /// Bans `peer` until `now + duration` (extending an existing ban, never shortening it). Returns the
    /// peer evicted to stay within [`MAX_BANNED`], if any.
    pub fn ban(&mut self, peer: PeerId, now: Instant, duration: Duration) -> Option<PeerId> {
        let until = now + duration;
        let mut evicted = None;
        if !self.until.contains_key(&peer) && self.until.len() >= MAX_BANNED {
            if let Some((&soonest, _)) = self.until.iter().min_by_key(|(_, t)| **t) {
                self.until.remove(&soonest);
                evicted = Some(soonest);
            }
        }
        let entry = self.until.entry(peer).or_insert(until);
        *entry = (*entry).max(until);
        evicted
    }

    /// Whether `peer` is banned at `now`.
    pub fn is_banned(&self, peer: &PeerId, now: Instant) -> bool {
        self.until.get(peer).is_some_and(|t| *t > now)
    }

    /// Removes and returns the bans that have ended by `now`.
    pub fn expire(&mut self, now: Instant) -> Vec<PeerId> {
        let ended: Vec<PeerId> = self
            .until
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(p, _)| *p)
            .collect();
        for peer in &ended {
            self.until.remove(peer);
        }
        ended
    }

    /// The banned peers.
    pub fn peers(&self) -> Vec<PeerId> {
        self.until.keys().copied().collect()
    }
}

/// Where a persistent peer is in its connect cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Connected; nothing to do.
    Connected,
    /// A dial is in flight.
    Dialing,
    /// Waiting to dial at the given time.
    WaitUntil(Instant),
}

#[derive(Debug)]
struct Persistent {
    addr: PeerAddr,
    phase: Phase,
    backoff: Duration,
}

/// The persistent peers and their redial schedule: dial at start, after a failure or disconnection wait
/// the back-off (1 s doubling to 30 s), reset the back-off once connected.
#[derive(Debug, Default)]
pub struct Redialer {
    peers: HashMap<PeerId, Persistent>,
}

impl Redialer {
    /// All `addrs` due for a dial at `now` (the first dial is immediate).
    pub fn new(addrs: &[PeerAddr], now: Instant) -> Redialer {
        let peers = addrs
            .iter()
            .map(|addr| {
                (
                    addr.id,
                    Persistent {
                        addr: addr.clone(),
                        phase: Phase::WaitUntil(now),
                        backoff: REDIAL_INITIAL,
                    },
                )
            })
            .collect();
        Redialer { peers }
    }

    /// The persistent peers due for a dial at `now` that `may_dial` allows; they are marked as dialling.
    pub fn due(&mut self, now: Instant, may_dial: impl Fn(&PeerId) -> bool) -> Vec<PeerAddr> {
        let mut out = Vec::new();
        for (id, p) in &mut self.peers {
            if matches!(p.phase, Phase::WaitUntil(t) if t <= now) && may_dial(id) {
                p.phase = Phase::Dialing;
                out.push(p.addr.clone());
            }
        }
        out
    }

    /// A connection to `peer` is established: reset its back-off.
    pub fn connected(&mut self, peer: &PeerId) {
        if let Some(p) = self.peers.get_mut(peer) {
            p.phase = Phase::Connected;
            p.backoff = REDIAL_INITIAL;
        }
    }

    /// The last connection to `peer` closed, or a dial to it failed: schedule the next dial after the
    /// back-off and double it (up to [`REDIAL_MAX`]). Returns when the next dial is due.
    pub fn lost(&mut self, peer: &PeerId, now: Instant) -> Option<Instant> {
        let p = self.peers.get_mut(peer)?;
        let at = now + p.backoff;
        p.phase = Phase::WaitUntil(at);
        p.backoff = (p.backoff * 2).min(REDIAL_MAX);
        Some(at)
    }

    /// A dial to `peer` failed before a connection: same as [`Redialer::lost`] unless it is connected
    /// anyway (another connection won the race).
    pub fn dial_failed(&mut self, peer: &PeerId, now: Instant) {
        if self
            .peers
            .get(peer)
            .is_some_and(|p| p.phase != Phase::Connected)
        {
            self.lost(peer, now);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn peer(n: u8) -> PeerId {
        crate::config::peer_id_from_seed(&[n; 32])
    }

    #[test]
    fn bans_expire_and_are_extended_not_shortened() {
        let t0 = Instant::now();
        let mut bans = BanList::default();
        bans.ban(peer(1), t0, Duration::from_secs(10));
        bans.ban(peer(1), t0, Duration::from_secs(1)); // shorter: no effect
        assert!(bans.is_banned(&peer(1), t0 + Duration::from_secs(5)));
        assert!(bans.expire(t0 + Duration::from_secs(9)).is_empty());
        assert_eq!(bans.expire(t0 + Duration::from_secs(10)), vec![peer(1)]);
        assert!(!bans.is_banned(&peer(1), t0 + Duration::from_secs(10)));
        assert!(bans.peers().is_empty());
    }

    #[test]
    fn redial_backs_off_doubling_to_the_cap_and_resets_on_connect() {
        let t0 = Instant::now();
        let addr = PeerAddr {
            id: peer(2),
            addr: "127.0.0.1:1".parse().unwrap(),
        };
        let mut r = Redialer::new(std::slice::from_ref(&addr), t0);
        assert_eq!(r.due(t0, |_| true), vec![addr.clone()]);
        assert!(r.due(t0, |_| true).is_empty(), "dialling: not due again");
        let mut now = t0;
        let mut delays = Vec::new();
        for _ in 0..7 {
            let at = r.lost(&addr.id, now).unwrap();
            delays.push((at - now).as_secs());
            assert!(r.due(at - Duration::from_millis(1), |_| true).is_empty());
            assert_eq!(r.due(at, |_| true).len(), 1);
            now = at;
        }
        assert_eq!(delays, vec![1, 2, 4, 8, 16, 30, 30]);
        r.connected(&addr.id);
        assert_eq!(r.lost(&addr.id, now).unwrap() - now, REDIAL_INITIAL);
    }

    #[test]
    fn a_banned_peer_is_not_dialled_until_allowed() {
        let t0 = Instant::now();
        let addr = PeerAddr {
            id: peer(3),
            addr: "127.0.0.1:1".parse().unwrap(),
        };
        let mut r = Redialer::new(std::slice::from_ref(&addr), t0);
        assert!(r.due(t0, |_| false).is_empty());
        assert_eq!(r.due(t0, |_| true).len(), 1);
    }
}
