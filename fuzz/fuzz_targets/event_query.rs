//! Any bytes as an event query (`tx_search`'s and `block_search`'s `query`, websocket `subscribe`): parsing
//! never panics; what parses is within the byte and condition bounds, every condition has a key, and the
//! derived views (event kind, height range) never panic.
#![no_main]

use basalt_jsonrpc::query::{TxQuery, MAX_CONDITIONS, MAX_QUERY_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(query) = TxQuery::parse(text) else {
        return;
    };
    assert!(text.len() <= MAX_QUERY_BYTES);
    assert!(!query.conditions().is_empty() && query.conditions().len() <= MAX_CONDITIONS);
    assert!(query.conditions().iter().all(|c| !c.key.is_empty()));
    assert_eq!(query.as_str(), text);
    let _ = query.event_kind();
    let _ = query.height_range();
    // Parsing is a function of the text.
    assert_eq!(TxQuery::parse(query.as_str()).ok(), Some(query));
});
