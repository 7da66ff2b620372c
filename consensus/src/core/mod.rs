//! The pure Tendermint core: vote keeper, round state machine and height driver.
