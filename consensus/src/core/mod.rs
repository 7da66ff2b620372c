//! The pure Tendermint core: vote keeper, round state machine and height driver.
//!
//! Malachite-style split, all pure (no I/O, clock, randomness or async):
//! - [`votekeeper`] tallies one height's votes by voting power (+2/3, +1/3) and detects duplicate votes;
//! - [`state_machine`] is one height's round state machine, `apply(state, input) -> Transition`, following
//!   Algorithm 1 of "The latest gossip on BFT consensus" (Buchman–Kwon–Milosevic) line by line;
//! - [`driver`] owns both plus the received proposals, and turns signed messages into the state machine's
//!   aggregated events and its outputs into what the edge must do (sign and broadcast, schedule a timeout,
//!   ask for a value, decide with the commit, report evidence).
//!
//! # The edge's contract (what the node / simulation glue does around a [`Driver`])
//! 1. Per height, build `Driver::new(height, powers, own_index, proposer_selector, DriverConfig::default())`
//!    and feed [`Input::StartRound`] `{ round: Round(0) }`. Later rounds are started by the driver itself.
//! 2. Feed only messages of this height, with verified signatures; a proposal's `proposer` must be the
//!    round's proposer and `validity` the application's verdict on the block. Keep messages of the next
//!    height for the next driver.
//! 3. Act on every [`Output`] in order: sign + broadcast `Propose`/`Vote` and feed the signed message back
//!    as an input (our own votes count through the same path); run a timer for `ScheduleTimeout` and feed
//!    [`Input::TimeoutElapsed`] when it fires (stale timeouts are ignored, no need to cancel); answer
//!    `GetValue` with [`Input::ProposeValue`]; on `Decide` commit the block with its `commit` and move to
//!    the next height; persist/gossip `Evidence`.
//! 4. Gossip as the paper assumes: what an honest node received should reach the others (relay, or serve
//!    catch-up), and after deciding, serve the decided proposal and its commit to peers still in the height.
//! 5. The driver is deterministic: replaying the same inputs (e.g. from a WAL) reproduces the same outputs.

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
