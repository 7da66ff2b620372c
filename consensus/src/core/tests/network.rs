//! A tiny in-memory network of drivers: the edge contract exercised end to end (own messages fed back,
//! timeouts fired by the test, `GetValue` answered), with seeded reordering, duplication, early timeouts and
//! an equivocating validator. Not the project's simulation (that lives in `tests`), just a smoke test that the
//! core's pieces fit together and keep agreement.

use crate::core::driver::{Context, Driver, DriverConfig, DriverError, Input, Output, Validity};
use crate::core::votekeeper::VoteKeeperError;
use crate::primitives::{Height, Round, Timeout, ValidatorIndex, VoteType};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use std::collections::{BTreeSet, VecDeque};

#[derive(Clone, Debug, PartialEq, Eq)]
struct Ctx;

impl Context for Ctx {
    type Value = u64;
    /// (validator, round, value) is enough to tell votes apart here.
    type SignedVote = (u32, u32, Option<u64>);
    type SignedProposal = (u32, u64);
}

type Proposer = fn(Round) -> ValidatorIndex;
type D = Driver<Ctx, Proposer>;

fn round_robin(round: Round) -> ValidatorIndex {
    ValidatorIndex(round.0 % 4)
}

/// The value node `i` proposes in `round` (so validity of a decision can be checked).
fn value_of(node: usize, round: Round) -> u64 {
    1000 * node as u64 + u64::from(round.0)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    Honest,
    /// Never sends anything.
    Silent,
    /// Sends every vote twice: as intended and with a conflicting value.
    Equivocator,
    /// Shows even nodes one proposal / vote and odd nodes a conflicting one.
    Splitter,
}

struct Net {
    nodes: Vec<D>,
    behaviour: Vec<Behaviour>,
    /// Values the application considers invalid.
    invalid: BTreeSet<u64>,
    queue: VecDeque<(usize, Input<Ctx>)>,
    timeouts: Vec<BTreeSet<Timeout>>,
    /// Per node: decided round, value and the voting power of its commit.
    decisions: Vec<Option<(Round, u64, u64)>>,
    powers: Vec<u64>,
    evidence: usize,
    rng: Option<ChaCha8Rng>,
    /// Every proposal sent, so decided values can be checked and re-gossiped.
    proposals: Vec<Input<Ctx>>,
    /// Per node, the byzantine-sent messages it already relayed.
    relayed: Vec<BTreeSet<String>>,
}

impl Net {
    fn new(behaviour: Vec<Behaviour>, seed: Option<u64>) -> Net {
        let n = behaviour.len();
        Net::with_powers(behaviour, vec![1; n], seed)
    }

    fn with_powers(behaviour: Vec<Behaviour>, powers: Vec<u64>, seed: Option<u64>) -> Net {
        let n = behaviour.len();
        let nodes = (0..n)
            .map(|i| {
                let own = Some(ValidatorIndex(i as u32));
                let proposer: Proposer = round_robin;
                Driver::new(
                    Height(1),
                    powers.clone(),
                    own,
                    proposer,
                    DriverConfig::default(),
                )
                .unwrap()
            })
            .collect();
        Net {
            nodes,
            behaviour,
            invalid: BTreeSet::new(),
            queue: VecDeque::new(),
            timeouts: vec![BTreeSet::new(); n],
            decisions: vec![None; n],
            evidence: 0,
            rng: seed.map(ChaCha8Rng::seed_from_u64),
            proposals: Vec::new(),
            relayed: vec![BTreeSet::new(); n],
            powers,
        }
    }

    fn honest(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(|i| self.behaviour[*i] == Behaviour::Honest)
    }

    fn broadcast(&mut self, input: Input<Ctx>) {
        self.send_to(input, |_| true);
    }

    fn send_to(&mut self, input: Input<Ctx>, to: impl Fn(usize) -> bool) {
        if matches!(input, Input::Proposal { .. }) {
            self.proposals.push(input.clone());
        }
        for j in (0..self.nodes.len()).filter(|j| to(*j)) {
            self.queue.push_back((j, input.clone()));
        }
    }

    /// Gossip as the paper assumes it: a message an honest node receives reaches every honest node. Messages
    /// of honest senders were already sent to everyone, so only byzantine senders' messages are relayed
    /// (once per relaying node).
    fn relay(&mut self, to: usize, input: &Input<Ctx>) {
        let sender = match input {
            Input::Proposal { proposer, .. } => proposer.0 as usize,
            Input::Vote { validator, .. } => validator.0 as usize,
            _ => return,
        };
        let byzantine = self.behaviour[sender] != Behaviour::Honest;
        if byzantine
            && self.behaviour[to] == Behaviour::Honest
            && self.relayed[to].insert(format!("{input:?}"))
        {
            for j in 0..self.nodes.len() {
                self.queue.push_back((j, input.clone()));
            }
        }
    }

    /// What an edge does after deciding: re-gossip the decided proposal and the commit, so peers that
    /// missed either (or counted an equivocator's other vote) can decide too.
    fn gossip_decision(&mut self, round: Round, value: u64, commit: Vec<(u32, u32, Option<u64>)>) {
        let decided: Vec<Input<Ctx>> = self
            .proposals
            .iter()
            .filter(|p| matches!(p, Input::Proposal { round: r, value: v, .. } if *r == round && *v == value))
            .cloned()
            .collect();
        for p in decided {
            self.broadcast(p);
        }
        for (validator, r, value) in commit {
            self.broadcast(Input::Vote {
                vote_type: VoteType::Precommit,
                round: Round(r),
                value,
                validator: ValidatorIndex(validator),
                msg: (validator, r, value),
            });
        }
    }

    fn deliver(&mut self, to: usize, input: Input<Ctx>) {
        self.relay(to, &input);
        let outputs = match self.nodes[to].process(input) {
            Ok(outputs) => outputs,
            // Messages of rounds too far ahead are legitimately refused; anything else is a bug.
            Err(DriverError::VoteKeeper(VoteKeeperError::RoundOutsideWindow { .. }))
            | Err(DriverError::ProposalOutsideWindow { .. }) => return,
            Err(e) => panic!("node {to}: {e}"),
        };
        for out in outputs {
            self.handle(to, out);
        }
    }

    fn handle(&mut self, from: usize, out: Output<Ctx>) {
        let behaviour = self.behaviour[from];
        match out {
            Output::Propose {
                round,
                value,
                pol_round,
            } if behaviour != Behaviour::Silent => {
                let validity = if self.invalid.contains(&value) {
                    Validity::Invalid
                } else {
                    Validity::Valid
                };
                let proposal = |value: u64| Input::Proposal {
                    round,
                    value,
                    pol_round,
                    proposer: ValidatorIndex(from as u32),
                    validity,
                    msg: (round.0, value),
                };
                if behaviour == Behaviour::Splitter {
                    self.send_to(proposal(value), |j| j % 2 == 0);
                    self.send_to(proposal(value + 500), |j| j % 2 == 1);
                } else {
                    self.broadcast(proposal(value));
                }
            }
            Output::Vote {
                vote_type,
                round,
                value,
            } if behaviour != Behaviour::Silent => {
                let v = from as u32;
                let vote = |value: Option<u64>| Input::Vote {
                    vote_type,
                    round,
                    value,
                    validator: ValidatorIndex(v),
                    msg: (v, round.0, value),
                };
                let other = value.map_or(Some(424242), |_| None);
                match behaviour {
                    Behaviour::Splitter => {
                        self.send_to(vote(value), |j| j % 2 == 0);
                        self.send_to(vote(other), |j| j % 2 == 1);
                    }
                    Behaviour::Equivocator => {
                        self.broadcast(vote(value));
                        self.broadcast(vote(other));
                    }
                    _ => self.broadcast(vote(value)),
                }
            }
            Output::GetValue { round } => {
                let value = value_of(from, round);
                self.queue
                    .push_front((from, Input::ProposeValue { round, value }));
            }
            Output::ScheduleTimeout(t) => {
                self.timeouts[from].insert(t);
            }
            Output::Decide {
                round,
                value,
                commit,
            } => {
                let power = commit
                    .iter()
                    .map(|(v, _, _)| self.powers[*v as usize])
                    .sum();
                self.decisions[from] = Some((round, value, power));
                if behaviour == Behaviour::Honest {
                    self.gossip_decision(round, value, commit);
                }
            }
            Output::Evidence(_) => self.evidence += 1,
            Output::Propose { .. } | Output::Vote { .. } => {}
        }
    }

    fn random(&mut self, bound: usize) -> usize {
        match &mut self.rng {
            Some(rng) => (rng.next_u64() % bound as u64) as usize,
            None => 0,
        }
    }

    /// Fires one pending timeout: the lowest one of some node (the first node with one, or a random node).
    fn fire_timeout(&mut self) -> bool {
        let pending: Vec<usize> = (0..self.nodes.len())
            .filter(|i| !self.timeouts[*i].is_empty())
            .collect();
        if pending.is_empty() {
            return false;
        }
        let node = pending[self.random(pending.len())];
        if let Some(t) = self.timeouts[node].pop_first() {
            self.deliver(node, Input::TimeoutElapsed(t));
        }
        true
    }

    /// Runs until every non-silent node decided or nothing can happen; returns the steps taken.
    fn run(&mut self, max_steps: usize) -> usize {
        for i in 0..self.nodes.len() {
            self.deliver(i, Input::StartRound { round: Round(0) });
        }
        for step in 0..max_steps {
            if self.honest().all(|i| self.decisions[i].is_some()) {
                return step;
            }
            // With a seed: deliver in random order, duplicate some messages, and fire timeouts early.
            let early_timeout = self.rng.is_some() && self.random(20) == 0;
            if self.queue.is_empty() || early_timeout {
                if !self.fire_timeout() && self.queue.is_empty() {
                    return step;
                }
                continue;
            }
            let idx = self.random(self.queue.len());
            let Some((to, input)) = self.queue.remove(idx) else {
                continue;
            };
            if self.rng.is_some() && self.random(10) == 0 {
                self.queue.push_back((to, input.clone()));
            }
            self.deliver(to, input);
        }
        max_steps
    }

    fn assert_agreement_and_validity(&self) {
        let decided: BTreeSet<u64> = self
            .honest()
            .filter_map(|i| self.decisions[i].map(|d| d.1))
            .collect();
        assert!(decided.len() <= 1, "disagreement: {decided:?}");
        for (round, value, commit) in self.honest().filter_map(|i| self.decisions[i]) {
            let proposed = self.proposals.iter().any(|p| {
                matches!(p, Input::Proposal { round: r, value: v, .. } if *r == round && *v == value)
            });
            assert!(
                proposed,
                "decided {value} in {round:?}, never proposed in that round"
            );
            assert!(!self.invalid.contains(&value), "decided an invalid value");
            let total: u64 = self.powers.iter().sum();
            assert!(
                3 * commit > 2 * total,
                "commit of power {commit} of {total}"
            );
        }
    }
}

#[test]
fn four_honest_nodes_decide_the_first_proposal_in_round_0() {
    let mut net = Net::new(vec![Behaviour::Honest; 4], None);
    net.run(10_000);
    net.assert_agreement_and_validity();
    for i in 0..4 {
        assert_eq!(
            net.decisions[i].map(|d| (d.0, d.1)),
            Some((Round(0), value_of(0, Round(0))))
        );
    }
    assert_eq!(net.evidence, 0);
}

#[test]
fn silent_first_proposer_costs_one_round() {
    let mut net = Net::new(
        vec![
            Behaviour::Silent,
            Behaviour::Honest,
            Behaviour::Honest,
            Behaviour::Honest,
        ],
        None,
    );
    net.run(10_000);
    net.assert_agreement_and_validity();
    for i in 1..4 {
        assert_eq!(
            net.decisions[i].map(|d| (d.0, d.1)),
            Some((Round(1), value_of(1, Round(1))))
        );
    }
}

#[test]
fn invalid_first_proposal_is_never_decided() {
    let mut net = Net::new(vec![Behaviour::Honest; 4], None);
    net.invalid.insert(value_of(0, Round(0)));
    net.run(10_000);
    net.assert_agreement_and_validity();
    assert!(net.honest().all(|i| net.decisions[i].is_some()));
}

#[test]
fn equivocator_is_caught_and_honest_nodes_agree() {
    let mut net = Net::new(
        vec![
            Behaviour::Honest,
            Behaviour::Equivocator,
            Behaviour::Honest,
            Behaviour::Honest,
        ],
        None,
    );
    net.run(10_000);
    net.assert_agreement_and_validity();
    assert!(net.honest().all(|i| net.decisions[i].is_some()));
    assert!(
        net.evidence >= 3,
        "every honest node reports the equivocation"
    );
}

#[test]
fn seeded_reordering_duplication_and_early_timeouts_keep_agreement_and_decide() {
    let seeds: u64 = std::env::var("CORE_NET_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    for seed in 0..seeds {
        let behaviour = match seed % 5 {
            0 => vec![Behaviour::Honest; 4],
            3 => vec![
                Behaviour::Splitter,
                Behaviour::Honest,
                Behaviour::Honest,
                Behaviour::Honest,
            ],
            4 => vec![
                Behaviour::Honest,
                Behaviour::Honest,
                Behaviour::Honest,
                Behaviour::Splitter,
            ],
            1 => vec![
                Behaviour::Honest,
                Behaviour::Honest,
                Behaviour::Equivocator,
                Behaviour::Honest,
            ],
            _ => vec![
                Behaviour::Silent,
                Behaviour::Honest,
                Behaviour::Honest,
                Behaviour::Honest,
            ],
        };
        let mut net = Net::new(behaviour, Some(seed));
        if seed % 5 == 0 {
            net.invalid.insert(value_of(1, Round(1)));
        }
        let steps = net.run(20_000);
        net.assert_agreement_and_validity();
        let undecided: Vec<usize> = net
            .honest()
            .filter(|i| net.decisions[*i].is_none())
            .collect();
        let rounds: Vec<(Round, crate::core::Step)> =
            net.nodes.iter().map(|d| (d.round(), d.step())).collect();
        assert!(
            undecided.is_empty(),
            "seed {seed}: {undecided:?} undecided after {steps} steps; rounds {rounds:?}; queue {}",
            net.queue.len()
        );
    }
}

#[test]
fn splitting_proposer_and_voter_cannot_break_agreement() {
    let mut net = Net::new(
        vec![
            Behaviour::Splitter,
            Behaviour::Honest,
            Behaviour::Honest,
            Behaviour::Honest,
        ],
        None,
    );
    net.run(10_000);
    net.assert_agreement_and_validity();
    assert!(net.honest().all(|i| net.decisions[i].is_some()));
    // Relaying shows honest nodes both sides of the split.
    assert!(net.evidence > 0);
}

#[test]
fn unequal_powers_with_a_light_byzantine_keep_agreement_and_decide() {
    // Total 7; the byzantine node 0 has 1 (< 1/3), so nodes 1-3 (6 of 7) decide without it.
    for seed in 0..200u64 {
        let byzantine = if seed % 2 == 0 {
            Behaviour::Splitter
        } else {
            Behaviour::Equivocator
        };
        let behaviour = vec![
            byzantine,
            Behaviour::Honest,
            Behaviour::Honest,
            Behaviour::Honest,
        ];
        let mut net = Net::with_powers(behaviour, vec![1, 2, 2, 2], Some(seed));
        let steps = net.run(20_000);
        net.assert_agreement_and_validity();
        assert!(
            net.honest().all(|i| net.decisions[i].is_some()),
            "seed {seed}: undecided after {steps} steps"
        );
    }
}
