//! Basalt libp2p networking: gossip, block sync, peer scoring.
#![forbid(unsafe_code)]
