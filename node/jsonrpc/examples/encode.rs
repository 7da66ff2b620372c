//! How long the RPC server takes to turn an answer into text: `Value`'s `Display` (`to_string`, what the
//! server used) against [`basalt_jsonrpc::encode`], on a `tx_search`-sized answer — eight ICS-20
//! transaction results of 40 event attributes each (~38 KB). Recorded in BENCHMARKS.md.
//!
//! ```sh
//! cargo run --release -p basalt-jsonrpc --example encode
//! ```

use std::time::Instant;

use serde_json::{json, Value};

const ROUNDS: usize = 3;
const ENCODINGS: usize = 2_000;

fn tx_result() -> Value {
    let attributes: Vec<Value> = (0..40)
        .map(|i| {
            json!({"key": format!("packet_attribute_{i}"),
                   "value": format!("value-{i}-{}", "x".repeat(40)), "index": true})
        })
        .collect();
    json!({
        "hash": "AB".repeat(32), "height": "12345", "index": 3,
        "tx_result": {"code": 0, "data": null, "log": "", "info": "", "gas_wanted": "100000",
                      "gas_used": "50000", "codespace": "",
                      "events": [{"type": "send_packet", "attributes": attributes}]},
        "tx": "QUJD".repeat(100),
    })
}

fn main() {
    let result =
        json!({"txs": (0..8).map(|_| tx_result()).collect::<Vec<_>>(), "total_count": "8"});
    let answer = basalt_jsonrpc::ok_response(&json!(1), result);
    for round in 1..=ROUNDS {
        let started = Instant::now();
        let mut bytes = 0;
        for _ in 0..ENCODINGS {
            bytes += answer.to_string().len();
        }
        let display = started.elapsed() / ENCODINGS as u32;
        let started = Instant::now();
        for _ in 0..ENCODINGS {
            bytes += basalt_jsonrpc::encode(&answer).len();
        }
        let encode = started.elapsed() / ENCODINGS as u32;
        println!(
            "round {round}: {} bytes per answer; Display {display:?}, encode {encode:?} per answer",
            bytes / (2 * ENCODINGS)
        );
    }
}
