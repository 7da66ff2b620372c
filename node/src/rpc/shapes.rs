//! Basalt values in CometBFT v0.38's JSON shapes: int64 as strings, upper-case hex hashes, base64
//! bytes, RFC 3339 times with nanoseconds. Where Basalt has no counterpart of a CometBFT field, the
//! value chosen is documented in `docs/RPC.md` (part set headers, vote timestamps, consensus hash).

use base64::Engine as _;
use serde_json::{json, Value};

use basalt_consensus::types::{
    encode, Block, Commit, CommitSig, DuplicateVoteEvidence, Hash, Header, MerkleProof, PublicKey,
    SignedVote, ValidatorSet,
};
use basalt_consensus::VoteType;
use basalt_state::app::{CheckTxResult, Event, TxResult};

use super::backend::{ConsensusEvent, IndexedTx, RoundState};

/// The CometBFT release whose RPC Basalt speaks, reported as `node_info.version`: clients choose their
/// protocol dialect from it (CosmJS's `connectComet` takes its 0.38 client only for a `0.38.` version,
/// tendermint-rpc's `CompatMode::from_version` likewise), as CometBFT reports its own release there.
/// Basalt's own version is in `node_info.other.basalt_version` (and in `abci_info`).
pub const COMETBFT_COMPAT_VERSION: &str = "0.38.17";
/// CometBFT's block protocol version, reported in headers and `node_info`.
pub const BLOCK_PROTOCOL: &str = "11";
/// The p2p protocol version reported in `node_info`.
pub const P2P_PROTOCOL: &str = "8";
/// The zero time Go prints for an absent commit signature.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Standard base64 (with padding), as Go's `encoding/json` writes `[]byte`.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Upper-case hex.
pub fn hex_upper(bytes: &[u8]) -> String {
    hex::encode_upper(bytes)
}

/// Milliseconds since the Unix epoch as RFC 3339 in UTC, with the fraction trimmed of trailing zeros as
/// Go's `RFC3339Nano` prints it (`2023-11-14T22:13:20.5Z`, or no fraction at all on a whole second).
pub fn rfc3339_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let frac_ms = ms % 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let mut out = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    );
    if frac_ms != 0 {
        let frac = format!("{frac_ms:03}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A block id: Basalt has no part sets, so `parts` is `{total: 1, hash: <block hash>}`.
pub fn block_id(hash: &Hash) -> Value {
    json!({"hash": hash.to_hex_upper(), "parts": {"total": 1, "hash": hash.to_hex_upper()}})
}

/// The empty block id Go prints for "none".
pub fn empty_block_id() -> Value {
    json!({"hash": "", "parts": {"total": 0, "hash": ""}})
}

/// A header.
pub fn header(h: &Header) -> Value {
    json!({
        "version": {"block": BLOCK_PROTOCOL, "app": "0"},
        "chain_id": h.chain_id.as_str(),
        "height": h.height.0.to_string(),
        "time": rfc3339_ms(h.time_ms),
        "last_block_id": h.last_block_id.map_or_else(empty_block_id, |id| block_id(&id.hash)),
        "last_commit_hash": h.last_commit_hash.to_hex_upper(),
        "data_hash": h.data_hash.to_hex_upper(),
        "validators_hash": h.validators_hash.to_hex_upper(),
        "next_validators_hash": h.next_validators_hash.to_hex_upper(),
        // Basalt's consensus parameters are fixed by the binary, not hashed into headers.
        "consensus_hash": Hash::ZERO.to_hex_upper(),
        "app_hash": h.app_hash.to_hex_upper(),
        "last_results_hash": h.last_results_hash.to_hex_upper(),
        "evidence_hash": h.evidence_hash.to_hex_upper(),
        "proposer_address": h.proposer_address.to_hex_upper(),
    })
}

/// Why a commit cannot be shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("commit for height {height} has {slots} signatures but its validator set has {validators}")]
pub struct CommitShapeError {
    /// Commit height.
    pub height: u64,
    /// Signature slots.
    pub slots: usize,
    /// Validators in the set.
    pub validators: usize,
}

/// A commit. `validators` is the set of the commit's height (it names each slot's address);
/// `time_ms` stands in for the vote timestamps Basalt does not have.
pub fn commit(
    c: &Commit,
    validators: &ValidatorSet,
    time_ms: u64,
) -> Result<Value, CommitShapeError> {
    if c.signatures.len() != validators.len() {
        return Err(CommitShapeError {
            height: c.height.0,
            slots: c.signatures.len(),
            validators: validators.len(),
        });
    }
    let time = rfc3339_ms(time_ms);
    let signatures: Vec<Value> = c
        .signatures
        .iter()
        .zip(validators.validators())
        .map(|(sig, v)| match sig {
            CommitSig::Absent => json!({
                "block_id_flag": 1, "validator_address": "", "timestamp": ZERO_TIME, "signature": null
            }),
            CommitSig::ForBlock(s) => json!({
                "block_id_flag": 2, "validator_address": v.address.to_hex_upper(),
                "timestamp": time, "signature": b64(&s.to_bytes())
            }),
            CommitSig::Nil(s) => json!({
                "block_id_flag": 3, "validator_address": v.address.to_hex_upper(),
                "timestamp": time, "signature": b64(&s.to_bytes())
            }),
        })
        .collect();
    Ok(json!({
        "height": c.height.0.to_string(),
        "round": c.round.0,
        "block_id": block_id(&c.block_id.hash),
        "signatures": signatures,
    }))
}

/// The "no commit" Go prints for the first block's `last_commit`.
pub fn empty_commit() -> Value {
    json!({"height": "0", "round": 0, "block_id": empty_block_id(), "signatures": []})
}

/// A vote inside evidence (v0.38 `Vote`).
fn vote(v: &SignedVote, validators: Option<&ValidatorSet>, time: &str) -> Value {
    let address = validators
        .and_then(|s| s.get(v.vote.validator_index))
        .map(|val| val.address.to_hex_upper())
        .unwrap_or_default();
    vote_of(v, &address, time)
}

/// A v0.38 `Vote` by the validator at `address`, stamped `time`.
fn vote_of(v: &SignedVote, address: &str, time: &str) -> Value {
    let index = v.vote.validator_index.0;
    json!({
        "type": match v.vote.vote_type { VoteType::Prevote => 1, VoteType::Precommit => 2 },
        "height": v.vote.height.0.to_string(),
        "round": v.vote.round.0,
        "block_id": v.vote.block_id.map_or_else(empty_block_id, |id| block_id(&id.hash)),
        "timestamp": time,
        "validator_address": address,
        "validator_index": index,
        "signature": b64(&v.signature.to_bytes()),
        "extension": null,
        "extension_signature": null,
    })
}

/// Duplicate-vote evidence; `validators` is the set of the evidence's height (or `None` if it is no
/// longer known, then powers read 0).
pub fn evidence(
    e: &DuplicateVoteEvidence,
    validators: Option<&ValidatorSet>,
    time_ms: u64,
) -> Value {
    let time = rfc3339_ms(time_ms);
    let (total, power) = validators.map_or((0, 0), |s| {
        (
            s.total_power(),
            s.get(e.validator_index()).map_or(0, |v| v.voting_power),
        )
    });
    let a = vote(e.vote_a(), validators, &time);
    let b = vote(e.vote_b(), validators, &time);
    json!({
        "type": "tendermint/DuplicateVoteEvidence",
        "value": {
            "vote_a": a, "vote_b": b,
            "total_voting_power": total.to_string(),
            "validator_power": power.to_string(),
            "timestamp": time,
        }
    })
}

/// The `data` of a consensus event message (`{"type": "tendermint/event/...", "value": ...}`), as
/// CometBFT v0.38 encodes its `EventDataRoundState`, `EventDataNewRound`, `EventDataCompleteProposal`
/// and `EventDataVote` (Basalt votes carry no time: a vote's `timestamp` is Go's zero time).
pub fn consensus_event(e: &ConsensusEvent) -> Value {
    let round_state = |s: &RoundState| json!({"height": s.height.to_string(), "round": s.round, "step": s.step.name()});
    let (kind, value) = match e {
        ConsensusEvent::NewRound { state, proposer } => {
            let mut value = round_state(state);
            value["proposer"] = json!({"address": proposer.0.to_hex_upper(), "index": proposer.1});
            ("NewRound", value)
        }
        ConsensusEvent::CompleteProposal { state, block } => {
            let mut value = round_state(state);
            value["block_id"] = block_id(block);
            ("CompleteProposal", value)
        }
        ConsensusEvent::Vote { vote, validator } => (
            "Vote",
            json!({"Vote": vote_of(vote, &validator.to_hex_upper(), ZERO_TIME)}),
        ),
        // The rest carry the round state alone (CometBFT's EventDataRoundState).
        other => (
            "RoundState",
            other
                .round_state()
                .as_ref()
                .map_or(Value::Null, round_state),
        ),
    };
    json!({"type": format!("tendermint/event/{kind}"), "value": value})
}

/// A whole block; `last_commit` is the already shaped previous commit and `evidence` the shaped
/// evidence list.
pub fn block(b: &Block, last_commit: Value, evidence: Vec<Value>) -> Value {
    let txs: Vec<String> = b.txs().iter().map(|t| b64(t.as_bytes())).collect();
    json!({
        "header": header(b.header()),
        "data": {"txs": txs},
        "evidence": {"evidence": evidence},
        "last_commit": last_commit,
    })
}

/// A block meta (`blockchain`).
pub fn block_meta(b: &Block) -> Value {
    let id = b.id();
    json!({
        "block_id": block_id(&id.hash),
        "block_size": encode(b).len().to_string(),
        "header": header(b.header()),
        "num_txs": b.txs().len().to_string(),
    })
}

/// An ed25519 public key.
pub fn pub_key(k: &PublicKey) -> Value {
    json!({"type": "tendermint/PubKeyEd25519", "value": b64(&k.to_bytes())})
}

/// The validators of a set, `[start, end)`.
pub fn validators(set: &ValidatorSet, start: usize, end: usize) -> Vec<Value> {
    set.validators()
        .get(start..end)
        .unwrap_or_default()
        .iter()
        .map(|v| {
            json!({
                "address": v.address.to_hex_upper(),
                "pub_key": pub_key(&v.public_key),
                "voting_power": v.voting_power.to_string(),
                "proposer_priority": v.proposer_priority.to_string(),
            })
        })
        .collect()
}

/// ABCI events (v0.38: attribute keys and values are plain strings).
pub fn events(events: &[Event]) -> Vec<Value> {
    events
        .iter()
        .map(|e| {
            let attributes: Vec<Value> = e
                .attributes
                .iter()
                .map(|a| json!({"key": a.key, "value": a.value, "index": a.index}))
                .collect();
            json!({"type": e.kind, "attributes": attributes})
        })
        .collect()
}

/// An `ExecTxResult`.
pub fn tx_result(r: &TxResult) -> Value {
    json!({
        "code": r.code,
        "data": null,
        "log": r.log,
        "info": "",
        "gas_wanted": r.gas_wanted.to_string(),
        "gas_used": r.gas_used.to_string(),
        "events": events(&r.events),
        "codespace": "",
    })
}

/// A `ResponseCheckTx`.
pub fn check_tx(r: &CheckTxResult) -> Value {
    json!({
        "code": r.code,
        "data": null,
        "log": r.log,
        "info": "",
        "gas_wanted": r.gas_wanted.to_string(),
        "gas_used": r.gas_used.to_string(),
        "events": [],
        "codespace": "",
        "sender": r.sender.map(|a| a.to_hex_upper()).unwrap_or_default(),
        "priority": r.priority.to_string(),
        "mempool_error": "",
    })
}

/// A committed transaction (`tx`, `tx_search`).
pub fn indexed_tx(t: &IndexedTx) -> Value {
    json!({
        "hash": t.tx.hash().to_hex_upper(),
        "height": t.height.to_string(),
        "index": t.index,
        "tx_result": tx_result(&t.result),
        "tx": b64(t.tx.as_bytes()),
    })
}

/// CometBFT's `TxProof`: the transaction under its block's `data_hash`, with a `merkle.Proof`.
pub fn tx_proof(data_hash: &Hash, tx: &[u8], proof: &MerkleProof) -> Value {
    json!({
        "root_hash": data_hash.to_hex_upper(),
        "data": b64(tx),
        "proof": {
            "total": proof.total.to_string(),
            "index": proof.index.to_string(),
            "leaf_hash": b64(&proof.leaf_hash.0),
            "aunts": proof.aunts.iter().map(|a| b64(&a.0)).collect::<Vec<_>>(),
        },
    })
}

/// CometBFT's `events` map of an event message: `"<type>.<key>" -> [values]` plus `tm.event`.
pub fn event_map(kind: &str, events: &[Event], extra: &[(&str, String)]) -> Value {
    let mut map = serde_json::Map::new();
    map.insert("tm.event".into(), json!([kind]));
    for (key, value) in extra {
        map.insert((*key).into(), json!([value]));
    }
    for e in events {
        for a in &e.attributes {
            let key = format!("{}.{}", e.kind, a.key);
            let entry = map.entry(key).or_insert_with(|| json!([]));
            if let Value::Array(values) = entry {
                values.push(Value::String(a.value.clone()));
            }
        }
    }
    Value::Object(map)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_go() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_ms(1_700_000_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339_ms(1_700_000_000_500), "2023-11-14T22:13:20.5Z");
        assert_eq!(rfc3339_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339_ms(951_782_400_010), "2000-02-29T00:00:00.01Z");
        assert_eq!(rfc3339_ms(253_402_300_799_000), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn event_map_collects_values() {
        let e = [
            Event::new("transfer", &[("sender", "A".into())]),
            Event::new("transfer", &[("sender", "B".into())]),
        ];
        let m = event_map("Tx", &e, &[("tx.height", "5".into())]);
        assert_eq!(m["transfer.sender"], json!(["A", "B"]));
        assert_eq!(m["tm.event"], json!(["Tx"]));
        assert_eq!(m["tx.height"], json!(["5"]));
    }
}
