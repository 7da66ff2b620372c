//! `basalt relay create-path`: a client of each chain on the other, an open connection and an open
//! ICS-20 channel between them. Idempotent: what already exists (a client of the other chain, an open
//! connection on it, an open `transfer` channel on that) is found and kept; only what is missing is
//! created. Every handshake step proves the other side's state at a height the destination's client
//! has just been updated to (the update travels in the same transaction).

use basalt_consensus::light::{Options, Skipping, TrustLevel, VerifiedBlock};
use basalt_consensus::types::ChainId;
use basalt_consensus::Height;
use basalt_ibc::client::{ClientState, ConsensusState};
use basalt_ibc::commitment::commitment_prefix;
use basalt_ibc::relay::{self, signer};
use ibc_core::channel::types::channel::{ChannelEnd, Order};
use ibc_core::channel::types::msgs::{
    MsgChannelOpenAck, MsgChannelOpenConfirm, MsgChannelOpenInit, MsgChannelOpenTry,
};
use ibc_core::channel::types::Version as ChannelVersion;
use ibc_core::client::types::msgs::MsgCreateClient;
use ibc_core::client::types::Height as IbcHeight;
use ibc_core::connection::types::msgs::{
    MsgConnectionOpenAck, MsgConnectionOpenConfirm, MsgConnectionOpenInit, MsgConnectionOpenTry,
};
use ibc_core::connection::types::version::Version;
use ibc_core::connection::types::{ConnectionEnd, Counterparty};
use ibc_core::host::types::identifiers::{ChannelId, ClientId, ConnectionId, PortId};
use ibc_core::host::types::path::{
    ChannelEndPath, ClientConsensusStatePath, ClientStatePath, ConnectionPath,
    NextChannelSequencePath, NextClientSequencePath, NextConnectionSequencePath,
};
use ibc_core::primitives::proto::{Any, Protobuf};
use ibc_core::primitives::ToProto;
use serde_json::Value;

use super::packets::batches;
use super::remote::Remote;
use super::RelayError;

/// Without `trusting_period` in the config, a new client of a chain trusts a header for this share of
/// the chain's evidence max age (Hermes takes 2/3 of the unbonding period).
pub const DEFAULT_TRUSTING_SHARE: (u64, u64) = (2, 3);
/// Largest clock difference between the chains the clients accept.
pub const MAX_CLOCK_DRIFT_MS: u64 = 10_000;

/// The identifiers of a path, on each side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathIds {
    /// Client of b on a, and of a on b.
    pub clients: (ClientId, ClientId),
    /// The connection on a and on b.
    pub connections: (ConnectionId, ConnectionId),
    /// The ICS-20 channel on a and on b.
    pub channels: (ChannelId, ChannelId),
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> RelayError {
    RelayError::State(format!("{what}: {e}"))
}

/// Updates `client` on `host` (a client of `source`) to `source`'s latest height when its newest
/// consensus state is older, by `host`'s block time, than a third of its trusting period — so an idle
/// path's clients never expire. Returns whether it updated, and how long (ms) the newest state it
/// had has before it expires.
pub async fn refresh_client(
    host: &Remote,
    client: &ClientId,
    source: &Remote,
) -> Result<(bool, i64), RelayError> {
    let state = client_state(host, client)
        .await?
        .ok_or_else(|| RelayError::State(format!("no client {client}")))?;
    let revision = basalt_ibc::client::wire::revision_number(&state.chain_id);
    let path = ClientConsensusStatePath::new(client.clone(), revision, state.latest_height.0);
    let bytes = host.get(&path.into()).await?.ok_or_else(|| {
        RelayError::State(format!(
            "{client} has no consensus state at its latest height"
        ))
    })?;
    let any = <Any as prost::Message>::decode(bytes.as_slice())
        .map_err(|e| corrupt("consensus state", e))?;
    let consensus = ConsensusState::from_any(&any).map_err(|e| corrupt("consensus state", e))?;
    let host_height = host.latest().await?;
    let (host_block, _) = host.light_block(host_height).await?;
    let age_ms = host_block.header.time_ms.saturating_sub(consensus.time_ms);
    let left_ms = i64::try_from(state.trusting_period_ms).unwrap_or(i64::MAX)
        - i64::try_from(age_ms).unwrap_or(i64::MAX);
    if age_ms < state.trusting_period_ms / 3 {
        return Ok((false, left_ms));
    }
    let latest = source.latest().await?;
    let msgs = update(host, client, source, latest).await?;
    if msgs.is_empty() {
        return Ok((false, left_ms));
    }
    host.submit_all(batches(msgs, Vec::new())).await?;
    eprintln!(
        "refreshed {client} on {} to {} height {latest} (its newest state was {} s old)",
        host.chain_id,
        source.chain_id,
        age_ms / 1000
    );
    Ok((true, left_ms))
}

/// The state of `client` on `chain` (none if there is no such client).
pub async fn client_state(
    chain: &Remote,
    client: &ClientId,
) -> Result<Option<ClientState>, RelayError> {
    let Some(bytes) = chain
        .get(&ClientStatePath::new(client.clone()).into())
        .await?
    else {
        return Ok(None);
    };
    let any = <Any as prost::Message>::decode(bytes.as_slice())
        .map_err(|e| corrupt("client state", e))?;
    ClientState::from_any(&any)
        .map(Some)
        .map_err(|e| corrupt("client state", e))
}

/// The newest client on `host` of `of`'s chain that is not frozen.
async fn find_client(host: &Remote, of: &Remote) -> Result<Option<ClientId>, RelayError> {
    let count = host.counter(&NextClientSequencePath.into()).await?;
    for i in (0..count).rev() {
        let id = basalt_ibc::client::ics02::client_type().build_client_id(i);
        if let Some(state) = client_state(host, &id).await? {
            if state.chain_id == of.chain_id && !state.is_frozen() {
                return Ok(Some(id));
            }
        }
    }
    Ok(None)
}

/// The trusting period of a new client of `chain`, whose evidence max age is `evidence_max_age_ms`:
/// `configured`, else [`DEFAULT_TRUSTING_SHARE`] of the max age. A period that is not below the max age
/// is refused here, before anything is paid for: `chain` refuses such a client of itself in the
/// connection handshake (its misbehaviour would stop being evidence while the client still trusts it).
pub fn new_client_trusting_period_ms(
    configured: Option<u64>,
    evidence_max_age_ms: u64,
    chain: &ChainId,
) -> Result<u64, RelayError> {
    let (num, den) = DEFAULT_TRUSTING_SHARE;
    let period = configured.unwrap_or(evidence_max_age_ms / den * num);
    if period == 0 || period >= evidence_max_age_ms {
        return Err(RelayError::TrustingPeriod {
            chain: chain.to_string(),
            period_ms: period,
            evidence_max_age_ms,
        });
    }
    Ok(period)
}

/// A client of `of` on `host`: found, or created at `of`'s latest height, trusting headers for
/// `trusting_period_ms` (default: see [`new_client_trusting_period_ms`]).
async fn ensure_client(
    host: &Remote,
    of: &Remote,
    trusting_period_ms: Option<u64>,
) -> Result<ClientId, RelayError> {
    if let Some(id) = find_client(host, of).await? {
        return Ok(id);
    }
    let trusting_period_ms = new_client_trusting_period_ms(
        trusting_period_ms,
        of.evidence_max_age_ms().await?,
        &of.chain_id,
    )?;
    let latest = of.latest().await?;
    let (block, _) = of.light_block(latest).await?;
    let client = ClientState::new(
        of.chain_id.clone(),
        block.header.height,
        TrustLevel::ONE_THIRD,
        trusting_period_ms,
        MAX_CLOCK_DRIFT_MS,
    )
    .map_err(|e| corrupt("client state", e))?;
    let msg = MsgCreateClient {
        client_state: client.to_any(),
        consensus_state: ConsensusState::of(&block.header).to_any(),
        signer: signer(&host.address()),
    };
    let (result, _) = host.submit(vec![msg.to_any()]).await?;
    let id = attribute(&result, "create_client", "client_id")?;
    id.parse().map_err(|e| corrupt("client_id", e))
}

/// The `MsgUpdateClient`s bringing `client` on `host` to `source`'s `height` (none if it is there
/// already): one when a third of the trusted validators still sign `height`, else one per pivot of a
/// skipping verification ([`Skipping`]), each trusting the consensus state the one before stores, so
/// the client follows the source across any validator-set changes. The relayer takes its source's word
/// for the trusted block (the host's client checks every step against what it stored); verifying here
/// only finds the pivots the client will accept.
pub async fn update(
    host: &Remote,
    client: &ClientId,
    source: &Remote,
    height: u64,
) -> Result<Vec<Any>, RelayError> {
    let state = client_state(host, client)
        .await?
        .ok_or_else(|| RelayError::State(format!("no client {client}")))?;
    let trusted = state.latest_height.0;
    if trusted >= height {
        return Ok(Vec::new());
    }
    let unverifiable = |e| RelayError::Unverifiable {
        chain: source.chain_id.to_string(),
        from: trusted,
        to: height,
        source: Box::new(e),
    };
    let (block, trusted_next) = source.light_block(trusted).await?;
    let hash = block.header.hash();
    let root =
        VerifiedBlock::trust_root(block, trusted_next.clone(), &hash).map_err(unverifiable)?;
    let options = Options {
        trust_level: state.trust_level,
        trusting_period_ms: state.trusting_period_ms,
        max_clock_drift_ms: state.max_clock_drift_ms,
    };
    let now_ms = crate::cli::light::client::now_ms();
    let mut skipping = Skipping::new(root, Height(height), options).map_err(unverifiable)?;
    let mut steps = Vec::new();
    while let Some(wanted) = skipping.wanted() {
        let (block, next) = source.light_block(wanted.0).await?;
        if let Some(verified) = skipping.feed(block, next, now_ms).map_err(unverifiable)? {
            steps.push(verified);
        }
    }
    Ok(relay::update_client_steps(
        client,
        trusted,
        trusted_next,
        steps,
        &host.address(),
    ))
}

/// Submits `message` to `host` behind `update` (its client's update steps): in one transaction when
/// they fit, else the steps first in transactions of their own; the last transaction's result and
/// height.
async fn submit_behind(
    host: &Remote,
    update: Vec<Any>,
    message: Any,
) -> Result<(Value, u64), RelayError> {
    let mut transactions = batches(update, vec![message]);
    let last = transactions
        .pop()
        .ok_or_else(|| RelayError::State("no transaction to submit".to_owned()))?;
    if !transactions.is_empty() {
        host.submit_all(transactions).await?;
    }
    host.submit(last).await
}

/// The value of attribute `key` of the first event of `kind` in a `tx_result`.
fn attribute(result: &Value, kind: &str, key: &str) -> Result<String, RelayError> {
    result["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["type"] == kind)
        .flat_map(|e| e["attributes"].as_array().into_iter().flatten())
        .find(|a| a["key"] == key)
        .and_then(|a| a["value"].as_str())
        .map(str::to_owned)
        .ok_or_else(|| RelayError::State(format!("no {kind}.{key} event in {result}")))
}

/// `source`'s connection proofs for a Try or Ack at proof height `height`: connection end, client
/// state (its value too) and that client's latest consensus state.
async fn connection_proofs(
    source: &Remote,
    conn: &ConnectionId,
    client: &ClientId,
    height: u64,
) -> Result<(Any, [relay::Proven; 3], IbcHeight), RelayError> {
    let (_, conn_proof) = source
        .prove(&ConnectionPath::new(conn).into(), height)
        .await?;
    let (value, client_proof) = source
        .prove(&ClientStatePath::new(client.clone()).into(), height)
        .await?;
    let value = value.ok_or_else(|| RelayError::State(format!("no client {client}")))?;
    let any = <Any as prost::Message>::decode(value.as_slice())
        .map_err(|e| corrupt("client state", e))?;
    let state = ClientState::from_any(&any).map_err(|e| corrupt("client state", e))?;
    let consensus_height = state.latest_height.0;
    let counterparty_revision = basalt_ibc::client::wire::revision_number(&state.chain_id);
    let (_, consensus_proof) = source
        .prove(
            &ClientConsensusStatePath::new(client.clone(), counterparty_revision, consensus_height)
                .into(),
            height,
        )
        .await?;
    let consensus_height = basalt_ibc::client::wire::ibc_height(
        &state.chain_id,
        basalt_consensus::Height(consensus_height),
    )
    .map_err(|e| corrupt("height", e))?;
    Ok((
        any,
        [conn_proof, client_proof, consensus_proof],
        consensus_height,
    ))
}

async fn find_connection(
    a: &Remote,
    client_a: &ClientId,
    client_b: &ClientId,
) -> Result<Option<(ConnectionId, ConnectionId)>, RelayError> {
    let count = a.counter(&NextConnectionSequencePath.into()).await?;
    for i in (0..count).rev() {
        let id = ConnectionId::new(i);
        let Some(bytes) = a.get(&ConnectionPath::new(&id).into()).await? else {
            continue;
        };
        let end = ConnectionEnd::decode_vec(&bytes).map_err(|e| corrupt("connection", e))?;
        if !end.is_open()
            || end.client_id() != client_a
            || end.counterparty().client_id() != client_b
        {
            continue;
        }
        if let Some(other) = end.counterparty().connection_id() {
            return Ok(Some((id, other.clone())));
        }
    }
    Ok(None)
}

/// An open connection between the two clients: found, or opened by the four-step handshake.
async fn ensure_connection(
    a: &Remote,
    b: &Remote,
    client_a: &ClientId,
    client_b: &ClientId,
) -> Result<(ConnectionId, ConnectionId), RelayError> {
    if let Some(found) = find_connection(a, client_a, client_b).await? {
        return Ok(found);
    }
    let (me_a, me_b) = (a.address(), b.address());
    let init = MsgConnectionOpenInit {
        client_id_on_a: client_a.clone(),
        counterparty: Counterparty::new(client_b.clone(), None, commitment_prefix()),
        version: None,
        delay_period: std::time::Duration::ZERO,
        signer: signer(&me_a),
    };
    let (result, at) = a.submit(vec![init.to_any()]).await?;
    let conn_a: ConnectionId = attribute(&result, "connection_open_init", "connection_id")?
        .parse()
        .map_err(|e| corrupt("connection_id", e))?;

    let h = a.wait_past(at).await?;
    let (client_state, [conn, client, consensus], consensus_height) =
        connection_proofs(a, &conn_a, client_a, h).await?;
    #[allow(deprecated)]
    let try_msg = MsgConnectionOpenTry {
        client_id_on_b: client_b.clone(),
        client_state_of_b_on_a: client_state,
        counterparty: Counterparty::new(
            client_a.clone(),
            Some(conn_a.clone()),
            commitment_prefix(),
        ),
        versions_on_a: Version::compatibles(),
        proofs_height_on_a: conn.height,
        proof_conn_end_on_a: conn.proof,
        proof_client_state_of_b_on_a: client.proof,
        proof_consensus_state_of_b_on_a: consensus.proof,
        consensus_height_of_b_on_a: consensus_height,
        delay_period: std::time::Duration::ZERO,
        signer: signer(&me_b),
        proof_consensus_state_of_b: None,
        previous_connection_id: String::new(),
    };
    let steps = update(b, client_b, a, h).await?;
    let (result, at) = submit_behind(b, steps, try_msg.to_any()).await?;
    let conn_b: ConnectionId = attribute(&result, "connection_open_try", "connection_id")?
        .parse()
        .map_err(|e| corrupt("connection_id", e))?;

    let h = b.wait_past(at).await?;
    let (client_state, [conn, client, consensus], consensus_height) =
        connection_proofs(b, &conn_b, client_b, h).await?;
    let ack = MsgConnectionOpenAck {
        conn_id_on_a: conn_a.clone(),
        conn_id_on_b: conn_b.clone(),
        client_state_of_a_on_b: client_state,
        proofs_height_on_b: conn.height,
        proof_conn_end_on_b: conn.proof,
        proof_client_state_of_a_on_b: client.proof,
        proof_consensus_state_of_a_on_b: consensus.proof,
        consensus_height_of_a_on_b: consensus_height,
        version: Version::compatibles().remove(0),
        signer: signer(&me_a),
        proof_consensus_state_of_a: None,
    };
    let steps = update(a, client_a, b, h).await?;
    let (_, at) = submit_behind(a, steps, ack.to_any()).await?;

    let h = a.wait_past(at).await?;
    let (_, conn) = a.prove(&ConnectionPath::new(&conn_a).into(), h).await?;
    let confirm = MsgConnectionOpenConfirm {
        conn_id_on_b: conn_b.clone(),
        proof_height_on_a: conn.height,
        proof_conn_end_on_a: conn.proof,
        signer: signer(&me_b),
    };
    let steps = update(b, client_b, a, h).await?;
    submit_behind(b, steps, confirm.to_any()).await?;
    Ok((conn_a, conn_b))
}

async fn find_channel(
    a: &Remote,
    conn_a: &ConnectionId,
) -> Result<Option<(ChannelId, ChannelId)>, RelayError> {
    let port = PortId::transfer();
    let count = a.counter(&NextChannelSequencePath.into()).await?;
    for i in (0..count).rev() {
        let id = ChannelId::new(i);
        let Some(bytes) = a.get(&ChannelEndPath::new(&port, &id).into()).await? else {
            continue;
        };
        let end = ChannelEnd::decode_vec(&bytes).map_err(|e| corrupt("channel", e))?;
        if end.is_open() && end.connection_hops().first() == Some(conn_a) {
            if let Some(other) = end.counterparty().channel_id() {
                return Ok(Some((id, other.clone())));
            }
        }
    }
    Ok(None)
}

/// An open ICS-20 channel (`transfer` to `transfer`, unordered, `ics20-1`) on the connection: found, or
/// opened by the four-step handshake.
async fn ensure_channel(
    a: &Remote,
    b: &Remote,
    clients: &(ClientId, ClientId),
    conns: &(ConnectionId, ConnectionId),
) -> Result<(ChannelId, ChannelId), RelayError> {
    if let Some(found) = find_channel(a, &conns.0).await? {
        return Ok(found);
    }
    let port = PortId::transfer();
    let version = ChannelVersion::new(ibc_app_transfer::types::VERSION.to_owned());
    let (me_a, me_b) = (a.address(), b.address());
    let init = MsgChannelOpenInit {
        port_id_on_a: port.clone(),
        connection_hops_on_a: vec![conns.0.clone()],
        port_id_on_b: port.clone(),
        ordering: Order::Unordered,
        signer: signer(&me_a),
        version_proposal: version.clone(),
    };
    let (result, at) = a.submit(vec![init.to_any()]).await?;
    let chan_a: ChannelId = attribute(&result, "channel_open_init", "channel_id")?
        .parse()
        .map_err(|e| corrupt("channel_id", e))?;

    let h = a.wait_past(at).await?;
    let (_, proof) = a
        .prove(&ChannelEndPath::new(&port, &chan_a).into(), h)
        .await?;
    #[allow(deprecated)]
    let try_msg = MsgChannelOpenTry {
        port_id_on_b: port.clone(),
        connection_hops_on_b: vec![conns.1.clone()],
        port_id_on_a: port.clone(),
        chan_id_on_a: chan_a.clone(),
        version_supported_on_a: version.clone(),
        proof_height_on_a: proof.height,
        proof_chan_end_on_a: proof.proof,
        ordering: Order::Unordered,
        signer: signer(&me_b),
        version_proposal: ChannelVersion::empty(),
    };
    let steps = update(b, &clients.1, a, h).await?;
    let (result, at) = submit_behind(b, steps, try_msg.to_any()).await?;
    let chan_b: ChannelId = attribute(&result, "channel_open_try", "channel_id")?
        .parse()
        .map_err(|e| corrupt("channel_id", e))?;

    let h = b.wait_past(at).await?;
    let (_, proof) = b
        .prove(&ChannelEndPath::new(&port, &chan_b).into(), h)
        .await?;
    let ack = MsgChannelOpenAck {
        port_id_on_a: port.clone(),
        chan_id_on_a: chan_a.clone(),
        chan_id_on_b: chan_b.clone(),
        version_on_b: version,
        proof_height_on_b: proof.height,
        proof_chan_end_on_b: proof.proof,
        signer: signer(&me_a),
    };
    let steps = update(a, &clients.0, b, h).await?;
    let (_, at) = submit_behind(a, steps, ack.to_any()).await?;

    let h = a.wait_past(at).await?;
    let (_, proof) = a
        .prove(&ChannelEndPath::new(&port, &chan_a).into(), h)
        .await?;
    let confirm = MsgChannelOpenConfirm {
        port_id_on_b: port,
        chan_id_on_b: chan_b.clone(),
        proof_height_on_a: proof.height,
        proof_chan_end_on_a: proof.proof,
        signer: signer(&me_b),
    };
    let steps = update(b, &clients.1, a, h).await?;
    submit_behind(b, steps, confirm.to_any()).await?;
    Ok((chan_a, chan_b))
}

/// Finds or creates the whole path between `a` and `b` (new clients trust headers for
/// `trusting_period_ms`, or by default [`DEFAULT_TRUSTING_SHARE`] of their chain's evidence max age).
pub async fn create_path(
    a: &Remote,
    b: &Remote,
    trusting_period_ms: Option<u64>,
) -> Result<PathIds, RelayError> {
    let clients = (
        ensure_client(a, b, trusting_period_ms).await?,
        ensure_client(b, a, trusting_period_ms).await?,
    );
    let connections = ensure_connection(a, b, &clients.0, &clients.1).await?;
    let channels = ensure_channel(a, b, &clients, &connections).await?;
    Ok(PathIds {
        clients,
        connections,
        channels,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const HOUR_MS: u64 = 3_600_000;

    #[test]
    fn a_new_clients_trusting_period_is_below_its_chains_evidence_max_age() {
        let chain = ChainId::new("basalt-a").unwrap();
        // Default: two thirds of the max age (genesis default 48 h → 32 h).
        assert_eq!(
            new_client_trusting_period_ms(None, 48 * HOUR_MS, &chain).unwrap(),
            32 * HOUR_MS
        );
        assert_eq!(
            new_client_trusting_period_ms(Some(HOUR_MS), 48 * HOUR_MS, &chain).unwrap(),
            HOUR_MS
        );
        // Not below the max age: refused before anything is submitted, naming the chain and the figures.
        for configured in [Some(48 * HOUR_MS), Some(14 * 24 * HOUR_MS)] {
            let refused =
                new_client_trusting_period_ms(configured, 48 * HOUR_MS, &chain).unwrap_err();
            assert!(
                matches!(refused, RelayError::TrustingPeriod { evidence_max_age_ms, .. } if evidence_max_age_ms == 48 * HOUR_MS),
                "{refused}"
            );
            assert!(refused.to_string().contains("basalt-a"), "{refused}");
        }
        // A max age too short for any default: refused rather than a zero trusting period.
        assert!(new_client_trusting_period_ms(None, 1, &chain).is_err());
    }
}
