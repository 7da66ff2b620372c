//! A minimal CometBFT JSON-RPC 2.0 client for the `tx` commands: `status`, `abci_query` and
//! `broadcast_tx_sync` over HTTP POST, with a timeout and a bound on the response size.

use std::time::Duration;

use basalt_consensus::types::{Address, ChainId};
use basalt_state::bank::Account;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::Deserialize;

use super::TxError;

/// Largest response body read (`status`, one account and a broadcast result are a few KiB).
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// The result of `broadcast_tx_sync` (CometBFT shape; `data` is base64, `hash` upper-case hex).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BroadcastResult {
    /// 0 if the transaction passed the mempool check.
    pub code: u32,
    /// Result data, base64.
    #[serde(default)]
    pub data: String,
    /// The check's log.
    #[serde(default)]
    pub log: String,
    /// Namespace of the code.
    #[serde(default)]
    pub codespace: String,
    /// The transaction hash, upper-case hex.
    pub hash: String,
}

/// A JSON-RPC client for one node.
#[derive(Debug, Clone)]
pub struct RpcClient {
    http: reqwest::Client,
    url: String,
    max_response_bytes: usize,
}

impl RpcClient {
    /// A client for `url` (e.g. `http://127.0.0.1:26657`) with a per-request timeout.
    pub fn new(url: &str, timeout: Duration) -> Result<RpcClient, TxError> {
        let url = if url.contains("://") {
            url.to_owned()
        } else {
            format!("http://{url}")
        };
        let url = url.replacen("tcp://", "http://", 1);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| TxError::Rpc {
                method: "connect",
                reason: e.to_string(),
            })?;
        Ok(RpcClient {
            http,
            url,
            max_response_bytes: MAX_RESPONSE_BYTES,
        })
    }

    /// The same client, reading answers of up to `max` bytes (default [`MAX_RESPONSE_BYTES`]; whole
    /// blocks need more).
    pub fn with_max_response_bytes(mut self, max: usize) -> RpcClient {
        self.max_response_bytes = max;
        self
    }

    /// Calls `method` with `params` and returns `result`.
    pub async fn call(
        &self,
        method: &'static str,
        params: serde_json::Value,
    ) -> Result<serde_json::Value, TxError> {
        let request =
            serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let (status, reply) = self.exchange(method, &request).await?;
        answer(method, status, &reply)
    }

    /// Calls `method` once per entry of `params`, in JSON-RPC batches of at most `per_request` calls
    /// (sent at once), and returns each `result` in the order of `params`. One request per batch
    /// instead of per call: a node's cost of a small call is mostly its HTTP request. A node refusing
    /// the batch itself (too many calls for it) is sent the calls one by one; one refused call fails
    /// the whole call.
    pub async fn call_batch(
        &self,
        method: &'static str,
        params: Vec<serde_json::Value>,
        per_request: usize,
    ) -> Result<Vec<serde_json::Value>, TxError> {
        let failed = |reason: String| TxError::Rpc { method, reason };
        let batches = params.chunks(per_request.max(1)).map(|chunk| async move {
            let request: Vec<serde_json::Value> = chunk
                .iter()
                .enumerate()
                .map(|(id, params)| {
                    serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
                })
                .collect();
            let (status, reply) = self
                .exchange(method, &serde_json::Value::Array(request))
                .await?;
            let Some(items) = reply.as_array() else {
                // A refusal of the whole batch is one error object: a node allowing fewer calls per
                // batch (`rpc.max_batch_requests`), or none. The calls go one by one instead.
                if reply.get("error").is_none_or(serde_json::Value::is_null) {
                    return Err(failed(format!("HTTP {status}: a batch answered with no array")));
                }
                let mut results = Vec::with_capacity(chunk.len());
                for params in chunk {
                    results.push(self.call(method, params.clone()).await?);
                }
                return Ok(results);
            };
            // Answers may come in any order: placed by their id.
            let mut results = vec![None; chunk.len()];
            for item in items {
                let slot = item
                    .get("id")
                    .and_then(serde_json::Value::as_u64)
                    .and_then(|id| usize::try_from(id).ok())
                    .and_then(|id| results.get_mut(id))
                    .ok_or_else(|| failed(format!("an answer with an unknown id: {item}")))?;
                *slot = Some(answer(method, status, item)?);
            }
            results
                .into_iter()
                .map(|r| r.ok_or_else(|| failed("a call of the batch was not answered".to_owned())))
                .collect::<Result<Vec<_>, _>>()
        });
        let answers = futures::future::try_join_all(batches).await?;
        Ok(answers.into_iter().flatten().collect())
    }

    /// POSTs `request` and reads the answer (at most `max_response_bytes`) as JSON.
    async fn exchange(
        &self,
        method: &'static str,
        request: &serde_json::Value,
    ) -> Result<(reqwest::StatusCode, serde_json::Value), TxError> {
        let failed = |reason: String| TxError::Rpc { method, reason };
        let mut response = self
            .http
            .post(&self.url)
            .json(request)
            .send()
            .await
            .map_err(|e| failed(format!("{}: {e}", self.url)))?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| failed(format!("reading the response: {e}")))?
        {
            if body.len() + chunk.len() > self.max_response_bytes {
                return Err(failed(format!(
                    "response larger than {} bytes",
                    self.max_response_bytes
                )));
            }
            body.extend_from_slice(&chunk);
        }
        let reply: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| failed(format!("HTTP {status}: response is not JSON ({e})")))?;
        Ok((status, reply))
    }

    /// The node's chain id (`status` → `result.node_info.network`).
    pub async fn chain_id(&self) -> Result<ChainId, TxError> {
        let result = self.call("status", serde_json::json!({})).await?;
        let network = result
            .pointer("/node_info/network")
            .and_then(|n| n.as_str())
            .ok_or(TxError::Rpc {
                method: "status",
                reason: "no result.node_info.network".to_owned(),
            })?;
        ChainId::new(network).map_err(|e| TxError::Rpc {
            method: "status",
            reason: format!("node_info.network: {e}"),
        })
    }

    /// The committed account record of `address` (`abci_query` path `/bank/account/<hex>`); an absent
    /// account is the zero record.
    pub async fn account(&self, address: &Address) -> Result<Account, TxError> {
        let params = serde_json::json!({
            "path": format!("/bank/account/{}", address.to_hex_upper()),
            "data": "",
            "height": "0",
            "prove": false,
        });
        let result = self.call("abci_query", params).await?;
        let failed = |reason: String| TxError::Rpc {
            method: "abci_query",
            reason,
        };
        let response = result
            .get("response")
            .ok_or_else(|| failed("no result.response".to_owned()))?;
        let code = response.get("code").and_then(|c| c.as_u64()).unwrap_or(0);
        if code != 0 {
            let log = response.get("log").and_then(|l| l.as_str()).unwrap_or("");
            return Err(failed(format!("code {code}: {log}")));
        }
        let value = response.get("value").and_then(|v| v.as_str()).unwrap_or("");
        let bytes = BASE64
            .decode(value)
            .map_err(|e| failed(format!("response.value is not base64: {e}")))?;
        if bytes.is_empty() {
            return Ok(Account::default());
        }
        Account::from_bytes(&bytes).map_err(|e| failed(format!("response.value: {e}")))
    }

    /// Submits a transaction with `broadcast_tx_sync`.
    pub async fn broadcast_tx_sync(&self, tx: &[u8]) -> Result<BroadcastResult, TxError> {
        let result = self
            .call(
                "broadcast_tx_sync",
                serde_json::json!({"tx": BASE64.encode(tx)}),
            )
            .await?;
        serde_json::from_value(result).map_err(|e| TxError::Rpc {
            method: "broadcast_tx_sync",
            reason: format!("unexpected result: {e}"),
        })
    }
}

/// The `result` of one JSON-RPC answer, or its `error` as [`TxError::Rpc`].
fn answer(
    method: &'static str,
    status: reqwest::StatusCode,
    reply: &serde_json::Value,
) -> Result<serde_json::Value, TxError> {
    let failed = |reason: String| TxError::Rpc { method, reason };
    if let Some(error) = reply.get("error").filter(|e| !e.is_null()) {
        let message = error
            .get("message")
            .and_then(|m| m.as_str())
            .unwrap_or("error");
        let data = error.get("data").and_then(|d| d.as_str()).unwrap_or("");
        return Err(failed(format!("{message} {data}").trim().to_owned()));
    }
    reply
        .get("result")
        .cloned()
        .ok_or_else(|| failed(format!("HTTP {status}: no result in the response")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use axum::routing::post;
    use axum::{Json, Router};
    use serde_json::{json, Value};

    use super::*;

    /// A JSON-RPC server on a free local port answering each batch call `{"n": n}` with `2n` (or an
    /// error for `failing`), in reverse order; counts its requests.
    async fn stub(failing: Option<u64>) -> (String, Arc<AtomicUsize>) {
        stub_with_limit(failing, usize::MAX).await
    }

    /// [`stub`] refusing batches of more than `max_batch` calls as a Basalt node does (one error
    /// object), and answering single calls.
    async fn stub_with_limit(failing: Option<u64>, max_batch: usize) -> (String, Arc<AtomicUsize>) {
        let requests = Arc::new(AtomicUsize::new(0));
        let seen = requests.clone();
        let app = Router::new().route(
            "/",
            post(move |Json(body): Json<Value>| {
                let seen = seen.clone();
                async move {
                    seen.fetch_add(1, Ordering::SeqCst);
                    let answer = |item: &Value| {
                        let n = item["params"]["n"].as_u64().unwrap();
                        if Some(n) == failing {
                            json!({"jsonrpc": "2.0", "id": item["id"],
                                   "error": {"code": -32603, "message": "Internal error",
                                             "data": format!("no {n}")}})
                        } else {
                            json!({"jsonrpc": "2.0", "id": item["id"], "result": {"twice": n * 2}})
                        }
                    };
                    let Some(items) = body.as_array() else {
                        return Json(answer(&body));
                    };
                    if items.len() > max_batch {
                        return Json(json!({"jsonrpc": "2.0", "id": null,
                            "error": {"code": -32600, "message": "Invalid Request",
                                      "data": "batch exceeds max_batch_requests"}}));
                    }
                    Json(Value::Array(items.iter().rev().map(answer).collect()))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{addr}"), requests)
    }

    #[tokio::test]
    async fn batch_calls_come_back_in_order_in_bounded_requests() {
        let (url, requests) = stub(None).await;
        let client = RpcClient::new(&url, Duration::from_secs(10)).unwrap();
        let params = (0..7u64).map(|n| json!({ "n": n })).collect();
        let out = client.call_batch("status", params, 3).await.unwrap();
        let twice: Vec<u64> = out.iter().map(|v| v["twice"].as_u64().unwrap()).collect();
        assert_eq!(twice, vec![0, 2, 4, 6, 8, 10, 12]);
        assert_eq!(
            requests.load(Ordering::SeqCst),
            3,
            "7 calls in requests of 3"
        );
        assert!(client
            .call_batch("status", Vec::new(), 3)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(requests.load(Ordering::SeqCst), 3, "no calls, no request");
    }

    #[tokio::test]
    async fn one_refused_call_fails_the_batch_with_its_reason() {
        let (url, _) = stub(Some(4)).await;
        let client = RpcClient::new(&url, Duration::from_secs(10)).unwrap();
        let params = (0..6u64).map(|n| json!({ "n": n })).collect();
        match client.call_batch("status", params, 50).await {
            Err(TxError::Rpc { method, reason }) => {
                assert_eq!(method, "status");
                assert!(reason.contains("no 4"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_node_refusing_the_batch_size_is_asked_one_call_at_a_time() {
        let (url, requests) = stub_with_limit(None, 2).await;
        let client = RpcClient::new(&url, Duration::from_secs(10)).unwrap();
        let params = (0..3u64).map(|n| json!({ "n": n })).collect();
        let out = client.call_batch("status", params, 50).await.unwrap();
        let twice: Vec<u64> = out.iter().map(|v| v["twice"].as_u64().unwrap()).collect();
        assert_eq!(twice, vec![0, 2, 4]);
        assert_eq!(
            requests.load(Ordering::SeqCst),
            4,
            "the refused batch, then 3 calls"
        );
    }
}
