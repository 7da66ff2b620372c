//! Any bytes as a validator-update transaction (what RPC `broadcast_tx_*`, tx gossip and block
//! execution decode): never a panic; what decodes is canonical (re-encodes to the same bytes), within
//! the size bound, and satisfies the body's invariants; verifying its signature never panics.
#![no_main]

use basalt_bank_tx::validator::{
    SignedValidatorTx, MAX_CHANGES, MAX_GAS_LIMIT, MAX_VALIDATOR_TX_BYTES,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(tx) = SignedValidatorTx::decode(data) else {
        return;
    };
    assert!(data.len() <= MAX_VALIDATOR_TX_BYTES);
    assert_eq!(tx.to_bytes(), data, "decoding is not canonical");
    let body = tx.body();
    assert!(!body.changes.is_empty() && body.changes.len() <= MAX_CHANGES);
    assert!(body.gas_limit <= MAX_GAS_LIMIT);
    assert_eq!(body.validator_changes().len(), body.changes.len());
    let _ = tx.verify();
});
