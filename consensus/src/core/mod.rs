//! The pure Tendermint core: vote keeper, round state machine and height driver.
//!
//! Malachite-style split, all pure (no I/O, clock, randomness or async):
//! - [`votekeeper`] tallies one height's votes by voting power (+2/3, +1/3) and detects duplicate votes;
//! - [`state_machine`] is one height's round state machine, `apply(state, input) -> Transition`, following
//!   Algorithm 1 of "The latest gossip on BFT consensus" (Buchman–Kwon–Milosevic) line by line;
//! - [`driver`] owns both plus the received proposals, and turns signed messages into the state machine's
//!   aggregated events and its outputs into what the edge must do (sign and broadcast, schedule a timeout,
//!   ask for a value, decide with the commit, report evidence).

pub mod driver;
pub mod state_machine;
pub mod votekeeper;

#[cfg(test)]
mod tests;

pub use driver::{
    Context, Driver, DriverConfig, DriverError, Evidence, Input, Output, ProposerSelector,
    Validity, MAX_PROPOSALS_PER_ROUND,
};
pub use state_machine::{RoundFlags, RoundValue, State, Step, Transition};
pub use votekeeper::{
    VoteEquivocation, VoteEvent, VoteKeeper, VoteKeeperError, VoteRecord, DEFAULT_ROUND_WINDOW,
    MAX_CATCHUP_ROUNDS_PER_VALIDATOR, MAX_VALUES_PER_VALIDATOR,
};
