//! The primary: the one RPC server `basalt light` reads from. Nothing it answers is served before it
//! is verified ([`super::client`]); this module only fetches and decodes, bounding every answer.

use std::time::Duration;

use basalt_consensus::light::LightBlock;
use basalt_consensus::types::encoding::MAX_BLOCK_BYTES;
use basalt_consensus::types::{decode, Block, Commit, Header, ValidatorSet};
use basalt_state::ics23::CommitmentProof;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use prost::Message;
use serde_json::{json, Value};

use super::LightError;
use crate::cli::tx::client::RpcClient;

/// Largest answer read from the primary (a light block of 10,000 validators is ~2 MiB; a whole block
/// at most [`MAX_BLOCK_BYTES`], base64 in JSON).
pub const MAX_ANSWER_BYTES: usize = 2 * MAX_BLOCK_BYTES + 1024 * 1024;

fn bad(method: &'static str, reason: impl Into<String>) -> LightError {
    LightError::Rpc {
        method,
        reason: reason.into(),
    }
}

/// Decodes a `light_block` answer: the light block of its height and the validator set of the next.
pub fn decode_light_block(answer: &Value) -> Result<(LightBlock, ValidatorSet), String> {
    let text = answer
        .get("light_block")
        .and_then(Value::as_str)
        .ok_or("no light_block in the answer")?;
    let bytes = BASE64.decode(text).map_err(|e| e.to_string())?;
    let (header, commit, validators, next): (Header, Commit, ValidatorSet, ValidatorSet) =
        decode("light block", &bytes, MAX_BLOCK_BYTES).map_err(|e| e.to_string())?;
    Ok((
        LightBlock {
            header,
            commit,
            validators,
        },
        next,
    ))
}

/// Where a light client reads light blocks: the primary, or a witness it is checked against.
pub trait Source: Send + Sync + std::fmt::Debug {
    /// The source's address, for reports.
    fn url(&self) -> &str;

    /// The light block of `height` and the validator set of `height + 1`.
    fn light_block(
        &self,
        height: u64,
    ) -> impl std::future::Future<Output = Result<(LightBlock, ValidatorSet), LightError>> + Send;

    /// The height of its latest block.
    fn latest(&self) -> impl std::future::Future<Output = Result<u64, LightError>> + Send;
}

impl Source for Primary {
    fn url(&self) -> &str {
        &self.url
    }

    async fn light_block(&self, height: u64) -> Result<(LightBlock, ValidatorSet), LightError> {
        let answer = self
            .call("light_block", json!({"height": height.to_string()}))
            .await?;
        decode_light_block(&answer).map_err(|e| bad("light_block", e))
    }

    async fn latest(&self) -> Result<u64, LightError> {
        let status = self.status().await?;
        status
            .pointer("/sync_info/latest_block_height")
            .and_then(Value::as_str)
            .and_then(|h| h.parse().ok())
            .ok_or_else(|| bad("status", "no sync_info.latest_block_height"))
    }
}

/// An `abci_query` answer as the primary gave it.
#[derive(Clone, Debug)]
pub struct QueryAnswer {
    /// The value (empty when absent).
    pub value: Vec<u8>,
    /// The state version it was read at.
    pub height: u64,
    /// Its proof.
    pub proof: CommitmentProof,
}

/// The primary RPC server.
#[derive(Clone, Debug)]
pub struct Primary {
    rpc: RpcClient,
    url: String,
}

impl Primary {
    /// A client of the server at `url`.
    pub fn new(url: &str, timeout: Duration) -> Result<Primary, LightError> {
        let rpc = RpcClient::new(url, timeout)
            .map_err(|e| bad("connect", e.to_string()))?
            .with_max_response_bytes(MAX_ANSWER_BYTES);
        Ok(Primary {
            rpc,
            url: url.to_owned(),
        })
    }

    /// `method` with `params`, as JSON.
    pub async fn call(&self, method: &'static str, params: Value) -> Result<Value, LightError> {
        self.rpc
            .call(method, params)
            .await
            .map_err(|e| bad(method, e.to_string()))
    }

    /// Its `status` answer.
    pub async fn status(&self) -> Result<Value, LightError> {
        self.call("status", json!({})).await
    }

    /// The whole block of `height` (decoding checks its content hashes against its header).
    pub async fn block(&self, height: u64) -> Result<Block, LightError> {
        let answer = self
            .call("raw_block", json!({"height": height.to_string()}))
            .await?;
        let text = answer
            .get("block")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("raw_block", "no block in the answer"))?;
        let bytes = BASE64
            .decode(text)
            .map_err(|e| bad("raw_block", e.to_string()))?;
        decode("block", &bytes, MAX_BLOCK_BYTES).map_err(|e| bad("raw_block", e.to_string()))
    }

    /// `abci_query` of `path`/`data` at state version `height`, with its proof.
    pub async fn query(
        &self,
        path: &str,
        data: &[u8],
        height: u64,
    ) -> Result<QueryAnswer, LightError> {
        let answer = self
            .call(
                "abci_query",
                json!({"path": path, "data": hex::encode(data),
                       "height": height.to_string(), "prove": true}),
            )
            .await?;
        let response = answer
            .get("response")
            .ok_or_else(|| bad("abci_query", "no response"))?;
        let code = response.get("code").and_then(Value::as_u64).unwrap_or(0);
        if code != 0 {
            let log = response.get("log").and_then(Value::as_str).unwrap_or("");
            return Err(LightError::QueryRefused {
                code,
                log: log.to_owned(),
            });
        }
        let value = BASE64
            .decode(response.get("value").and_then(Value::as_str).unwrap_or(""))
            .map_err(|e| bad("abci_query", e.to_string()))?;
        let answered_height = response
            .get("height")
            .and_then(Value::as_str)
            .and_then(|h| h.parse().ok())
            .ok_or_else(|| bad("abci_query", "no height in the response"))?;
        let proof_bytes = response
            .pointer("/proofOps/ops/0/data")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("abci_query", "no proof in the response"))?;
        let proof_bytes = BASE64
            .decode(proof_bytes)
            .map_err(|e| bad("abci_query", e.to_string()))?;
        let proof = CommitmentProof::decode(proof_bytes.as_slice())
            .map_err(|e| bad("abci_query", e.to_string()))?;
        Ok(QueryAnswer {
            value,
            height: answered_height,
            proof,
        })
    }
}
