//! One chain as the relayer sees it over JSON-RPC: heights, light blocks (`light_block`), IBC state with
//! proofs (`abci_query` `/store/ibc/key`), and transactions signed by the relayer's key and committed
//! (one by `broadcast_tx_commit`, or several admitted at once by `broadcast_tx_sync` and found by hash).

use std::time::Duration;

use basalt_consensus::light::LightBlock;
use basalt_consensus::types::{tx_hash, Address, ChainId, PrivateKey, ValidatorSet};
use basalt_ibc::commitment::proof_bytes;
use basalt_ibc::relay::Proven;
use basalt_ibc::tx::{IbcMessage, IbcTxBody};
use basalt_state::app::{Event, EventAttribute};
use basalt_state::ics23::CommitmentProof;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ibc_core::host::types::path::Path;
use ibc_core::primitives::proto::Any;
use prost::Message;
use serde_json::{json, Value};

use super::RelayError;
use crate::cli::tx::client::RpcClient;

/// Gas limit of the relayer's transactions (a header of a large set plus a few messages fits).
pub const RELAY_GAS: u64 = 5_000_000;
/// Largest answer read from a node (a light block of 10,000 validators is ~2 MiB).
pub const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;
/// Transactions per `tx_search` page the relayer asks for (CometBFT's largest).
pub const TX_PAGE: u64 = 100;
/// State queries per JSON-RPC batch request (below a Basalt node's default `max_batch_requests`, 100):
/// a node's cost of one small query is mostly its HTTP request.
pub const QUERIES_PER_REQUEST: usize = 50;
/// `tx_search` calls per batch request: fewer, as each answer may hold up to [`TX_PAGE`] transactions
/// and the whole answer must fit [`MAX_ANSWER_BYTES`].
pub const SEARCHES_PER_REQUEST: usize = 8;
/// How long the relayer waits for a chain to reach a height.
pub const HEIGHT_WAIT: Duration = Duration::from_secs(60);

/// A chain reached over JSON-RPC, with the relayer's key on it.
pub struct Remote {
    /// The chain.
    pub chain_id: ChainId,
    rpc: RpcClient,
    key: PrivateKey,
    fee: u128,
    /// The relayer's transactions [`Remote::submit_all`] saw committed since the last
    /// [`Remote::take_committed`].
    committed: std::sync::atomic::AtomicU64,
}

fn bad(method: &'static str, reason: impl Into<String>) -> RelayError {
    RelayError::Rpc {
        method,
        reason: reason.into(),
    }
}

impl Remote {
    /// Connects to `url` (reads the chain id) with the relayer's `key`, paying `fee` per transaction.
    pub async fn connect(
        url: &str,
        key: PrivateKey,
        fee: u128,
        timeout: Duration,
    ) -> Result<Remote, RelayError> {
        let rpc = RpcClient::new(url, timeout)?.with_max_response_bytes(MAX_ANSWER_BYTES);
        let chain_id = rpc.chain_id().await?;
        Ok(Remote {
            chain_id,
            rpc,
            key,
            fee,
            committed: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// The relayer's account record on this chain.
    pub async fn account(&self) -> Result<basalt_state::bank::Account, RelayError> {
        Ok(self.rpc.account(&self.address()).await?)
    }

    /// The relayer's account on this chain.
    pub fn address(&self) -> Address {
        self.key.public_key().address()
    }

    /// The latest committed height.
    pub async fn latest(&self) -> Result<u64, RelayError> {
        let status = self.rpc.call("status", json!({})).await?;
        status
            .pointer("/sync_info/latest_block_height")
            .and_then(Value::as_str)
            .and_then(|h| h.parse().ok())
            .ok_or_else(|| bad("status", "no sync_info.latest_block_height"))
    }

    /// The chain's evidence max age (`consensus_params.evidence.max_age_duration`), ms.
    pub async fn evidence_max_age_ms(&self) -> Result<u64, RelayError> {
        let answer = self.rpc.call("consensus_params", json!({})).await?;
        let ns: u64 = answer
            .pointer("/consensus_params/evidence/max_age_duration")
            .and_then(Value::as_str)
            .and_then(|ns| ns.parse().ok())
            .ok_or_else(|| {
                bad(
                    "consensus_params",
                    "no consensus_params.evidence.max_age_duration",
                )
            })?;
        Ok(ns / 1_000_000)
    }

    /// Waits until the chain is past `height`; returns the latest height.
    pub async fn wait_past(&self, height: u64) -> Result<u64, RelayError> {
        let deadline = tokio::time::Instant::now() + HEIGHT_WAIT;
        loop {
            let latest = self.latest().await?;
            if latest > height {
                return Ok(latest);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(bad(
                    "status",
                    format!("still at height {latest}, waiting for {}", height + 1),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The light block of `height` and the validator set of `height + 1`.
    pub async fn light_block(&self, height: u64) -> Result<(LightBlock, ValidatorSet), RelayError> {
        let answer = self
            .rpc
            .call("light_block", json!({"height": height.to_string()}))
            .await?;
        crate::cli::light::source::decode_light_block(&answer).map_err(|e| bad("light_block", e))
    }

    /// The value at an ICS-24 path in the latest state (no proof).
    pub async fn get(&self, path: &Path) -> Result<Option<Vec<u8>>, RelayError> {
        let mut values = self.get_many(std::slice::from_ref(path)).await?;
        values.pop().ok_or_else(|| bad("abci_query", "no answer"))
    }

    /// The values at `paths` in the latest state (no proofs), in [`QUERIES_PER_REQUEST`] batches.
    pub async fn get_many(&self, paths: &[Path]) -> Result<Vec<Option<Vec<u8>>>, RelayError> {
        let answers = self.query_many(paths, 0, false).await?;
        Ok(answers.into_iter().map(|(value, _)| value).collect())
    }

    /// A sequence or counter at `path` (big-endian `u64`; absent is 0).
    pub async fn counter(&self, path: &Path) -> Result<u64, RelayError> {
        match self.get(path).await? {
            None => Ok(0),
            Some(bytes) => Ok(u64::from_be_bytes(bytes.try_into().map_err(|_| {
                RelayError::State(format!("{path} is not an 8-byte counter"))
            })?)),
        }
    }

    /// The transactions `query` finds (first page, oldest first).
    pub async fn tx_search(&self, query: &str) -> Result<Vec<Value>, RelayError> {
        Ok(self.tx_search_page(query, 1).await?.0)
    }

    /// Page `page` (of [`TX_PAGE`] transactions, oldest first) of what `query` finds, and the total.
    pub async fn tx_search_page(
        &self,
        query: &str,
        page: u64,
    ) -> Result<(Vec<Value>, u64), RelayError> {
        let answer = self
            .rpc
            .call("tx_search", tx_search_params(query, page))
            .await?;
        Ok(tx_search_answer(&answer))
    }

    /// The value at `path` in state version `height - 1` with its proof at proof height `height`.
    pub async fn prove(
        &self,
        path: &Path,
        height: u64,
    ) -> Result<(Option<Vec<u8>>, Proven), RelayError> {
        let mut proved = self.prove_many(std::slice::from_ref(path), height).await?;
        proved.pop().ok_or_else(|| bad("abci_query", "no answer"))
    }

    /// [`Remote::prove`] for each of `paths`, in [`QUERIES_PER_REQUEST`] batches.
    pub async fn prove_many(
        &self,
        paths: &[Path],
        height: u64,
    ) -> Result<Vec<(Option<Vec<u8>>, Proven)>, RelayError> {
        let answers = self
            .query_many(paths, height.saturating_sub(1), true)
            .await?;
        let height =
            basalt_ibc::client::wire::ibc_height(&self.chain_id, basalt_consensus::Height(height))
                .map_err(|e| bad("abci_query", e.to_string()))?;
        answers
            .into_iter()
            .map(|(value, proof)| {
                let proof = proof.ok_or_else(|| bad("abci_query", "no proof"))?;
                Ok((
                    value,
                    Proven {
                        proof: proof_bytes(proof),
                        height,
                    },
                ))
            })
            .collect()
    }

    async fn query_many(
        &self,
        paths: &[Path],
        version: u64,
        prove: bool,
    ) -> Result<Vec<(Option<Vec<u8>>, Option<CommitmentProof>)>, RelayError> {
        if paths.is_empty() {
            return Ok(Vec::new());
        }
        let params = paths
            .iter()
            .map(|path| query_params(path, version, prove))
            .collect();
        self.rpc
            .call_batch("abci_query", params, QUERIES_PER_REQUEST)
            .await?
            .iter()
            .map(query_answer)
            .collect()
    }

    /// The first page of what each of `queries` finds (as [`Remote::tx_search`]), in
    /// [`SEARCHES_PER_REQUEST`] batches.
    pub async fn tx_search_many(&self, queries: &[String]) -> Result<Vec<Vec<Value>>, RelayError> {
        if queries.is_empty() {
            return Ok(Vec::new());
        }
        let params = queries
            .iter()
            .map(|query| tx_search_params(query, 1))
            .collect();
        Ok(self
            .rpc
            .call_batch("tx_search", params, SEARCHES_PER_REQUEST)
            .await?
            .iter()
            .map(|answer| tx_search_answer(answer).0)
            .collect())
    }

    /// Signs each of `transactions` (nonce after nonce from the account's), submits them all with
    /// `broadcast_tx_sync` and waits until every one is committed; returns how many were. A refusal at
    /// admission stops the submission (those already admitted still commit); a refusal in the block is
    /// an error once all have committed. The chain's mempool admits nonces up to
    /// [`basalt_state::bank::NONCE_WINDOW`] ahead, so at most that many transactions are accepted here.
    pub async fn submit_all(&self, transactions: Vec<Vec<Any>>) -> Result<u64, RelayError> {
        let window = usize::try_from(basalt_state::bank::NONCE_WINDOW).unwrap_or(usize::MAX);
        if transactions.len() > window {
            return Err(RelayError::State(format!(
                "{} transactions at once, more than the nonce window of {window}",
                transactions.len()
            )));
        }
        let first = self.rpc.account(&self.address()).await?.nonce;
        let mut hashes = Vec::with_capacity(transactions.len());
        for (nonce, messages) in (first..).zip(transactions) {
            let tx = self.sign(nonce, messages);
            let admitted = self.rpc.broadcast_tx_sync(&tx).await?;
            if admitted.code != 0 {
                return Err(RelayError::Refused {
                    chain: self.chain_id.to_string(),
                    stage: "check_tx",
                    code: u64::from(admitted.code),
                    log: admitted.log,
                });
            }
            hashes.push(tx_hash(&tx).to_hex_upper());
        }
        let deadline = tokio::time::Instant::now() + HEIGHT_WAIT;
        let mut committed = 0;
        for hash in hashes {
            let result = loop {
                let (found, _) = self
                    .tx_search_page(&format!("tx.hash = '{hash}'"), 1)
                    .await?;
                if let Some(tx) = found.into_iter().next() {
                    break tx;
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(bad(
                        "tx_search",
                        format!("transaction {hash} not committed within {HEIGHT_WAIT:?}"),
                    ));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            // One refused in its block is the error's to count (`refused`), not this.
            refused(&self.chain_id, "tx_result", &result["tx_result"])?;
            self.committed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            committed += 1;
        }
        Ok(committed)
    }

    /// How many of the relayer's transactions [`Remote::submit_all`] saw committed since the last
    /// call: counted on the chain itself, so a pass that fails on the other chain loses none.
    pub fn take_committed(&self) -> u64 {
        self.committed.swap(0, std::sync::atomic::Ordering::Relaxed)
    }

    /// `messages` as one IBC transaction with `nonce`, signed by the relayer's key, as bytes.
    fn sign(&self, nonce: u64, messages: Vec<Any>) -> Vec<u8> {
        IbcTxBody {
            chain_id: self.chain_id.clone(),
            from: self.key.public_key(),
            nonce,
            fee: self.fee,
            gas_limit: RELAY_GAS,
            messages: messages.into_iter().map(IbcMessage::from).collect(),
        }
        .sign(&self.key)
        .to_bytes()
    }

    /// Signs `messages` as one IBC transaction and waits for it to be committed; returns its result
    /// (`tx_result`) and height. A refusal at admission or in the block is an error.
    pub async fn submit(&self, messages: Vec<Any>) -> Result<(Value, u64), RelayError> {
        let nonce = self.rpc.account(&self.address()).await?.nonce;
        let tx = self.sign(nonce, messages);
        let answer = self
            .rpc
            .call("broadcast_tx_commit", json!({"tx": BASE64.encode(&tx)}))
            .await?;
        for stage in ["check_tx", "tx_result"] {
            refused(&self.chain_id, stage, &answer[stage])?;
        }
        let height = answer
            .get("height")
            .and_then(Value::as_str)
            .and_then(|h| h.parse().ok())
            .ok_or_else(|| bad("broadcast_tx_commit", "no height"))?;
        Ok((answer["tx_result"].clone(), height))
    }
}

/// `abci_query`'s parameters for the IBC store's `path` at state `version` (0: the latest).
fn query_params(path: &Path, version: u64, prove: bool) -> Value {
    json!({
        "path": "/store/ibc/key",
        "data": hex::encode(path.to_string()),
        "height": version.to_string(),
        "prove": prove,
    })
}

/// An `abci_query` answer's value (absent when empty) and proof.
fn query_answer(answer: &Value) -> Result<(Option<Vec<u8>>, Option<CommitmentProof>), RelayError> {
    let response = answer
        .get("response")
        .ok_or_else(|| bad("abci_query", "no response"))?;
    if response.get("code").and_then(Value::as_u64).unwrap_or(0) != 0 {
        return Err(bad("abci_query", response.to_string()));
    }
    let value = BASE64
        .decode(response.get("value").and_then(Value::as_str).unwrap_or(""))
        .map_err(|e| bad("abci_query", e.to_string()))?;
    let proof = match response
        .pointer("/proofOps/ops/0/data")
        .and_then(Value::as_str)
    {
        None => None,
        Some(data) => {
            let bytes = BASE64
                .decode(data)
                .map_err(|e| bad("abci_query", e.to_string()))?;
            Some(
                CommitmentProof::decode(bytes.as_slice())
                    .map_err(|e| bad("abci_query", e.to_string()))?,
            )
        }
    };
    Ok(((!value.is_empty()).then_some(value), proof))
}

/// `tx_search`'s parameters for page `page` of `query`, oldest first.
fn tx_search_params(query: &str, page: u64) -> Value {
    json!({"query": query, "page": page.to_string(),
           "per_page": TX_PAGE.to_string(), "order_by": "asc"})
}

/// A `tx_search` answer's transactions and total count.
fn tx_search_answer(answer: &Value) -> (Vec<Value>, u64) {
    let total = answer
        .get("total_count")
        .and_then(Value::as_str)
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let txs = answer
        .get("txs")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    (txs, total)
}

/// A `check_tx` or `tx_result` (`stage`) whose code is not 0, as the relayer's error.
fn refused(chain: &ChainId, stage: &'static str, result: &Value) -> Result<(), RelayError> {
    let code = result.get("code").and_then(Value::as_u64).unwrap_or(0);
    if code == 0 {
        return Ok(());
    }
    Err(RelayError::Refused {
        chain: chain.to_string(),
        stage,
        code,
        log: result
            .get("log")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
    })
}

/// The events of `kind` in a `tx_search` transaction (its `tx_result.events`).
pub fn tx_events(tx: &Value, kind: &str) -> Vec<Event> {
    tx.pointer("/tx_result/events")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|raw| raw["type"] == kind)
        .map(|raw| Event {
            kind: kind.to_owned(),
            attributes: raw["attributes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| EventAttribute {
                    key: a["key"].as_str().unwrap_or_default().to_owned(),
                    value: a["value"].as_str().unwrap_or_default().to_owned(),
                    index: true,
                })
                .collect(),
        })
        .collect()
}

/// The height of a `tx_search` transaction.
pub fn tx_height(tx: &Value) -> Result<u64, RelayError> {
    tx.get("height")
        .and_then(Value::as_str)
        .and_then(|h| h.parse().ok())
        .ok_or_else(|| RelayError::State(format!("a tx_search result without a height: {tx}")))
}
