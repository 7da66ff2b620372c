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
        let failed = |reason: String| TxError::Rpc { method, reason };
        let request =
            serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let mut response = self
            .http
            .post(&self.url)
            .json(&request)
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
