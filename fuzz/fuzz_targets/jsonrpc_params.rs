//! Any bytes as a JSON-RPC request body, and as a URI query string (`name=value&…`): parsing the envelope
//! and reading every parameter name the node serves, as every accessor type, never panics; an error names
//! a JSON-RPC error code and is itself serialisable.
#![no_main]

use std::collections::BTreeMap;

use basalt_jsonrpc::{err_response, parse_request, BytesEncoding, Params, RpcErr};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Every parameter name a Basalt RPC method takes (see node/src/rpc/methods.rs).
const NAMES: &[&str] = &[
    "height", "hash", "minHeight", "maxHeight", "tx", "path", "data", "prove", "query", "page",
    "per_page", "order_by", "limit", "chunk",
];

fn exercise(params: &Params) {
    for name in NAMES {
        check(params.opt_i64(name).map(|_| ()));
        check(params.opt_str(name).map(|_| ()));
        check(params.req_str(name).map(|_| ()));
        check(params.opt_bool(name).map(|_| ()));
        for encoding in [BytesEncoding::Base64, BytesEncoding::Hex, BytesEncoding::Hash] {
            check(params.opt_bytes(name, encoding).map(|_| ()));
        }
    }
}

fn check(result: Result<(), RpcErr>) {
    if let Err(e) = result {
        assert!(!e.message().is_empty());
        let _ = err_response(&Value::Null, &e).to_string();
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<Value>(data) {
        match parse_request(v) {
            Ok(request) => {
                if let Ok(params) = Params::from_json(request.params, NAMES) {
                    exercise(&params);
                }
            }
            Err((id, e)) => {
                let _ = err_response(&id, &e).to_string();
            }
        }
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let query: BTreeMap<String, String> = text
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    exercise(&Params::Uri(query));
});
