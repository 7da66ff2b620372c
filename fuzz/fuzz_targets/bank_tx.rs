//! Any bytes as a bank transaction (what RPC `broadcast_tx_*`, tx gossip and block execution decode):
//! never a panic; what decodes is canonical (re-encodes to the same bytes), within the size bound, and
//! satisfies the body's invariants; verifying its signature never panics.
#![no_main]

use basalt_bank_tx::{BankTx, MAX_BANK_TX_BYTES, MAX_GAS_LIMIT};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(tx) = BankTx::decode(data) else {
        return;
    };
    assert!(data.len() <= MAX_BANK_TX_BYTES);
    assert_eq!(tx.to_bytes(), data, "decoding is not canonical");
    let transfer = tx.transfer();
    let body = transfer.body();
    assert!(body.amount >= 1 && body.gas_limit <= MAX_GAS_LIMIT);
    assert_eq!(transfer.to_tx_bytes(), data);
    let _ = transfer.verify();
});
