//! Watching one node's committed blocks: a websocket subscription to `tm.event='NewBlock'`, each event
//! reduced to its height and the BLAKE2s hashes of its transactions.

use basalt_consensus::types::{tx_hash, Hash};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

/// Request id of the subscription (events arrive as responses with this id).
pub const SUBSCRIBE_ID: u64 = 1;

/// The subscribe request.
pub fn subscribe_request() -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{SUBSCRIBE_ID},"method":"subscribe","params":{{"query":"tm.event='NewBlock'"}}}}"#
    )
}

/// A committed block as the watcher needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockSeen {
    /// Height.
    pub height: u64,
    /// Hashes of its transactions, in block order.
    pub tx_hashes: Vec<Hash>,
}

/// What one websocket message from the subscription is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchMessage {
    /// The answer to `subscribe` (`{}`) or another message that is not an event.
    Other,
    /// A NewBlock event.
    Block(BlockSeen),
    /// The node ended the subscription or refused it (e.g. the client was too slow).
    Error(String),
}

/// Parses one text message of the subscription.
pub fn parse_message(text: &str) -> WatchMessage {
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return WatchMessage::Error(format!(
            "not JSON: {}",
            text.chars().take(80).collect::<String>()
        ));
    };
    if let Some(error) = value.get("error").filter(|e| !e.is_null()) {
        let message = error.get("message").and_then(Value::as_str).unwrap_or("");
        let data = error.get("data").and_then(Value::as_str).unwrap_or("");
        return WatchMessage::Error(format!("{message} {data}").trim().to_owned());
    }
    let Some(block) = value.pointer("/result/data/value/block") else {
        return WatchMessage::Other;
    };
    let Some(height) = block
        .pointer("/header/height")
        .and_then(Value::as_str)
        .and_then(|h| h.parse::<u64>().ok())
    else {
        return WatchMessage::Error("NewBlock event without block.header.height".to_owned());
    };
    let txs = match block.pointer("/data/txs") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(txs)) => txs.clone(),
        Some(_) => {
            return WatchMessage::Error(format!(
                "NewBlock {height}: block.data.txs is not an array"
            ))
        }
    };
    let mut tx_hashes = Vec::with_capacity(txs.len());
    for tx in &txs {
        let Some(bytes) = tx.as_str().and_then(|t| BASE64.decode(t).ok()) else {
            return WatchMessage::Error(format!("NewBlock {height}: a tx is not base64"));
        };
        tx_hashes.push(tx_hash(&bytes));
    }
    WatchMessage::Block(BlockSeen { height, tx_hashes })
}

/// A subscribed websocket.
pub struct Watcher {
    socket: Box<super::submit::WsStream>,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Watcher")
    }
}

impl Watcher {
    /// Connects to `url` and subscribes; returns once the node confirmed the subscription.
    pub async fn subscribe(
        url: &str,
        timeout: std::time::Duration,
    ) -> Result<Watcher, super::LoadError> {
        let failed = |reason: String| super::LoadError::Watch {
            url: url.to_owned(),
            reason,
        };
        let mut socket = super::submit::ws_connect(url, timeout).await?;
        socket
            .send(Message::text(subscribe_request()))
            .await
            .map_err(|e| failed(e.to_string()))?;
        let confirmed = tokio::time::timeout(timeout, async {
            while let Some(message) = socket.next().await {
                let message = message.map_err(|e| e.to_string())?;
                if let Message::Text(text) = message {
                    let value: Value =
                        serde_json::from_str(text.as_str()).map_err(|e| e.to_string())?;
                    if value.get("id").and_then(Value::as_u64) == Some(SUBSCRIBE_ID) {
                        if let Some(error) = value.get("error").filter(|e| !e.is_null()) {
                            return Err(error.to_string());
                        }
                        return Ok(());
                    }
                }
            }
            Err("closed before confirming the subscription".to_owned())
        })
        .await;
        match confirmed {
            Ok(Ok(())) => Ok(Watcher {
                socket: Box::new(socket),
            }),
            Ok(Err(reason)) => Err(failed(reason)),
            Err(_) => Err(failed(format!("no subscribe answer within {timeout:?}"))),
        }
    }

    /// The next block, or why the subscription ended.
    pub async fn next_block(&mut self) -> Result<BlockSeen, String> {
        loop {
            let message = self
                .socket
                .next()
                .await
                .ok_or_else(|| "websocket closed".to_owned())?
                .map_err(|e| e.to_string())?;
            let text = match message {
                Message::Text(text) => text,
                Message::Close(_) => return Err("websocket closed by the node".to_owned()),
                _ => continue,
            };
            match parse_message(text.as_str()) {
                WatchMessage::Block(block) => return Ok(block),
                WatchMessage::Other => continue,
                WatchMessage::Error(reason) => return Err(reason),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    #[test]
    fn new_block_events_give_height_and_tx_hashes() {
        let event = json!({"jsonrpc": "2.0", "id": 1, "result": {
            "query": "tm.event='NewBlock'",
            "data": {"type": "tendermint/event/NewBlock", "value": {
                "block": {"header": {"height": "42"}, "data": {"txs": [BASE64.encode(b"ab"), BASE64.encode(b"c")]}},
            }},
        }});
        assert_eq!(
            parse_message(&event.to_string()),
            WatchMessage::Block(BlockSeen {
                height: 42,
                tx_hashes: vec![tx_hash(b"ab"), tx_hash(b"c")],
            })
        );
        let empty = json!({"id": 1, "result": {"data": {"value": {"block": {"header": {"height": "3"}, "data": {"txs": null}}}}}});
        assert!(
            matches!(parse_message(&empty.to_string()), WatchMessage::Block(b) if b.tx_hashes.is_empty())
        );
        assert_eq!(
            parse_message(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#),
            WatchMessage::Other
        );
    }

    #[test]
    fn cancellations_and_garbage_are_errors() {
        let cancelled = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32000, "message": "Server error", "data": "subscription was cancelled (reason: client is not pulling messages fast enough)"}});
        assert!(
            matches!(parse_message(&cancelled.to_string()), WatchMessage::Error(e) if e.contains("not pulling"))
        );
        assert!(matches!(parse_message("nope"), WatchMessage::Error(_)));
        let bad_tx = json!({"result": {"data": {"value": {"block": {"header": {"height": "3"}, "data": {"txs": ["***"]}}}}}});
        assert!(matches!(
            parse_message(&bad_tx.to_string()),
            WatchMessage::Error(_)
        ));
        let no_height = json!({"result": {"data": {"value": {"block": {"header": {}}}}}});
        assert!(matches!(
            parse_message(&no_height.to_string()),
            WatchMessage::Error(_)
        ));
    }
}
