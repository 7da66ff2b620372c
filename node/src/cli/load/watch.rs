//! Watching one node's committed blocks, every height in order: a websocket subscription to
//! `tm.event='NewBlock'` while it lasts, and the `block` method by height for heights the subscription
//! skipped and after it ended (the node cancels subscribers that fall behind), so commit tracking never
//! silently stops: it goes on, or the run fails saying why. Each block is reduced to its height and the
//! hashes of its transactions (SHA-256, as `Tx::hash`).

use std::time::{Duration, Instant};

use basalt_consensus::types::{tx_hash, Hash};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use crate::cli::tx::client::RpcClient;

/// Largest `block` answer read when polling (a block is at most 16 MiB, base64 in JSON).
pub const MAX_BLOCK_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// Pause between polls for a block the node does not have yet.
const POLL_EVERY: Duration = Duration::from_millis(20);

/// Request id of the subscription (events arrive as responses with this id).
pub const SUBSCRIBE_ID: u64 = 1;

/// The subscribe request for `query` (the watcher's is `tm.event='NewBlock'`).
pub fn subscribe_request(query: &str) -> String {
    serde_json::json!({"jsonrpc": "2.0", "id": SUBSCRIBE_ID, "method": "subscribe",
                       "params": {"query": query}})
    .to_string()
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
    match parse_block(block) {
        Ok(block) => WatchMessage::Block(block),
        Err(reason) => WatchMessage::Error(reason),
    }
}

/// A block in CometBFT's JSON shape (an event's `block`, or the `block` method's `result.block`).
pub fn parse_block(block: &Value) -> Result<BlockSeen, String> {
    let Some(height) = block
        .pointer("/header/height")
        .and_then(Value::as_str)
        .and_then(|h| h.parse::<u64>().ok())
    else {
        return Err("block without header.height".to_owned());
    };
    let txs = match block.pointer("/data/txs") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(txs)) => txs.as_slice(),
        Some(_) => return Err(format!("block {height}: data.txs is not an array")),
    };
    let mut tx_hashes = Vec::with_capacity(txs.len());
    for tx in txs {
        let Some(bytes) = tx.as_str().and_then(|t| BASE64.decode(t).ok()) else {
            return Err(format!("block {height}: a tx is not base64"));
        };
        tx_hashes.push(tx_hash(&bytes));
    }
    Ok(BlockSeen { height, tx_hashes })
}

/// Follows one node's blocks (see the module docs).
pub struct Watcher {
    /// The subscription, until it ends.
    socket: Option<Box<super::submit::WsStream>>,
    /// Reads blocks by height.
    rpc: RpcClient,
    /// The next height to deliver (`None` before the first block).
    next: Option<u64>,
    /// A block the subscription delivered ahead of `next`: heights before it are read first.
    ahead: Option<BlockSeen>,
    /// How long a height may stay unreadable before tracking fails.
    patience: Duration,
    /// Why the subscription ended, once it did.
    fallback: Option<String>,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("subscribed", &self.socket.is_some())
            .field("next", &self.next)
            .field("fallback", &self.fallback)
            .finish()
    }
}

impl Watcher {
    /// Subscribes at `ws_url` (and reads blocks at `http_url` when needed); returns once the node
    /// confirmed the subscription. A height unreadable for `timeout` fails the tracking.
    pub async fn subscribe(
        ws_url: &str,
        http_url: &str,
        timeout: Duration,
    ) -> Result<Watcher, super::LoadError> {
        let failed = |reason: String| super::LoadError::Watch {
            url: ws_url.to_owned(),
            reason,
        };
        let rpc = RpcClient::new(http_url, timeout)
            .map_err(|e| failed(e.to_string()))?
            .with_max_response_bytes(MAX_BLOCK_RESPONSE_BYTES);
        let mut socket = super::submit::ws_connect(ws_url, timeout).await?;
        socket
            .send(Message::text(subscribe_request("tm.event='NewBlock'")))
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
                socket: Some(Box::new(socket)),
                rpc,
                next: None,
                ahead: None,
                patience: timeout,
                fallback: None,
            }),
            Ok(Err(reason)) => Err(failed(reason)),
            Err(_) => Err(failed(format!("no subscribe answer within {timeout:?}"))),
        }
    }

    /// Why the subscription ended, if it did (blocks are read by height since).
    pub fn fallback(&self) -> Option<&str> {
        self.fallback.as_deref()
    }

    /// The next block in height order, or why tracking failed (a height stayed unreadable).
    pub async fn next_block(&mut self) -> Result<BlockSeen, String> {
        loop {
            if let Some(next) = self.next {
                // Heights the subscription skipped come first, read by height.
                if let Some(ahead) = self.ahead.take() {
                    if ahead.height == next {
                        self.next = Some(next + 1);
                        return Ok(ahead);
                    }
                    if ahead.height > next {
                        self.ahead = Some(ahead);
                        let block = self.read(next).await?;
                        self.next = Some(next + 1);
                        return Ok(block);
                    }
                }
            }
            let Some(socket) = self.socket.as_mut() else {
                let next = match self.next {
                    Some(next) => next,
                    None => self.latest().await? + 1,
                };
                let block = self.read(next).await?;
                self.next = Some(next + 1);
                return Ok(block);
            };
            match next_event(socket).await {
                Ok(block) => match self.next {
                    None => {
                        self.next = Some(block.height + 1);
                        return Ok(block);
                    }
                    Some(next) if block.height < next => continue,
                    Some(next) if block.height == next => {
                        self.next = Some(next + 1);
                        return Ok(block);
                    }
                    Some(_) => self.ahead = Some(block),
                },
                Err(reason) => {
                    self.socket = None;
                    self.fallback = Some(reason);
                }
            }
        }
    }

    /// The block at `height`, waiting (up to the patience) for the node to have it.
    async fn read(&self, height: u64) -> Result<BlockSeen, String> {
        let started = Instant::now();
        loop {
            let answer = self
                .rpc
                .call("block", serde_json::json!({"height": height.to_string()}))
                .await;
            match answer {
                Ok(result) => {
                    let block = result
                        .get("block")
                        .ok_or_else(|| format!("block {height}: no block in the answer"))?;
                    let block = parse_block(block)?;
                    if block.height != height {
                        return Err(format!(
                            "asked for block {height}, the node answered {}",
                            block.height
                        ));
                    }
                    return Ok(block);
                }
                Err(e) if started.elapsed() >= self.patience => {
                    return Err(format!(
                        "block {height} unreadable for {:?}: {e}",
                        self.patience
                    ));
                }
                Err(_) => tokio::time::sleep(POLL_EVERY).await,
            }
        }
    }

    /// The node's latest height (where polling starts when the subscription ended before any block).
    async fn latest(&self) -> Result<u64, String> {
        let status = self
            .rpc
            .call("status", serde_json::json!({}))
            .await
            .map_err(|e| e.to_string())?;
        status
            .pointer("/sync_info/latest_block_height")
            .and_then(Value::as_str)
            .and_then(|h| h.parse().ok())
            .ok_or_else(|| "status without sync_info.latest_block_height".to_owned())
    }
}

/// The next block event of the subscription, or why it ended.
async fn next_event(socket: &mut super::submit::WsStream) -> Result<BlockSeen, String> {
    loop {
        let text = super::submit::next_text(socket).await?;
        match parse_message(text.as_str()) {
            WatchMessage::Block(block) => return Ok(block),
            WatchMessage::Other => continue,
            WatchMessage::Error(reason) => return Err(reason),
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
