//! Vote keeper: tallies the votes of ONE height by voting power, per (round, vote type).
//!
//! The keeper answers the quorum questions Algorithm 1 of "The latest gossip on BFT consensus"
//! (Buchman–Kwon–Milosevic) asks: `2f+1` prevotes / precommits for a value, for nil or for anything, and
//! `f+1` messages of any kind in a higher round (line 55). With voting power instead of counts:
//!
//! - **+2/3** ("quorum", the paper's `2f+1`): strictly more than two thirds of the total power,
//!   `3 * p > 2 * total`. Exactly 2/3 is *not* a quorum.
//! - **+1/3** (the paper's `f+1`): strictly more than one third, `3 * p > total`.
//!
//! Sums are `u128` so no realistic validator set can overflow them.
//!
//! A repeated vote (same validator, round, type and value) is an idempotent no-op: gossip delivers
//! duplicates. A vote with a *different* value is an equivocation, reported once per (validator, round, type)
//! with both signed messages as evidence. How equivocating votes are counted follows the paper, whose rules
//! count *messages for a value from distinct senders*:
//! - toward a **value** (or nil) quorum, each (validator, value) pair counts once, so an equivocator's vote
//!   for `v` counts toward `v` on every honest node that received it, whatever else it received first. If
//!   only the first vote counted, two honest nodes could disagree forever on whether a polka or commit
//!   exists (one saw the equivocator's `v` vote first, the other its nil vote), which breaks liveness — the
//!   core's network test found exactly that. Safety is unaffected: two conflicting +2/3 quorums still need
//!   more than 1/3 of power to equivocate;
//! - toward **any**-value quorums (lines 34, 47) and the round-skip threshold (line 55), each validator
//!   counts once, whatever it voted.
//!
//! At most [`MAX_VALUES_PER_VALIDATOR`] distinct values are kept per (validator, round, type) (the evidence
//! was reported with the first conflict). When they are all taken, a vote for a further value replaces the
//! kept one whose value other validators back least, if its own value is backed more and the replaced
//! value has no reported quorum; otherwise it is dropped. So an equivocator cannot crowd out, with votes
//! for made-up values, its vote for the value everyone else is converging on.
//!
//! # Memory bound
//! Votes are kept for rounds `0 ..= current_round + round_window` (the window), and for at most
//! [`MAX_CATCHUP_ROUNDS_PER_VALIDATOR`] further rounds *opened* by each validator: a vote beyond the window
//! for a round nobody opened yet charges its signer one catch-up round (CometBFT's `peerCatchupRounds`, keyed
//! by signer instead of peer); votes for an already-open round are free. This lets a node that lags many
//! rounds behind still see the honest majority's round (line 55) and its commit (line 49) without letting a
//! byzantine validator make us track unboundedly many rounds. A vote beyond the window whose signer has used
//! its allowance is rejected with [`VoteKeeperError::RoundOutsideWindow`] (the edge drops it).
//!
//! Per tracked round the keeper stores at most [`MAX_VALUES_PER_VALIDATOR`] votes per validator per vote
//! type and one sender flag per validator, so memory is
//! `O((current_round + round_window + 1 + MAX_CATCHUP_ROUNDS_PER_VALIDATOR * validators) * validators)`.
//! `current_round` only moves when the driver moves (timeouts, which take real time, or +1/3 of power being
//! in a higher round), so a byzantine minority cannot inflate it.

use crate::primitives::{Round, ValidatorIndex, VoteType, VotingPower};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::hash::Hash;

/// Default number of rounds above the current round for which votes are kept.
pub const DEFAULT_ROUND_WINDOW: u32 = 8;

/// How many rounds beyond the window each validator's votes may open (see the module's memory bound).
pub const MAX_CATCHUP_ROUNDS_PER_VALIDATOR: u32 = 2;

/// How many distinct values (nil included) are kept and counted per (validator, round, vote type).
pub const MAX_VALUES_PER_VALIDATOR: usize = 4;

/// Errors of the vote keeper. Each names the offending data so the edge can log or score the sender.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VoteKeeperError {
    /// The validator set has no voting power, so no quorum could ever form.
    #[error("validator set of {validator_count} validators has zero total voting power")]
    NoVotingPower {
        /// Number of validators given.
        validator_count: usize,
    },
    /// More validators than a [`ValidatorIndex`] can address.
    #[error("validator set has {validator_count} validators, more than a u32 index can address")]
    TooManyValidators {
        /// Number of validators given.
        validator_count: usize,
    },
    /// The vote names a validator index outside the validator set.
    #[error("unknown validator {validator}: the set has {validator_count} validators")]
    UnknownValidator {
        /// The index the vote carried.
        validator: ValidatorIndex,
        /// Size of the validator set.
        validator_count: usize,
    },
    /// The vote's round is beyond the window, not yet open, and its signer used up its catch-up rounds
    /// (see the module's memory bound).
    #[error("vote for round {round} is outside the window (current round {current_round}, window {round_window}) and its signer has no catch-up round left")]
    RoundOutsideWindow {
        /// The vote's round.
        round: Round,
        /// The keeper's current round.
        current_round: Round,
        /// How many rounds above the current one are tracked.
        round_window: u32,
    },
}

/// One vote as handed to the keeper. The signature has already been verified by the edge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoteRecord<V, S> {
    /// Who voted.
    pub validator: ValidatorIndex,
    /// The round voted in.
    pub round: Round,
    /// Prevote or precommit.
    pub vote_type: VoteType,
    /// The value voted for; `None` is a vote for nil.
    pub value: Option<V>,
    /// The signed message, handed back inside evidence and commits.
    pub msg: S,
}

/// Two conflicting signed votes of one validator for the same (round, vote type): proof of equivocation.
/// Both votes are counted toward their own values (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoteEquivocation<V, S> {
    /// The equivocating validator.
    pub validator: ValidatorIndex,
    /// The round of both votes.
    pub round: Round,
    /// The type of both votes.
    pub vote_type: VoteType,
    /// The value of the validator's first vote.
    pub first_value: Option<V>,
    /// The value of the conflicting vote.
    pub second_value: Option<V>,
    /// The validator's first signed vote.
    pub first: S,
    /// The conflicting signed vote.
    pub second: S,
}

/// Something that became true because of the vote just added. Each is reported at most once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VoteEvent<V, S> {
    /// +2/3 prevotes for `value` in `round` (a polka).
    PolkaValue {
        /// The round.
        round: Round,
        /// The value.
        value: V,
    },
    /// +2/3 prevotes for nil in `round`.
    PolkaNil {
        /// The round.
        round: Round,
    },
    /// +2/3 prevotes of any kind in `round` (Algorithm 1, line 34).
    PolkaAny {
        /// The round.
        round: Round,
    },
    /// +2/3 precommits for `value` in `round` (a commit quorum, line 49).
    PrecommitValue {
        /// The round.
        round: Round,
        /// The value.
        value: V,
    },
    /// +2/3 precommits for nil in `round`.
    PrecommitNil {
        /// The round.
        round: Round,
    },
    /// +2/3 precommits of any kind in `round` (line 47).
    PrecommitAny {
        /// The round.
        round: Round,
    },
    /// +1/3 of power has sent some vote in `round`, which is above the current round (line 55).
    SkipRound {
        /// The round to skip to.
        round: Round,
    },
    /// A validator sent two different votes for the same (round, vote type). Reported once per
    /// (validator, round, type), on the first conflicting vote.
    Equivocation(VoteEquivocation<V, S>),
}

/// A counted vote: its value and the signed message.
#[derive(Clone, Debug)]
struct CountedVote<V, S> {
    value: Option<V>,
    msg: S,
}

/// The votes of one type in one round.
#[derive(Clone, Debug)]
struct Tally<V, S> {
    /// Per validator, its distinct votes in arrival order (at most [`MAX_VALUES_PER_VALIDATOR`]).
    votes: BTreeMap<ValidatorIndex, Vec<CountedVote<V, S>>>,
    /// Power per value; `None` is nil. Each (validator, value) pair counted once.
    power_by_value: BTreeMap<Option<V>, u128>,
    /// Power of the validators with at least one vote (each counted once).
    power_any: u128,
    /// Value quorums already reported.
    reported_values: BTreeSet<Option<V>>,
    /// Whether the +2/3-any quorum was reported.
    reported_any: bool,
}

impl<V: Ord, S> Default for Tally<V, S> {
    fn default() -> Self {
        Tally {
            votes: BTreeMap::new(),
            power_by_value: BTreeMap::new(),
            power_any: 0,
            reported_values: BTreeSet::new(),
            reported_any: false,
        }
    }
}

/// The votes of one round.
#[derive(Clone, Debug)]
struct RoundVotes<V, S> {
    prevotes: Tally<V, S>,
    precommits: Tally<V, S>,
    /// Validators that sent any counted vote in this round (for line 55).
    senders: BTreeSet<ValidatorIndex>,
    /// Power of `senders`.
    sender_power: u128,
    /// Whether `SkipRound` was reported for this round.
    reported_skip: bool,
}

impl<V: Ord, S> Default for RoundVotes<V, S> {
    fn default() -> Self {
        RoundVotes {
            prevotes: Tally::default(),
            precommits: Tally::default(),
            senders: BTreeSet::new(),
            sender_power: 0,
            reported_skip: false,
        }
    }
}

impl<V, S> RoundVotes<V, S> {
    fn tally(&self, vote_type: VoteType) -> &Tally<V, S> {
        match vote_type {
            VoteType::Prevote => &self.prevotes,
            VoteType::Precommit => &self.precommits,
        }
    }

    fn tally_mut(&mut self, vote_type: VoteType) -> &mut Tally<V, S> {
        match vote_type {
            VoteType::Prevote => &mut self.prevotes,
            VoteType::Precommit => &mut self.precommits,
        }
    }
}

/// `3 * power > 2 * total`: strictly more than two thirds.
fn is_two_thirds(power: u128, total: u128) -> bool {
    power.saturating_mul(3) > total.saturating_mul(2)
}

/// `3 * power > total`: strictly more than one third.
fn is_one_third(power: u128, total: u128) -> bool {
    power.saturating_mul(3) > total
}

/// Tallies the votes of one height. See the module docs for thresholds and the memory bound.
#[derive(Clone, Debug)]
pub struct VoteKeeper<V, S> {
    /// Voting power indexed by [`ValidatorIndex`].
    powers: Vec<VotingPower>,
    /// Sum of `powers`, precomputed.
    total_power: u128,
    /// The round the driver is in; rounds above it count toward round skips.
    current_round: Round,
    /// Rounds `current_round + 1 ..= current_round + round_window` are also tracked.
    round_window: u32,
    rounds: BTreeMap<Round, RoundVotes<V, S>>,
    /// Rounds beyond the window opened by each validator's votes; never refunded within the height.
    catchup_rounds_used: BTreeMap<ValidatorIndex, u32>,
}

impl<V, S> VoteKeeper<V, S>
where
    V: Clone + Eq + Ord + Hash + Debug,
    S: Clone + Debug,
{
    /// A keeper for a validator set given as powers indexed by [`ValidatorIndex`], starting in round 0.
    pub fn new(powers: Vec<VotingPower>, round_window: u32) -> Result<Self, VoteKeeperError> {
        let validator_count = powers.len();
        if u32::try_from(validator_count).is_err() {
            return Err(VoteKeeperError::TooManyValidators { validator_count });
        }
        let total_power: u128 = powers.iter().map(|p| u128::from(*p)).sum();
        if total_power == 0 {
            return Err(VoteKeeperError::NoVotingPower { validator_count });
        }
        Ok(VoteKeeper {
            powers,
            total_power,
            current_round: Round(0),
            round_window,
            rounds: BTreeMap::new(),
            catchup_rounds_used: BTreeMap::new(),
        })
    }

    /// Total voting power of the validator set.
    pub fn total_power(&self) -> u128 {
        self.total_power
    }

    /// Number of validators.
    pub fn validator_count(&self) -> usize {
        self.powers.len()
    }

    /// The round the keeper considers current.
    pub fn current_round(&self) -> Round {
        self.current_round
    }

    /// The highest round of the window (votes above it need an open round or a catch-up allowance).
    pub fn max_tracked_round(&self) -> Round {
        Round(self.current_round.0.saturating_add(self.round_window))
    }

    /// Whether votes (and the driver's proposals) for `round` are kept: inside the window, or opened as a
    /// catch-up round.
    pub fn is_tracked(&self, round: Round) -> bool {
        round <= self.max_tracked_round() || self.rounds.contains_key(&round)
    }

    /// Tells the keeper the driver moved to `round` (moves the window; never moves backwards).
    pub fn set_round(&mut self, round: Round) {
        if round > self.current_round {
            self.current_round = round;
        }
    }

    /// Adds a verified vote and returns what became newly true (each threshold reported once), or the
    /// equivocation evidence if the validator already voted differently for this (round, vote type).
    pub fn add_vote(
        &mut self,
        vote: VoteRecord<V, S>,
    ) -> Result<Vec<VoteEvent<V, S>>, VoteKeeperError> {
        let power = self.power_of(vote.validator)?;
        self.admit_round(vote.validator, vote.round)?;
        let total = self.total_power;
        let above_current = vote.round > self.current_round;
        let round_votes = self.rounds.entry(vote.round).or_default();
        let tally = round_votes.tally_mut(vote.vote_type);
        let mut events = match tally.votes.get(&vote.validator) {
            None => Vec::new(),
            Some(previous) if previous.iter().any(|cv| cv.value == vote.value) => {
                return Ok(Vec::new()); // a duplicate
            }
            Some(previous) if previous.len() < MAX_VALUES_PER_VALIDATOR => {
                equivocation_evidence(previous, &vote).into_iter().collect()
            }
            Some(_) => {
                // Full: the vote may only take the place of a value with less support (the evidence was
                // reported with the first conflict).
                if !tally.displace_weakest(vote.validator, power, vote.value.as_ref()) {
                    return Ok(Vec::new());
                }
                Vec::new()
            }
        };
        count_vote(tally, power, total, &vote, &mut events);
        if round_votes.senders.insert(vote.validator) {
            round_votes.sender_power = round_votes.sender_power.saturating_add(power);
        }
        // Line 55 only matters for rounds above ours; a threshold crossed in a past round stays unreported.
        if above_current
            && !round_votes.reported_skip
            && is_one_third(round_votes.sender_power, total)
        {
            round_votes.reported_skip = true;
            events.push(VoteEvent::SkipRound { round: vote.round });
        }
        Ok(events)
    }

    /// Checks `round` is tracked, or opens it as a catch-up round charged to `validator`.
    fn admit_round(
        &mut self,
        validator: ValidatorIndex,
        round: Round,
    ) -> Result<(), VoteKeeperError> {
        if self.is_tracked(round) {
            return Ok(());
        }
        let used = self.catchup_rounds_used.entry(validator).or_insert(0);
        if *used >= MAX_CATCHUP_ROUNDS_PER_VALIDATOR {
            return Err(VoteKeeperError::RoundOutsideWindow {
                round,
                current_round: self.current_round,
                round_window: self.round_window,
            });
        }
        // The caller inserts the round right after this check, which is what the charge pays for.
        *used += 1;
        Ok(())
    }

    fn power_of(&self, validator: ValidatorIndex) -> Result<u128, VoteKeeperError> {
        usize::try_from(validator.0)
            .ok()
            .and_then(|i| self.powers.get(i))
            .map(|p| u128::from(*p))
            .ok_or(VoteKeeperError::UnknownValidator {
                validator,
                validator_count: self.powers.len(),
            })
    }

    fn tally(&self, round: Round, vote_type: VoteType) -> Option<&Tally<V, S>> {
        self.rounds.get(&round).map(|r| r.tally(vote_type))
    }

    /// Power of the counted votes of `vote_type` in `round` for `value` (`None` = nil).
    pub fn power_for(&self, round: Round, vote_type: VoteType, value: Option<&V>) -> u128 {
        let Some(tally) = self.tally(round, vote_type) else {
            return 0;
        };
        let key = value.cloned();
        tally.power_by_value.get(&key).copied().unwrap_or(0)
    }

    /// Power of all counted votes of `vote_type` in `round`, whatever their value.
    pub fn power_any(&self, round: Round, vote_type: VoteType) -> u128 {
        self.tally(round, vote_type).map_or(0, |t| t.power_any)
    }

    /// Power of the validators that sent any counted vote in `round`.
    pub fn sender_power(&self, round: Round) -> u128 {
        self.rounds.get(&round).map_or(0, |r| r.sender_power)
    }

    /// +2/3 prevotes for `value` in `round`.
    pub fn has_polka_for(&self, round: Round, value: &V) -> bool {
        is_two_thirds(
            self.power_for(round, VoteType::Prevote, Some(value)),
            self.total_power,
        )
    }

    /// +2/3 prevotes for nil in `round`.
    pub fn has_polka_nil(&self, round: Round) -> bool {
        is_two_thirds(
            self.power_for(round, VoteType::Prevote, None),
            self.total_power,
        )
    }

    /// +2/3 prevotes of any kind in `round`.
    pub fn has_polka_any(&self, round: Round) -> bool {
        is_two_thirds(self.power_any(round, VoteType::Prevote), self.total_power)
    }

    /// +2/3 precommits for `value` in `round`.
    pub fn has_precommit_quorum_for(&self, round: Round, value: &V) -> bool {
        is_two_thirds(
            self.power_for(round, VoteType::Precommit, Some(value)),
            self.total_power,
        )
    }

    /// +2/3 precommits for nil in `round`.
    pub fn has_precommit_nil(&self, round: Round) -> bool {
        is_two_thirds(
            self.power_for(round, VoteType::Precommit, None),
            self.total_power,
        )
    }

    /// +2/3 precommits of any kind in `round`.
    pub fn has_precommit_any(&self, round: Round) -> bool {
        is_two_thirds(self.power_any(round, VoteType::Precommit), self.total_power)
    }

    /// +1/3 of power sent some vote in `round`.
    pub fn has_skip_quorum(&self, round: Round) -> bool {
        is_one_third(self.sender_power(round), self.total_power)
    }

    /// The highest round above `round` in which +1/3 of power has voted (line 55), if any.
    pub fn skip_round_above(&self, round: Round) -> Option<Round> {
        self.rounds
            .range(round.next()..)
            .rev()
            .find(|(_, rv)| is_one_third(rv.sender_power, self.total_power))
            .map(|(r, _)| *r)
            .filter(|r| *r > round)
    }

    /// Every (round, value) with +2/3 precommits for the value. Two values of one round both have a quorum
    /// only if more than 1/3 of power equivocated, so with the usual assumption this has at most one entry
    /// per tracked round.
    pub fn precommit_quorums(&self) -> Vec<(Round, V)> {
        let total = self.total_power;
        let mut out = Vec::new();
        for (round, rv) in &self.rounds {
            for (value, power) in &rv.precommits.power_by_value {
                if let (Some(v), true) = (value, is_two_thirds(*power, total)) {
                    out.push((*round, v.clone()));
                }
            }
        }
        out
    }

    /// The counted signed precommits for `value` in `round`, in validator-index order (the commit).
    pub fn precommits_for(&self, round: Round, value: &V) -> Vec<S> {
        self.votes_for(round, VoteType::Precommit, Some(value))
    }

    /// All signed votes of (`round`, `vote_type`) for `value` (`None` = nil), in validator-index order,
    /// including an equivocator's vote for it even if its first vote was for something else. This is what a
    /// proof-of-lock consists of, so it is what a node relays to peers that lack it.
    pub fn votes_for(&self, round: Round, vote_type: VoteType, value: Option<&V>) -> Vec<S> {
        let Some(tally) = self.tally(round, vote_type) else {
            return Vec::new();
        };
        tally
            .votes
            .values()
            .flatten()
            .filter(|cv| cv.value.as_ref() == value)
            .map(|cv| cv.msg.clone())
            .collect()
    }

    /// Every counted signed vote of (`round`, `vote_type`), whatever its value, in validator-index order
    /// (an equivocator's votes, at most [`MAX_VALUES_PER_VALIDATOR`], all included). What a peer still in
    /// that round needs from us to reach the quorum we may have seen and it has not.
    pub fn votes_of(&self, round: Round, vote_type: VoteType) -> Vec<S> {
        let Some(tally) = self.tally(round, vote_type) else {
            return Vec::new();
        };
        tally
            .votes
            .values()
            .flatten()
            .map(|cv| cv.msg.clone())
            .collect()
    }

    /// The earliest kept signed vote of `validator` for (`round`, `vote_type`), if any.
    pub fn vote_of(
        &self,
        round: Round,
        vote_type: VoteType,
        validator: ValidatorIndex,
    ) -> Option<&S> {
        self.tally(round, vote_type)
            .and_then(|t| t.votes.get(&validator))
            .and_then(|votes| votes.first())
            .map(|cv| &cv.msg)
    }

    /// Number of rounds with at least one stored vote (for tests and metrics of the memory bound).
    pub fn tracked_rounds(&self) -> usize {
        self.rounds.len()
    }
}

impl<V: Clone + Ord, S> Tally<V, S> {
    /// Makes room among an equivocator's kept votes (all [`MAX_VALUES_PER_VALIDATOR`] taken) for a vote
    /// for `value`, by dropping its kept vote for the value with the least support from *other*
    /// validators, if `value` has strictly more and the dropped value has no reported quorum. Returns
    /// whether room was made.
    ///
    /// Why: an equivocator could otherwise fill its slots at one node with votes for made-up values before
    /// that node receives its vote for the value the honest validators are converging on, and the node
    /// could never count that vote (byzantine seed 1005780 on 053bb4c: an honest node never saw the
    /// round-0 polka the others were locked on, and with its power needed, no round ever decided). A vote
    /// that matters for a quorum is for a value others back, so it wins the place; made-up values are
    /// backed by byzantine power at most, under 1/3. Relayed votes arrive again, so a vote that lost
    /// while its value had little support is counted once the value has more.
    fn displace_weakest(
        &mut self,
        validator: ValidatorIndex,
        power: u128,
        value: Option<&V>,
    ) -> bool {
        let support = |tally: &Tally<V, S>, v: Option<&V>| {
            tally.power_by_value.get(&v.cloned()).copied().unwrap_or(0)
        };
        let incoming = support(self, value);
        let Some(kept) = self.votes.get(&validator) else {
            return false;
        };
        // The weakest kept value without a reported quorum; the latest among equals.
        let weakest = kept
            .iter()
            .enumerate()
            .filter(|(_, cv)| !self.reported_values.contains(&cv.value))
            .map(|(i, cv)| (support(self, cv.value.as_ref()).saturating_sub(power), i))
            .min_by_key(|&(others, i)| (others, std::cmp::Reverse(i)));
        let Some((others, index)) = weakest else {
            return false;
        };
        if incoming <= others {
            return false;
        }
        let Some(kept) = self.votes.get_mut(&validator) else {
            return false;
        };
        let dropped = kept.remove(index);
        if let Some(p) = self.power_by_value.get_mut(&dropped.value) {
            *p = p.saturating_sub(power);
            if *p == 0 {
                self.power_by_value.remove(&dropped.value);
            }
        }
        true
    }
}

/// Evidence for the first conflicting vote of a validator (later ones add no new evidence).
fn equivocation_evidence<V: Clone, S: Clone>(
    previous: &[CountedVote<V, S>],
    vote: &VoteRecord<V, S>,
) -> Option<VoteEvent<V, S>> {
    let [first] = previous else {
        return None;
    };
    Some(VoteEvent::Equivocation(VoteEquivocation {
        validator: vote.validator,
        round: vote.round,
        vote_type: vote.vote_type,
        first_value: first.value.clone(),
        second_value: vote.value.clone(),
        first: first.msg.clone(),
        second: vote.msg.clone(),
    }))
}

/// Counts a new (validator, value) vote into `tally` and appends the newly crossed +2/3 thresholds,
/// the value-specific one before the "any" one so the state machine sees the stronger fact first.
fn count_vote<V, S>(
    tally: &mut Tally<V, S>,
    power: u128,
    total: u128,
    vote: &VoteRecord<V, S>,
    events: &mut Vec<VoteEvent<V, S>>,
) where
    V: Clone + Ord,
    S: Clone,
{
    let votes = tally.votes.entry(vote.validator).or_default();
    let first_vote = votes.is_empty();
    votes.push(CountedVote {
        value: vote.value.clone(),
        msg: vote.msg.clone(),
    });
    let value_power = tally.power_by_value.entry(vote.value.clone()).or_insert(0);
    *value_power = value_power.saturating_add(power);
    let value_power = *value_power;
    if first_vote {
        tally.power_any = tally.power_any.saturating_add(power);
    }
    if is_two_thirds(value_power, total) && tally.reported_values.insert(vote.value.clone()) {
        events.push(value_event(vote.vote_type, vote.round, vote.value.clone()));
    }
    if is_two_thirds(tally.power_any, total) && !tally.reported_any {
        tally.reported_any = true;
        events.push(match vote.vote_type {
            VoteType::Prevote => VoteEvent::PolkaAny { round: vote.round },
            VoteType::Precommit => VoteEvent::PrecommitAny { round: vote.round },
        });
    }
}

fn value_event<V, S>(vote_type: VoteType, round: Round, value: Option<V>) -> VoteEvent<V, S> {
    match (vote_type, value) {
        (VoteType::Prevote, Some(value)) => VoteEvent::PolkaValue { round, value },
        (VoteType::Prevote, None) => VoteEvent::PolkaNil { round },
        (VoteType::Precommit, Some(value)) => VoteEvent::PrecommitValue { round, value },
        (VoteType::Precommit, None) => VoteEvent::PrecommitNil { round },
    }
}
