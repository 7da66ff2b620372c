//! Submitting batches of pre-signed transactions with `broadcast_tx_sync`: a JSON-RPC 2.0 batch request
//! per HTTP POST, or pipelined single requests over one websocket. Every response body and wait is bounded.

use std::collections::HashMap;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::presign::SignedTx;
use super::LoadError;

/// Largest response body read (100 results are about 20 KB).
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// How submissions travel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// JSON-RPC batch requests by HTTP POST.
    #[default]
    Http,
    /// JSON-RPC requests over a websocket (`/websocket`), pipelined.
    Ws,
}

/// What happened to one submitted transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Passed the mempool check (code 0) with the expected hash.
    Accepted,
    /// Refused by the check with a non-zero code.
    Rejected {
        /// The code.
        code: u32,
        /// The node's log.
        log: String,
    },
    /// The node answered with a JSON-RPC error (mempool full, already in cache, catching up, …).
    RpcError {
        /// Message and data.
        message: String,
    },
    /// No answer (connection refused or closed, timeout, unreadable response).
    Transport {
        /// What went wrong.
        message: String,
    },
    /// Accepted, but the node reported a different hash than the SHA-256 of the bytes sent.
    HashMismatch {
        /// The node's hash.
        reported: String,
    },
}

impl Outcome {
    /// A short, bounded key to count this outcome under (`None` when accepted).
    pub fn reason_key(&self) -> Option<String> {
        match self {
            Outcome::Accepted => None,
            Outcome::Rejected { code, .. } => Some(format!("code {code}")),
            Outcome::RpcError { message } => Some(format!("rpc: {}", normalize(message))),
            Outcome::Transport { message } => Some(format!("transport: {}", normalize(message))),
            Outcome::HashMismatch { .. } => Some("hash mismatch".to_owned()),
        }
    }

    /// Whether sending the same transaction again later can succeed: a nonce ahead of a lagging node
    /// (code 4), a full mempool, a node catching up, or no answer at all.
    /// Whether the node holds the transaction after this answer (accepted now, or earlier: "already in
    /// cache").
    pub fn held_by_node(&self) -> bool {
        match self {
            Outcome::Accepted | Outcome::HashMismatch { .. } => true,
            Outcome::RpcError { message } => message.contains("in cache"),
            Outcome::Rejected { .. } | Outcome::Transport { .. } => false,
        }
    }

    /// Whether sending again later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Outcome::Rejected { code, .. } => *code == 4,
            Outcome::RpcError { message } => {
                message.contains("full") || message.contains("catching up")
            }
            Outcome::Transport { .. } => true,
            Outcome::Accepted | Outcome::HashMismatch { .. } => false,
        }
    }
}

/// The stable part of an error message: up to the first ':' or '(', digits replaced, at most 60 chars.
fn normalize(message: &str) -> String {
    message
        .split([':', '('])
        .next()
        .unwrap_or("")
        .trim()
        .chars()
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .take(60)
        .collect()
}

/// The websocket URL (`ws://host:port/websocket`) of a node's RPC address.
pub fn websocket_url(node: &str) -> String {
    let node = node.trim_end_matches('/');
    let rest = node
        .strip_prefix("http://")
        .or_else(|| node.strip_prefix("tcp://"))
        .or_else(|| node.strip_prefix("ws://"));
    match (rest, node.strip_prefix("https://")) {
        (Some(rest), _) => format!("ws://{rest}/websocket"),
        (None, Some(rest)) => format!("wss://{rest}/websocket"),
        (None, None) if node.contains("://") => format!("{node}/websocket"),
        (None, None) => format!("ws://{node}/websocket"),
    }
}

/// The HTTP URL of a node's RPC address.
pub fn http_url(node: &str) -> String {
    let node = node.trim_end_matches('/');
    if let Some(rest) = node.strip_prefix("tcp://") {
        format!("http://{rest}")
    } else if node.contains("://") {
        node.to_owned()
    } else {
        format!("http://{node}")
    }
}

/// One `broadcast_tx_sync` request object.
fn request_text(id: u64, tx: &SignedTx) -> String {
    // base64 needs no JSON escaping, so the text is built without a serializer.
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"broadcast_tx_sync","params":{{"tx":"{}"}}}}"#,
        tx.base64
    )
}

/// A JSON-RPC batch of `broadcast_tx_sync` requests with ids `first_id..`.
pub fn batch_body(txs: &[&SignedTx], first_id: u64) -> String {
    let mut body = String::with_capacity(txs.len() * 320 + 2);
    body.push('[');
    for (i, tx) in txs.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&request_text(first_id + i as u64, tx));
    }
    body.push(']');
    body
}

/// The outcome of one response object for `tx`.
pub fn outcome_of(item: &Value, tx: &SignedTx) -> Outcome {
    if let Some(error) = item.get("error").filter(|e| !e.is_null()) {
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("error");
        let data = error.get("data").and_then(Value::as_str).unwrap_or("");
        return Outcome::RpcError {
            message: format!("{message} {data}").trim().to_owned(),
        };
    }
    let Some(result) = item.get("result") else {
        return Outcome::Transport {
            message: "response without result or error".to_owned(),
        };
    };
    let code = result
        .get("code")
        .and_then(Value::as_u64)
        .unwrap_or(u64::MAX);
    if code != 0 {
        let log = result.get("log").and_then(Value::as_str).unwrap_or("");
        return Outcome::Rejected {
            code: u32::try_from(code).unwrap_or(u32::MAX),
            log: log.chars().take(200).collect(),
        };
    }
    let reported = result.get("hash").and_then(Value::as_str).unwrap_or("");
    if reported.eq_ignore_ascii_case(&tx.hash.to_hex_upper()) {
        Outcome::Accepted
    } else {
        Outcome::HashMismatch {
            reported: reported.chars().take(64).collect(),
        }
    }
}

/// The outcomes of a batch response body for `txs` sent with ids `first_id..`.
pub fn parse_batch_response(body: &[u8], txs: &[&SignedTx], first_id: u64) -> Vec<Outcome> {
    let all = |o: Outcome| vec![o; txs.len()];
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return all(Outcome::Transport {
                message: format!("response is not JSON: {e}"),
            })
        }
    };
    let items = match value {
        Value::Array(items) => items,
        // A whole-batch error (e.g. too many requests) answers with one error object.
        single @ Value::Object(_) => {
            return all(match outcome_of(&single, txs[0]) {
                o @ Outcome::RpcError { .. } => o,
                _ => Outcome::Transport {
                    message: "a batch was answered with a single object".to_owned(),
                },
            })
        }
        _ => {
            return all(Outcome::Transport {
                message: "response is neither an array nor an object".to_owned(),
            })
        }
    };
    let mut by_id: HashMap<u64, &Value> = HashMap::with_capacity(items.len());
    for item in &items {
        if let Some(id) = item.get("id").and_then(Value::as_u64) {
            by_id.insert(id, item);
        }
    }
    txs.iter()
        .enumerate()
        .map(|(i, tx)| match by_id.get(&(first_id + i as u64)) {
            Some(item) => outcome_of(item, tx),
            None => Outcome::Transport {
                message: "no response for this request id".to_owned(),
            },
        })
        .collect()
}

/// A client websocket.
pub type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One connection's submitter.
#[derive(Debug)]
pub enum Submitter {
    /// HTTP POST of batch requests.
    Http {
        /// Client (keeps its connection alive between batches).
        client: reqwest::Client,
        /// The node's URL.
        url: String,
        /// Next request id.
        next_id: u64,
    },
    /// Pipelined requests over a websocket, reconnected after a failure.
    Ws {
        /// The socket, `None` after a failure.
        socket: Option<Box<WsStream>>,
        /// `ws://…/websocket`.
        url: String,
        /// Bound on connecting and on waiting for all answers of a batch.
        timeout: Duration,
        /// Next request id.
        next_id: u64,
    },
}

impl Submitter {
    /// A submitter to `node` (an RPC address such as `http://127.0.0.1:26657`).
    pub async fn connect(
        transport: Transport,
        node: &str,
        timeout: Duration,
    ) -> Result<Submitter, LoadError> {
        match transport {
            Transport::Http => {
                let client = reqwest::Client::builder()
                    .timeout(timeout)
                    .pool_max_idle_per_host(1)
                    .build()
                    .map_err(|e| LoadError::Connect {
                        node: node.to_owned(),
                        reason: e.to_string(),
                    })?;
                Ok(Submitter::Http {
                    client,
                    url: http_url(node),
                    next_id: 0,
                })
            }
            Transport::Ws => {
                let url = websocket_url(node);
                let socket = ws_connect(&url, timeout).await?;
                Ok(Submitter::Ws {
                    socket: Some(Box::new(socket)),
                    url,
                    timeout,
                    next_id: 0,
                })
            }
        }
    }

    /// Submits `txs` and returns one outcome per transaction, in order.
    pub async fn send(&mut self, txs: &[&SignedTx]) -> Vec<Outcome> {
        if txs.is_empty() {
            return Vec::new();
        }
        match self {
            Submitter::Http {
                client,
                url,
                next_id,
            } => {
                let first_id = *next_id;
                *next_id += txs.len() as u64;
                match http_post(client, url, batch_body(txs, first_id)).await {
                    Ok(body) => parse_batch_response(&body, txs, first_id),
                    Err(message) => vec![Outcome::Transport { message }; txs.len()],
                }
            }
            Submitter::Ws {
                socket,
                url,
                timeout,
                next_id,
            } => {
                let first_id = *next_id;
                *next_id += txs.len() as u64;
                if socket.is_none() {
                    match ws_connect(url, *timeout).await {
                        Ok(s) => *socket = Some(Box::new(s)),
                        Err(e) => {
                            return vec![
                                Outcome::Transport {
                                    message: e.to_string()
                                };
                                txs.len()
                            ]
                        }
                    }
                }
                let Some(ws) = socket.as_mut() else {
                    return Vec::new();
                };
                let result = tokio::time::timeout(*timeout, ws_exchange(ws, txs, first_id)).await;
                match result {
                    Ok(Ok(outcomes)) => outcomes,
                    Ok(Err(message)) => {
                        *socket = None;
                        vec![Outcome::Transport { message }; txs.len()]
                    }
                    Err(_) => {
                        *socket = None;
                        vec![
                            Outcome::Transport {
                                message: "timed out waiting for websocket answers".to_owned()
                            };
                            txs.len()
                        ]
                    }
                }
            }
        }
    }
}

async fn http_post(client: &reqwest::Client, url: &str, body: String) -> Result<Vec<u8>, String> {
    let mut response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        if out.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(format!("response larger than {MAX_RESPONSE_BYTES} bytes"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Connects a websocket within `timeout`.
pub async fn ws_connect(url: &str, timeout: Duration) -> Result<WsStream, LoadError> {
    let failed = |reason: String| LoadError::Connect {
        node: url.to_owned(),
        reason,
    };
    match tokio::time::timeout(timeout, tokio_tungstenite::connect_async(url)).await {
        Ok(Ok((socket, _))) => Ok(socket),
        Ok(Err(e)) => Err(failed(e.to_string())),
        Err(_) => Err(failed(format!("timed out after {timeout:?}"))),
    }
}

/// The next text message of `ws`, or why the connection ended.
pub async fn next_text(ws: &mut WsStream) -> Result<Utf8Bytes, String> {
    loop {
        let message = ws
            .next()
            .await
            .ok_or_else(|| "websocket closed".to_owned())?
            .map_err(|e| e.to_string())?;
        match message {
            Message::Text(text) => return Ok(text),
            Message::Close(_) => return Err("websocket closed by the node".to_owned()),
            _ => {}
        }
    }
}

/// Writes every request, then reads until each id is answered.
async fn ws_exchange(
    ws: &mut WsStream,
    txs: &[&SignedTx],
    first_id: u64,
) -> Result<Vec<Outcome>, String> {
    for (i, tx) in txs.iter().enumerate() {
        ws.feed(Message::text(request_text(first_id + i as u64, tx)))
            .await
            .map_err(|e| e.to_string())?;
    }
    ws.flush().await.map_err(|e| e.to_string())?;
    let mut outcomes: Vec<Option<Outcome>> = vec![None; txs.len()];
    let mut missing = txs.len();
    while missing > 0 {
        let text = next_text(ws).await?;
        let Ok(value) = serde_json::from_str::<Value>(text.as_str()) else {
            continue;
        };
        let Some(i) = value
            .get("id")
            .and_then(Value::as_u64)
            .and_then(|id| id.checked_sub(first_id))
            .and_then(|i| usize::try_from(i).ok())
            .filter(|&i| i < txs.len())
        else {
            continue;
        };
        if outcomes[i].is_none() {
            outcomes[i] = Some(outcome_of(&value, txs[i]));
            missing -= 1;
        }
    }
    Ok(outcomes.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use basalt_consensus::types::Hash;
    use serde_json::json;

    fn tx(n: u8) -> SignedTx {
        SignedTx {
            base64: format!("AAA{n}"),
            hash: Hash::digest(&[n]),
        }
    }

    #[test]
    fn batch_body_is_a_json_rpc_batch() {
        let (a, b) = (tx(1), tx(2));
        let body: Value = serde_json::from_str(&batch_body(&[&a, &b], 7)).unwrap();
        assert_eq!(body[0]["id"], 7);
        assert_eq!(body[1]["id"], 8);
        assert_eq!(body[1]["method"], "broadcast_tx_sync");
        assert_eq!(body[1]["params"]["tx"], "AAA2");
        assert_eq!(body[0]["jsonrpc"], "2.0");
    }

    #[test]
    fn batch_responses_are_matched_by_id_and_classified() {
        let (a, b, c, d) = (tx(1), tx(2), tx(3), tx(4));
        let response = json!([
            {"jsonrpc": "2.0", "id": 11, "result": {"code": 4, "log": "nonce 9 but the account's is 3", "hash": "X"}},
            {"jsonrpc": "2.0", "id": 10, "result": {"code": 0, "log": "", "hash": a.hash.to_hex_upper()}},
            {"jsonrpc": "2.0", "id": 12, "error": {"code": -32603, "message": "Internal error", "data": "mempool is full: 50000 txs"}},
        ]);
        let outcomes = parse_batch_response(response.to_string().as_bytes(), &[&a, &b, &c, &d], 10);
        assert_eq!(outcomes[0], Outcome::Accepted);
        assert!(matches!(outcomes[1], Outcome::Rejected { code: 4, .. }));
        assert!(outcomes[1].is_transient());
        assert_eq!(
            outcomes[2].reason_key().unwrap(),
            "rpc: Internal error mempool is full"
        );
        assert!(outcomes[2].is_transient());
        assert!(matches!(outcomes[3], Outcome::Transport { .. }));
        // A whole-batch error applies to every transaction.
        let error = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": "Invalid Request", "data": "batch of 200 requests exceeds max_batch_requests 100"}});
        let outcomes = parse_batch_response(error.to_string().as_bytes(), &[&a, &b], 0);
        assert_eq!(outcomes.len(), 2);
        // Digits are masked and the key is cut at 60 characters, so the classes stay few.
        assert_eq!(
            outcomes[1].reason_key().unwrap(),
            "rpc: Invalid Request batch of ### requests exceeds max_batch_requ"
        );
        assert!(!outcomes[1].is_transient());
        // The wrong hash is caught.
        let wrong = json!([{"id": 0, "result": {"code": 0, "hash": b.hash.to_hex_upper()}}]);
        assert!(matches!(
            parse_batch_response(wrong.to_string().as_bytes(), &[&a], 0)[0],
            Outcome::HashMismatch { .. }
        ));
        assert!(matches!(
            parse_batch_response(b"<html>", &[&a], 0)[0],
            Outcome::Transport { .. }
        ));
    }

    #[test]
    fn urls_are_derived_from_the_rpc_address() {
        assert_eq!(
            websocket_url("http://127.0.0.1:26657"),
            "ws://127.0.0.1:26657/websocket"
        );
        assert_eq!(
            websocket_url("tcp://127.0.0.1:1/"),
            "ws://127.0.0.1:1/websocket"
        );
        assert_eq!(websocket_url("https://h:1"), "wss://h:1/websocket");
        assert_eq!(websocket_url("127.0.0.1:5"), "ws://127.0.0.1:5/websocket");
        assert_eq!(http_url("127.0.0.1:5"), "http://127.0.0.1:5");
        assert_eq!(http_url("tcp://127.0.0.1:5"), "http://127.0.0.1:5");
        assert_eq!(http_url("http://h:1/"), "http://h:1");
    }
}
