//! Run configurations: validator sets, byzantine behaviours, faults, all derived from a seed.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use super::network::{LinkProfile, NodeId, Partition};

/// What a byzantine validator does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Behaviour {
    /// Sends nothing at all.
    Silent,
    /// Signs two conflicting votes at every step and two different proposals when proposing.
    Equivocate,
    /// Proposes poisoned (invalid) blocks and votes for block ids that do not exist.
    InvalidVotes,
    /// Sends random bytes, bit-flipped copies of messages, votes signed with the wrong key (for this
    /// height, the next and far ones), and false Status reports (an early round, a far height).
    Garbage,
    /// Runs one honest engine per side of a partition and tells each side something different. Only used
    /// with ≥ 1/3 byzantine power, in the negative control.
    SplitBrain,
}

/// A crash of one node: at `at_ms`, after `steps` more persistence/send steps (0 = between events), it
/// dies; it restarts `down_ms` later from its persisted state.
#[derive(Clone, Copy, Debug)]
pub struct Crash {
    /// The node.
    pub node: NodeId,
    /// When the crash is armed.
    pub at_ms: u64,
    /// Steps (WAL write, sign-state write, send) it still completes after arming.
    pub steps: u32,
    /// Downtime.
    pub down_ms: u64,
}

/// Consensus timeouts of the simulated nodes (grow per round, as liveness after GST requires).
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// timeout_propose base.
    pub propose_ms: u64,
    /// timeout_prevote / timeout_precommit base.
    pub vote_ms: u64,
    /// Added per round.
    pub delta_ms: u64,
    /// Period of re-gossip of own messages.
    pub gossip_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            propose_ms: 150,
            vote_ms: 50,
            delta_ms: 40,
            gossip_ms: 120,
        }
    }
}

/// One simulation run.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Name of the configuration family.
    pub family: &'static str,
    /// The seed (everything random in the run derives from it).
    pub seed: u64,
    /// Genesis voting power of each node (node i has key i); 0: not a validator at genesis (a full
    /// node that `set_changes` may add).
    pub powers: Vec<u64>,
    /// Validator updates the application returns at the end of a block: (block height, [(node, new
    /// power)]), heights increasing; they shape the set of that height + 2 (power 0 removes).
    pub set_changes: Vec<(u64, Vec<(NodeId, u64)>)>,
    /// Byzantine nodes and what they do.
    pub byzantine: Vec<(NodeId, Behaviour)>,
    /// Link behaviour before global stabilisation.
    pub link: LinkProfile,
    /// Partition changes before GST: (at_ms, partition).
    pub partitions: Vec<(u64, Partition)>,
    /// Crash-restarts of honest nodes (all restart before GST).
    pub crashes: Vec<Crash>,
    /// Global stabilisation time: from here links are synchronous and partitions healed (unless
    /// `partition_forever`).
    pub gst_ms: u64,
    /// Keep the last partition after GST (negative control only).
    pub partition_forever: bool,
    /// Every honest node must decide this many heights beyond the highest honest height at GST...
    pub target_height: u64,
    /// ...by this time.
    pub deadline_ms: u64,
    /// Timeouts.
    pub timeouts: Timeouts,
}

/// The configuration families CI sweeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// Honest validators under loss, duplication, reordering, partitions and crash-restarts.
    Faults,
    /// As `Faults`, plus byzantine validators below 1/3 of the power.
    Byzantine,
    /// As `Faults` (partitions, crash-restarts, losses), with the validator set changing: full nodes
    /// added, validators removed (they go on as full nodes) and powers changed, by the application's
    /// updates at early heights, so the changes land among the faults.
    SetChanges,
}

impl SimConfig {
    /// A random configuration of `family` derived from `seed`.
    pub fn random(family: Family, seed: u64) -> SimConfig {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x005e_edba_5a17);
        let n = [4usize, 7, 10][(rng.next_u32() % 3) as usize];
        let unequal = rng.next_u32().is_multiple_of(2);
        let mut powers: Vec<u64> = (0..n)
            .map(|_| {
                if unequal {
                    1 + (rng.next_u64() % 10)
                } else {
                    10
                }
            })
            .collect();
        let byzantine = match family {
            Family::Faults | Family::SetChanges => Vec::new(),
            Family::Byzantine => pick_byzantine(&mut rng, &powers),
        };
        let set_changes = match family {
            Family::SetChanges => {
                // One or two full nodes join the network from the start, validators only once added.
                let joiners = 1 + (rng.next_u32() % 2) as usize;
                powers.extend(std::iter::repeat_n(0, joiners));
                schedule_changes(&mut rng, &powers)
            }
            Family::Faults | Family::Byzantine => Vec::new(),
        };
        let n = powers.len();
        let link = LinkProfile {
            min_delay_ms: 1,
            max_delay_ms: 10 + rng.next_u64() % 150,
            drop_per_mille: rng.next_u32() % 150,
            duplicate_per_mille: rng.next_u32() % 100,
        };
        let gst_ms = 1_000 + rng.next_u64() % 3_000;
        let honest: Vec<NodeId> = (0..n)
            .filter(|i| !byzantine.iter().any(|(b, _)| b == i))
            .collect();
        let mut partitions = Vec::new();
        if rng.next_u32().is_multiple_of(2) {
            let at = rng.next_u64() % (gst_ms / 2);
            let mut a = Vec::new();
            let mut b = Vec::new();
            for i in 0..n {
                if rng.next_u32().is_multiple_of(2) {
                    a.push(i)
                } else {
                    b.push(i)
                }
            }
            partitions.push((at, Partition::split(vec![a, b])));
            let heal = at + rng.next_u64() % (gst_ms - at);
            partitions.push((heal, Partition::healed()));
        }
        let mut crashes = Vec::new();
        if !rng.next_u32().is_multiple_of(3) && !honest.is_empty() {
            let node = honest[(rng.next_u32() as usize) % honest.len()];
            let at_ms = rng.next_u64() % (gst_ms / 2);
            crashes.push(Crash {
                node,
                at_ms,
                steps: rng.next_u32() % 4,
                down_ms: 50 + rng.next_u64() % (gst_ms / 2),
            });
        }
        let target_height = 3 + rng.next_u64() % 3;
        SimConfig {
            family: match family {
                Family::Faults => "faults",
                Family::Byzantine => "byzantine",
                Family::SetChanges => "set-changes",
            },
            seed,
            powers,
            set_changes,
            byzantine,
            link,
            partitions,
            crashes,
            gst_ms,
            partition_forever: false,
            target_height,
            deadline_ms: gst_ms + 60_000,
            timeouts: Timeouts::default(),
        }
    }

    /// The negative control: two of four equal validators are byzantine (1/2 of the power, above the 1/3
    /// the protocol tolerates) and run split-brain while the two honest ones are partitioned from each
    /// other. The checker must report an agreement violation.
    pub fn negative_control(seed: u64) -> SimConfig {
        SimConfig {
            family: "negative-control",
            seed,
            powers: vec![10, 10, 10, 10],
            set_changes: Vec::new(),
            byzantine: vec![(2, Behaviour::SplitBrain), (3, Behaviour::SplitBrain)],
            link: LinkProfile::synchronous(),
            partitions: vec![(0, Partition::split(vec![vec![0, 2, 3], vec![1, 2, 3]]))],
            crashes: Vec::new(),
            gst_ms: 0,
            partition_forever: true,
            target_height: 3,
            deadline_ms: 20_000,
            timeouts: Timeouts::default(),
        }
    }

    /// Total voting power.
    pub fn total_power(&self) -> u64 {
        self.powers.iter().sum()
    }

    /// The behaviour of a node, `None` if honest.
    pub fn behaviour(&self, node: NodeId) -> Option<Behaviour> {
        self.byzantine
            .iter()
            .find(|(b, _)| *b == node)
            .map(|(_, k)| *k)
    }
}

/// A schedule of validator updates over `powers` (0: a full node): every full node added, one
/// validator removed, one validator's power changed, in a random order at random early block heights
/// (1–8, so most land before GST, among partitions and crashes). Each block moves at most a third of
/// the power of the set it changes, as the application's rule allows.
fn schedule_changes(rng: &mut ChaCha8Rng, powers: &[u64]) -> Vec<(u64, Vec<(NodeId, u64)>)> {
    #[derive(Clone, Copy)]
    enum Change {
        Add(NodeId),
        Remove,
        Repower,
    }
    let mut changes: Vec<Change> = (0..powers.len())
        .filter(|i| powers[*i] == 0)
        .map(Change::Add)
        .collect();
    changes.push(Change::Remove);
    changes.push(Change::Repower);
    for i in (1..changes.len()).rev() {
        changes.swap(i, (rng.next_u32() as usize) % (i + 1));
    }
    let mut heights: Vec<u64> = Vec::new();
    while heights.len() < changes.len() {
        let h = 1 + rng.next_u64() % 8;
        if !heights.contains(&h) {
            heights.push(h);
        }
    }
    heights.sort_unstable();
    let mut current = powers.to_vec();
    let mut schedule = Vec::new();
    for (height, change) in heights.into_iter().zip(changes) {
        let total: u64 = current.iter().sum();
        let budget = total / 3;
        let members: Vec<NodeId> = (0..current.len()).filter(|i| current[*i] > 0).collect();
        let pick = |rng: &mut ChaCha8Rng, ok: &dyn Fn(NodeId) -> bool| -> Option<NodeId> {
            let fits: Vec<NodeId> = members.iter().copied().filter(|i| ok(*i)).collect();
            (!fits.is_empty()).then(|| fits[(rng.next_u32() as usize) % fits.len()])
        };
        let update = match change {
            Change::Add(node) => Some((node, (1 + rng.next_u64() % 10).min(budget.max(1)))),
            // Keep at least three validators, so one crashed node never stops the chain.
            Change::Remove if members.len() > 3 => {
                pick(rng, &|i| current[i] <= budget).map(|node| (node, 0))
            }
            Change::Remove => None,
            Change::Repower => pick(rng, &|_| true).map(|node| {
                let step = 1 + rng.next_u64() % budget.max(1);
                let power = if rng.next_u32().is_multiple_of(2) || current[node] <= step {
                    current[node] + step
                } else {
                    current[node] - step
                };
                (node, power)
            }),
        };
        if let Some((node, power)) = update {
            current[node] = power;
            schedule.push((height, vec![(node, power)]));
        }
    }
    schedule
}

/// Picks byzantine validators with total power strictly below 1/3, at least one when possible.
fn pick_byzantine(rng: &mut ChaCha8Rng, powers: &[u64]) -> Vec<(NodeId, Behaviour)> {
    let total: u64 = powers.iter().sum();
    let kinds = [
        Behaviour::Silent,
        Behaviour::Equivocate,
        Behaviour::InvalidVotes,
        Behaviour::Garbage,
    ];
    let mut chosen = Vec::new();
    let mut power = 0u64;
    let start = (rng.next_u32() as usize) % powers.len();
    for k in 0..powers.len() {
        let i = (start + k) % powers.len();
        if 3 * (power + powers[i]) < total {
            power += powers[i];
            let kind = kinds[(rng.next_u32() as usize) % kinds.len()];
            chosen.push((i, kind));
        }
    }
    chosen
}
