//! The state-sync client's decisions, with no I/O: which offered snapshot to restore, which peer to
//! ask for which chunk, when a request has waited too long, and whom to blame. The shell asks peers
//! for their snapshots and chunks, verifies a snapshot height's app hash with the light client, keeps
//! the time and writes the restored state; it feeds the answers here and acts on the [`Step`]s.
//!
//! Snapshots are grouped by manifest hash (nodes with other chunk sizes offer other manifests of one
//! height); the highest height is tried first, among equals the one most peers offer. A snapshot is
//! fetched only once the light client verified its height's app hash and the manifest's root is that
//! hash ([`Restore::new`]); chunks are asked from every peer that offered it, at most
//! [`StateSyncLimits::per_peer`] at a time from one, [`StateSyncLimits::in_flight`] in all. Blame:
//! - a chunk other than the manifest's ([`SnapshotError::blames_sender`]) bans its sender, and the
//!   chunk is asked from another peer;
//! - a manifest whose root is not the verified app hash, or whose listed chunks do not build that root,
//!   can only come from a peer that lies (an honest node's snapshot of a height has that height's app
//!   hash), so every peer that offered it is banned and the snapshot dropped;
//! - a peer that no longer has the snapshot, or lets requests time out three times, stops being asked
//!   (not banned: it may have pruned it or be slow).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use basalt_state::snapshot::{Manifest, Restore, RestoreLimits, SnapshotError};
use basalt_state::RootHash;

/// Timeouts after which a peer stops being asked for chunks.
const MAX_STRIKES: u32 = 3;

/// Most distinct snapshots remembered (a peer offers at most four; more are dropped): with manifests
/// of at most 2 MiB, at most 32 MiB held.
pub const MAX_CANDIDATES: usize = 16;

/// How hard the client pulls.
#[derive(Clone, Copy, Debug)]
pub struct StateSyncLimits {
    /// Chunk requests in flight in all.
    pub in_flight: usize,
    /// Chunk requests in flight to one peer.
    pub per_peer: usize,
    /// How long a chunk request may wait for its answer, ms.
    pub chunk_timeout_ms: u64,
    /// What a restore may hold (the store's key and value limits, and a total).
    pub restore: RestoreLimits,
}

/// What the shell is to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step<P> {
    /// Verify, with the light client, the app hash of the state after block `height` (in the header
    /// of `height + 1`); answer with [`StateSync::trusted`] or [`StateSync::unverifiable`].
    Verify {
        /// The snapshot's height.
        height: u64,
    },
    /// Ask `peer` for chunk `index` of its snapshot of `height`; answer with [`StateSync::chunk`].
    Fetch {
        /// Whom to ask.
        peer: P,
        /// The snapshot's height.
        height: u64,
        /// The chunk.
        index: u32,
    },
    /// `peer` sent what no honest node sends: ban it.
    Ban {
        /// The peer.
        peer: P,
        /// Why, for the log.
        reason: String,
    },
}

/// One distinct snapshot offered.
#[derive(Debug)]
struct Candidate<P> {
    manifest: Manifest,
    providers: BTreeSet<P>,
    /// Dropped: unverifiable, lied about, or no peer left to fetch it from.
    dropped: bool,
}

/// The snapshot being fetched.
#[derive(Debug)]
struct Fetching<P> {
    /// Its manifest hash.
    id: [u8; 32],
    restore: Restore,
    /// Chunks not asked for yet (or to ask again).
    queue: VecDeque<u32>,
    /// Chunks asked for: from whom, until when.
    in_flight: BTreeMap<u32, (P, u64)>,
}

/// Where a state sync stands.
#[derive(Debug)]
pub struct StateSync<P> {
    limits: StateSyncLimits,
    candidates: BTreeMap<[u8; 32], Candidate<P>>,
    /// The candidate whose height the light client is verifying.
    verifying: Option<[u8; 32]>,
    fetching: Option<Fetching<P>>,
    strikes: BTreeMap<P, u32>,
    banned: BTreeSet<P>,
}

impl<P: Ord + Clone> StateSync<P> {
    /// A state sync that has heard of no snapshot yet.
    pub fn new(limits: StateSyncLimits) -> StateSync<P> {
        StateSync {
            limits,
            candidates: BTreeMap::new(),
            verifying: None,
            fetching: None,
            strikes: BTreeMap::new(),
            banned: BTreeSet::new(),
        }
    }

    /// `peer` offers these snapshots (height and encoded manifest). A manifest that does not decode
    /// bans the peer (an honest node offers what it wrote).
    pub fn offered(&mut self, peer: P, offers: Vec<(u64, Vec<u8>)>) -> Vec<Step<P>> {
        if self.banned.contains(&peer) {
            return Vec::new();
        }
        for (height, bytes) in offers {
            let manifest = match Manifest::decode(&bytes) {
                Ok(m) if m.version == height => m,
                refused => {
                    let reason = match refused {
                        Ok(m) => format!("offered height {height} for a snapshot of {}", m.version),
                        Err(e) => format!("offered a bad manifest: {e}"),
                    };
                    let mut steps = self.ban(peer, reason);
                    steps.extend(self.choose());
                    return steps;
                }
            };
            let id = manifest.hash();
            if !self.candidates.contains_key(&id) && self.candidates.len() >= MAX_CANDIDATES {
                continue;
            }
            self.candidates
                .entry(id)
                .or_insert_with(|| Candidate {
                    manifest,
                    providers: BTreeSet::new(),
                    dropped: false,
                })
                .providers
                .insert(peer.clone());
        }
        self.choose()
    }

    /// When nothing is being verified or fetched: the best snapshot left to verify.
    fn choose(&mut self) -> Vec<Step<P>> {
        if self.verifying.is_some() || self.fetching.is_some() {
            return Vec::new();
        }
        let best = self
            .candidates
            .iter()
            .filter(|(_, c)| !c.dropped && !c.providers.is_empty())
            .max_by_key(|(_, c)| (c.manifest.version, c.providers.len()))
            .map(|(id, c)| (*id, c.manifest.version));
        match best {
            Some((id, height)) => {
                self.verifying = Some(id);
                vec![Step::Verify { height }]
            }
            None => Vec::new(),
        }
    }

    /// The light client verified `app_hash` for the state after block `height`: the snapshot being
    /// verified is fetched if its root is that hash; else its providers lied and are banned.
    pub fn trusted(&mut self, height: u64, app_hash: RootHash, now_ms: u64) -> Vec<Step<P>> {
        let Some(id) = self.verifying.take() else {
            return Vec::new();
        };
        let Some(candidate) = self.candidates.get_mut(&id) else {
            return self.choose();
        };
        if candidate.manifest.version != height {
            self.verifying = Some(id);
            return Vec::new();
        }
        match Restore::new(candidate.manifest.clone(), app_hash, self.limits.restore) {
            Ok(restore) => {
                let queue = restore.missing().collect();
                self.fetching = Some(Fetching {
                    id,
                    restore,
                    queue,
                    in_flight: BTreeMap::new(),
                });
                self.fetches(now_ms)
            }
            Err(e) => self.drop_lying(id, &format!("offered a snapshot of height {height}: {e}")),
        }
    }

    /// The light client could not verify `height` (not signed yet, or beyond what it trusts): that
    /// snapshot is set aside, nobody blamed.
    pub fn unverifiable(&mut self, height: u64) -> Vec<Step<P>> {
        if let Some(id) = self.verifying.take() {
            if let Some(c) = self.candidates.get_mut(&id) {
                if c.manifest.version == height {
                    c.dropped = true;
                } else {
                    self.verifying = Some(id);
                    return Vec::new();
                }
            }
        }
        self.choose()
    }

    /// Chunk requests to send now: every chunk not in flight, to the providers with the fewest
    /// requests in flight, within the limits.
    pub fn fetches(&mut self, now_ms: u64) -> Vec<Step<P>> {
        let Some(fetching) = self.fetching.as_mut() else {
            return Vec::new();
        };
        let Some(candidate) = self.candidates.get(&fetching.id) else {
            return Vec::new();
        };
        let mut load: BTreeMap<P, usize> =
            candidate.providers.iter().map(|p| (p.clone(), 0)).collect();
        for (peer, _) in fetching.in_flight.values() {
            if let Some(n) = load.get_mut(peer) {
                *n += 1;
            }
        }
        let height = candidate.manifest.version;
        let mut steps = Vec::new();
        while fetching.in_flight.len() < self.limits.in_flight {
            let Some((peer, n)) = load
                .iter_mut()
                .filter(|(_, n)| **n < self.limits.per_peer)
                .min_by_key(|(_, n)| **n)
            else {
                break;
            };
            let Some(index) = fetching.queue.pop_front() else {
                break;
            };
            *n += 1;
            let deadline = now_ms.saturating_add(self.limits.chunk_timeout_ms);
            fetching.in_flight.insert(index, (peer.clone(), deadline));
            steps.push(Step::Fetch {
                peer: peer.clone(),
                height,
                index,
            });
        }
        steps
    }

    /// `peer`'s answer for chunk `index` of the snapshot of `height` (`None`: it does not have it).
    /// Answers nobody asked this peer for are ignored.
    pub fn chunk(
        &mut self,
        peer: P,
        height: u64,
        index: u32,
        bytes: Option<Vec<u8>>,
        now_ms: u64,
    ) -> Vec<Step<P>> {
        let Some(fetching) = self.fetching.as_mut() else {
            return Vec::new();
        };
        let id = fetching.id;
        let asked = self
            .candidates
            .get(&id)
            .is_some_and(|c| c.manifest.version == height)
            && fetching
                .in_flight
                .get(&index)
                .is_some_and(|(p, _)| *p == peer);
        if !asked {
            return Vec::new();
        }
        fetching.in_flight.remove(&index);
        let mut steps = Vec::new();
        match bytes {
            None => {
                fetching.queue.push_back(index);
                self.forget_provider(&peer);
            }
            Some(bytes) => match fetching.restore.add(index, &bytes) {
                Ok(()) => {}
                Err(e) if e.blames_sender() => {
                    fetching.queue.push_back(index);
                    steps.extend(self.ban(peer, format!("sent a bad snapshot chunk: {e}")));
                }
                Err(e) => {
                    return self
                        .drop_lying(id, &format!("offered a snapshot with a bad chunk: {e}"))
                }
            },
        }
        if self.fetching.is_none() {
            steps.extend(self.choose());
        } else {
            steps.extend(self.fetches(now_ms));
        }
        steps
    }

    /// Requests past their deadline at `now_ms`: asked again (from the least loaded provider); a peer
    /// that timed out [`MAX_STRIKES`] times is not asked any more.
    pub fn timeouts(&mut self, now_ms: u64) -> Vec<Step<P>> {
        let Some(fetching) = self.fetching.as_mut() else {
            return Vec::new();
        };
        let late: Vec<(u32, P)> = fetching
            .in_flight
            .iter()
            .filter(|(_, (_, deadline))| *deadline <= now_ms)
            .map(|(index, (peer, _))| (*index, peer.clone()))
            .collect();
        for (index, peer) in &late {
            fetching.in_flight.remove(index);
            fetching.queue.push_back(*index);
            let strikes = self.strikes.entry(peer.clone()).or_insert(0);
            *strikes += 1;
        }
        let slow: Vec<P> = late
            .into_iter()
            .map(|(_, p)| p)
            .filter(|p| self.strikes.get(p).is_some_and(|s| *s >= MAX_STRIKES))
            .collect();
        for peer in slow {
            self.forget_provider(&peer);
        }
        if self.fetching.is_none() {
            self.choose()
        } else {
            self.fetches(now_ms)
        }
    }

    /// The restore, once every chunk arrived: the shell builds the store with [`Restore::finish`]
    /// and reports how that went to [`StateSync::finished`].
    pub fn complete(&mut self) -> Option<Restore> {
        if !self
            .fetching
            .as_ref()
            .is_some_and(|f| f.restore.is_complete())
        {
            return None;
        }
        let fetching = self.fetching.take()?;
        self.verifying = Some(fetching.id);
        Some(fetching.restore)
    }

    /// How the restore handed out by [`StateSync::complete`] ended: a snapshot whose chunks did not
    /// build its root lied, and another is chosen. `Ok` ends the state sync.
    pub fn finished(&mut self, result: &Result<RootHash, SnapshotError>) -> Vec<Step<P>> {
        let Some(id) = self.verifying.take() else {
            return Vec::new();
        };
        match result {
            Ok(_) => Vec::new(),
            Err(
                e @ (SnapshotError::RootMismatch { .. }
                | SnapshotError::LeafCount { .. }
                | SnapshotError::BadChunk { .. }),
            ) => self.drop_lying(
                id,
                &format!("offered a snapshot that does not restore: {e}"),
            ),
            // The local store failed or was not empty: nobody else's fault; stop here.
            Err(_) => {
                if let Some(c) = self.candidates.get_mut(&id) {
                    c.dropped = true;
                }
                Vec::new()
            }
        }
    }

    /// Snapshots still worth trying (not dropped, some peer left to fetch from).
    pub fn candidates_left(&self) -> usize {
        self.candidates
            .values()
            .filter(|c| !c.dropped && !c.providers.is_empty())
            .count()
    }

    /// Bans every provider of snapshot `id`, drops it and chooses another.
    fn drop_lying(&mut self, id: [u8; 32], reason: &str) -> Vec<Step<P>> {
        if self.fetching.as_ref().is_some_and(|f| f.id == id) {
            self.fetching = None;
        }
        if self.verifying == Some(id) {
            self.verifying = None;
        }
        let providers: Vec<P> = match self.candidates.get_mut(&id) {
            Some(c) => {
                c.dropped = true;
                c.providers.iter().cloned().collect()
            }
            None => Vec::new(),
        };
        let mut steps = Vec::new();
        for peer in providers {
            steps.extend(self.ban(peer, reason.to_owned()));
        }
        steps.extend(self.choose());
        steps
    }

    /// Bans `peer`: it is asked for nothing more, its requests in flight are asked elsewhere.
    fn ban(&mut self, peer: P, reason: String) -> Vec<Step<P>> {
        if !self.banned.insert(peer.clone()) {
            return Vec::new();
        }
        self.forget_provider(&peer);
        vec![Step::Ban { peer, reason }]
    }

    /// `peer` provides nothing any more; a snapshot left with no provider is dropped.
    fn forget_provider(&mut self, peer: &P) {
        for candidate in self.candidates.values_mut() {
            candidate.providers.remove(peer);
        }
        if let Some(fetching) = self.fetching.as_mut() {
            let back: Vec<u32> = fetching
                .in_flight
                .iter()
                .filter(|(_, (p, _))| p == peer)
                .map(|(i, _)| *i)
                .collect();
            for index in back {
                fetching.in_flight.remove(&index);
                fetching.queue.push_back(index);
            }
            let orphaned = self
                .candidates
                .get(&fetching.id)
                .is_none_or(|c| c.providers.is_empty());
            if orphaned {
                if let Some(c) = self.candidates.get_mut(&fetching.id) {
                    c.dropped = true;
                }
                self.fetching = None;
            }
        }
    }
}

#[cfg(test)]
mod tests;
