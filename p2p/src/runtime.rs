//! The swarm task: builds the libp2p swarm, then turns swarm events into [`NetworkEvent`]s and handle
//! [`Command`]s into swarm actions, until shutdown.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use libp2p::gossipsub::{self, MessageAcceptance, PublishError};
use libp2p::request_response::{self, OutboundFailure, OutboundRequestId, ResponseChannel};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{DialError, NetworkBehaviour, SwarmEvent};
use libp2p::{
    allow_block_list, connection_limits, identify, noise, ping, tcp, yamux, PeerId, Swarm,
};
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::{
    keypair_from_seed, multiaddr_to_socket, socket_to_multiaddr, NetworkConfig, PeerAddr,
};
use crate::error::{NetworkError, RequestError};
use crate::gossip::{self, GossipTopic};
use crate::handle::{
    Command, GossipId, Misbehaviour, NetworkEvent, NetworkHandle, PeerInfo, TopicPeers, Verdict,
};
use crate::peers::{BanList, Redialer};
use crate::sync::{SyncCodec, SyncRequest, SyncResponse, SYNC_PROTOCOL};

/// Identify protocol name.
pub const IDENTIFY_PROTOCOL: &str = "/basalt/id/1";
/// Most established connections to one peer.
pub const MAX_CONNECTIONS_PER_PEER: u32 = 2;
/// Most outbound sync requests in flight.
pub const MAX_PENDING_OUTBOUND: usize = 1024;
/// Most inbound sync requests waiting for the node's answer.
pub const MAX_PENDING_INBOUND: usize = 256;
/// Minor offences ([`Misbehaviour::Other`]) that add up to a ban.
pub const MAX_MINOR_OFFENCES: u32 = 3;
/// How long an idle connection stays open (long: validators keep persistent connections).
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// How often bans are expired and persistent peers redialled.
const MAINTENANCE_INTERVAL: Duration = Duration::from_millis(100);
/// How long gossip waits in the message cache for the node's verdict before it can no longer be forwarded.
const VALIDATION_WINDOW: Duration = Duration::from_secs(10);
/// Protobuf framing gossipsub adds around a message.
const GOSSIP_FRAMING_BYTES: usize = 1024;

/// The swarm's behaviours. Block list and limits come first so denied connections go no further.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    block_list: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    limits: connection_limits::Behaviour,
    gossipsub: gossipsub::Behaviour,
    sync: request_response::Behaviour<SyncCodec>,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

/// Starts the network: binds the listener (so the real port is known on return) and spawns the swarm task.
pub async fn spawn(
    config: NetworkConfig,
) -> Result<(NetworkHandle, mpsc::Receiver<NetworkEvent>), NetworkError> {
    config.validate()?;
    let mut swarm = build_swarm(&config)?;
    for topic in [GossipTopic::Consensus, GossipTopic::Txs] {
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&topic.ident())
            .map_err(|e| NetworkError::Subscribe {
                topic: topic.name(),
                reason: e.to_string(),
            })?;
    }
    let listen_addr = listen(&mut swarm, config.listen_addr).await?;
    let local_peer_id = *swarm.local_peer_id();
    tracing::info!(peer = %local_peer_id, addr = %listen_addr, "p2p listening");

    let (command_tx, command_rx) = mpsc::channel(config.command_queue);
    let (event_tx, event_rx) = mpsc::channel(config.event_queue);
    let (stopped_tx, stopped_rx) = watch::channel(false);
    let handle = NetworkHandle {
        commands: command_tx,
        local_peer_id,
        listen_addr,
        stopped: stopped_rx,
        request_timeout: config.request_timeout,
    };
    let task = Task {
        redialer: Redialer::new(&config.persistent_peers, Instant::now()),
        config,
        swarm,
        events: event_tx,
        // Start from the wall clock so a restarted node does not repeat recent envelopes (which gossipsub
        // would drop as duplicates).
        seq: wall_clock_nanos(),
        bans: BanList::default(),
        strikes: HashMap::new(),
        connected: HashMap::new(),
        refused_banned: 0,
        outbound: HashMap::new(),
        inbound: FuturesUnordered::new(),
    };
    tokio::spawn(task.run(command_rx, StopGuard(stopped_tx)));
    Ok((handle, event_rx))
}

fn wall_clock_nanos() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn build_swarm(config: &NetworkConfig) -> Result<Swarm<Behaviour>, NetworkError> {
    let keypair = keypair_from_seed(&config.node_key_seed)?;
    let gossipsub = build_gossipsub(config)?;
    let limits = connection_limits::ConnectionLimits::default()
        .with_max_established_incoming(Some(config.max_inbound))
        .with_max_established_outgoing(Some(config.max_outbound))
        .with_max_established_per_peer(Some(MAX_CONNECTIONS_PER_PEER));
    // libp2p's timeout is twice ours: the requester's deadline is enforced by the handle, and the
    // responder's node gets the full `request_timeout` to answer before the stream is dropped.
    let sync = request_response::Behaviour::with_codec(
        SyncCodec,
        [(SYNC_PROTOCOL, request_response::ProtocolSupport::Full)],
        request_response::Config::default().with_request_timeout(config.request_timeout * 2),
    );
    let identify = identify::Behaviour::new(identify::Config::new(
        IDENTIFY_PROTOCOL.to_string(),
        keypair.public(),
    ));
    let behaviour = Behaviour {
        block_list: allow_block_list::Behaviour::default(),
        limits: connection_limits::Behaviour::new(limits),
        gossipsub,
        sync,
        identify,
        ping: ping::Behaviour::default(),
    };
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| NetworkError::Transport {
            reason: e.to_string(),
        })?
        .with_behaviour(|_| behaviour)
        .map_err(|e| NetworkError::Transport {
            reason: e.to_string(),
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
        .build();
    Ok(swarm)
}

fn build_gossipsub(config: &NetworkConfig) -> Result<gossipsub::Behaviour, NetworkError> {
    let bad = |reason: String| NetworkError::Behaviour {
        behaviour: "gossipsub",
        reason,
    };
    let heartbeat_ms = config.gossip_heartbeat.as_millis().max(1);
    // Keep messages in the cache long enough for the node to judge them (nothing is forwarded before
    // Accept, and an Accept after eviction forwards nothing).
    let history = (VALIDATION_WINDOW.as_millis() / heartbeat_ms).clamp(5, 1000) as usize;
    let max_payload =
        basalt_consensus::engine::MAX_CONSENSUS_MESSAGE_BYTES.max(config.max_tx_batch_bytes);
    let gossip_config = gossipsub::ConfigBuilder::default()
        .validation_mode(gossipsub::ValidationMode::Anonymous)
        .validate_messages()
        .message_id_fn(gossip::message_id)
        .heartbeat_interval(config.gossip_heartbeat)
        .history_length(history)
        .history_gossip(3)
        .flood_publish(true)
        // Small networks (2-10 peers): graft anyone while below 2, aim for 4, prune above 8.
        .mesh_n_low(2)
        .mesh_n(4)
        .mesh_n_high(8)
        .mesh_outbound_min(1)
        .gossip_lazy(4)
        .max_transmit_size(max_payload + gossip::ENVELOPE_BYTES + GOSSIP_FRAMING_BYTES)
        .duplicate_cache_time(Duration::from_secs(120))
        .build()
        .map_err(|e| bad(e.to_string()))?;
    let mut behaviour =
        gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, gossip_config)
            .map_err(|e| bad(e.to_string()))?;
    let (params, thresholds) = peer_score();
    behaviour
        .with_peer_score(params, thresholds)
        .map_err(|e| NetworkError::Behaviour {
            behaviour: "gossipsub peer score",
            reason: e,
        })?;
    Ok(behaviour)
}

/// Peer scoring that only penalises invalid messages (the node's Reject): no delivery-rate penalties
/// (quiet topics are normal) and no same-IP penalty (local networks share 127.0.0.1).
fn peer_score() -> (gossipsub::PeerScoreParams, gossipsub::PeerScoreThresholds) {
    let topic = gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.0,
        first_message_deliveries_weight: 0.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -10.0,
        invalid_message_deliveries_decay: 0.5,
        ..gossipsub::TopicScoreParams::default()
    };
    let mut params = gossipsub::PeerScoreParams {
        ip_colocation_factor_weight: 0.0,
        ..gossipsub::PeerScoreParams::default()
    };
    for t in [GossipTopic::Consensus, GossipTopic::Txs] {
        params.topics.insert(t.ident().hash(), topic.clone());
    }
    let thresholds = gossipsub::PeerScoreThresholds {
        gossip_threshold: -100.0,
        publish_threshold: -200.0,
        graylist_threshold: -400.0,
        ..gossipsub::PeerScoreThresholds::default()
    };
    (params, thresholds)
}

/// Binds the listener and waits for its address (the real port when port 0 was asked for).
async fn listen(
    swarm: &mut Swarm<Behaviour>,
    addr: SocketAddr,
) -> Result<SocketAddr, NetworkError> {
    let err = |reason: String| NetworkError::Listen { addr, reason };
    swarm
        .listen_on(socket_to_multiaddr(addr))
        .map_err(|e| err(error_chain(&e)))?;
    let wait = async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::NewListenAddr { address, .. } => {
                    if let Some(bound) = multiaddr_to_socket(&address) {
                        // For 0.0.0.0 report the configured (unspecified) ip with the real port.
                        return Ok(SocketAddr::new(addr.ip(), bound.port()));
                    }
                }
                SwarmEvent::ListenerError { error, .. } => return Err(err(error_chain(&error))),
                SwarmEvent::ListenerClosed { reason, .. } => {
                    return Err(err(format!("listener closed: {reason:?}")))
                }
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .map_err(|_| err("no listen address after 10 s".to_string()))?
}

/// An error and its causes, as one line: libp2p's transport errors print nothing themselves (the OS
/// error, e.g. "Address already in use", is their source), so an operator would otherwise see no reason.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut parts = Vec::new();
    let mut next: Option<&dyn std::error::Error> = Some(error);
    while let Some(e) = next {
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p: &String| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    if parts.is_empty() {
        format!("{error:?}")
    } else {
        parts.join(": ")
    }
}

/// Marks the task stopped when dropped (also if it unwinds).
struct StopGuard(watch::Sender<bool>);

impl Drop for StopGuard {
    fn drop(&mut self) {
        let _ = self.0.send(true);
    }
}

type InboundAnswer = BoxFuture<'static, (ResponseChannel<SyncResponse>, SyncResponse)>;
type OutboundReply = oneshot::Sender<Result<SyncResponse, RequestError>>;

struct Task {
    config: NetworkConfig,
    swarm: Swarm<Behaviour>,
    events: mpsc::Sender<NetworkEvent>,
    seq: u64,
    bans: BanList,
    redialer: Redialer,
    /// Minor offences per connected peer (cleared on disconnect, so bounded by the connection limits).
    strikes: HashMap<PeerId, u32>,
    connected: HashMap<PeerId, PeerInfo>,
    /// Connections from banned peers refused or closed at once since start (a counter, not a list).
    refused_banned: u64,
    outbound: HashMap<OutboundRequestId, (PeerId, OutboundReply)>,
    inbound: FuturesUnordered<InboundAnswer>,
}

impl Task {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>, _stopped: StopGuard) {
        let mut tick = tokio::time::interval(MAINTENANCE_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = commands.recv() => match command {
                    // All handles gone or an explicit shutdown: stop.
                    None | Some(Command::Shutdown) => break,
                    Some(command) => self.on_command(command),
                },
                Some((channel, response)) = self.inbound.next(), if !self.inbound.is_empty() => {
                    // Fails only if the stream is gone (peer left or libp2p timed out): nothing to do.
                    let _ = self.swarm.behaviour_mut().sync.send_response(channel, response);
                }
                _ = tick.tick() => self.maintain(),
            }
        }
        tracing::info!(peer = %self.swarm.local_peer_id(), "p2p shutting down");
        for (_, (_, reply)) in self.outbound.drain() {
            let _ = reply.send(Err(RequestError::Shutdown));
        }
        // Dropping the swarm closes every connection and the listener.
    }

    fn maintain(&mut self) {
        let now = Instant::now();
        for peer in self.bans.expire(now) {
            tracing::info!(%peer, "ban expired");
            self.swarm.behaviour_mut().block_list.unblock_peer(peer);
        }
        let bans = &self.bans;
        for addr in self.redialer.due(now, |peer| !bans.is_banned(peer, now)) {
            self.dial(addr, true);
        }
    }

    fn dial(&mut self, addr: PeerAddr, persistent: bool) {
        let opts = DialOpts::peer_id(addr.id)
            .addresses(vec![socket_to_multiaddr(addr.addr)])
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .build();
        match self.swarm.dial(opts) {
            Ok(()) => tracing::debug!(peer = %addr, "dialling"),
            Err(DialError::DialPeerConditionFalse(_)) if self.swarm.is_connected(&addr.id) => {
                self.redialer.connected(&addr.id);
            }
            Err(error) => {
                tracing::debug!(peer = %addr, %error, "dial refused");
                if persistent {
                    self.redialer.dial_failed(&addr.id, Instant::now());
                }
            }
        }
    }

    fn emit(&mut self, event: NetworkEvent) {
        if let Err(error) = self.events.try_send(event) {
            tracing::warn!(%error, "network event queue full or closed; peer event dropped");
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(event)) => self.on_gossip(event),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.on_sync(event),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(_) | BehaviourEvent::Ping(_)) => {}
            SwarmEvent::Behaviour(
                BehaviourEvent::BlockList(never) | BehaviourEvent::Limits(never),
            ) => match never {},
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                ..
            } => {
                let now = Instant::now();
                if self.bans.is_banned(&peer_id, now) {
                    self.refused_banned = self.refused_banned.saturating_add(1);
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return;
                }
                self.redialer.connected(&peer_id);
                if num_established.get() == 1 {
                    let addr = multiaddr_to_socket(endpoint.get_remote_address());
                    self.connected.insert(
                        peer_id,
                        PeerInfo {
                            id: peer_id,
                            addr,
                            outbound: endpoint.is_dialer(),
                            since: SystemTime::now(),
                        },
                    );
                    tracing::info!(peer = %peer_id, ?addr, "peer connected");
                    self.emit(NetworkEvent::PeerConnected {
                        peer: peer_id,
                        addr,
                    });
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                cause,
                ..
            } => {
                let was_connected = self.connected.remove(&peer_id).is_some();
                self.strikes.remove(&peer_id);
                self.redialer.lost(&peer_id, Instant::now());
                // A banned peer's connection closed at once was never reported connected: nothing to undo.
                if was_connected {
                    tracing::info!(peer = %peer_id, ?cause, "peer disconnected");
                    self.emit(NetworkEvent::PeerDisconnected { peer: peer_id });
                }
            }
            SwarmEvent::OutgoingConnectionError {
                peer_id: Some(peer),
                error,
                ..
            } => {
                tracing::debug!(%peer, %error, "dial failed");
                self.redialer.dial_failed(&peer, Instant::now());
            }
            SwarmEvent::IncomingConnectionError {
                error,
                send_back_addr,
                ..
            } => {
                // The block list denies a banned peer's connection once it is authenticated.
                if matches!(error, libp2p::swarm::ListenError::Denied { .. }) {
                    self.refused_banned = self.refused_banned.saturating_add(1);
                }
                tracing::debug!(%send_back_addr, %error, "inbound connection failed");
            }
            SwarmEvent::ListenerError { error, .. } => {
                tracing::warn!(%error, "p2p listener error");
            }
            _ => {}
        }
    }

    fn on_gossip(&mut self, event: gossipsub::Event) {
        let gossipsub::Event::Message {
            propagation_source,
            message_id,
            message,
        } = event
        else {
            return;
        };
        let id = GossipId {
            message_id,
            source: propagation_source,
        };
        let decoded = match GossipTopic::from_hash(message.topic.as_str()) {
            Some(GossipTopic::Consensus) => {
                gossip::decode_consensus(&message.data).map(|message| NetworkEvent::Consensus {
                    id: id.clone(),
                    from: propagation_source,
                    message,
                })
            }
            Some(GossipTopic::Txs) => {
                gossip::decode_txs(&message.data, self.config.max_tx_batch_bytes).map(|txs| {
                    NetworkEvent::Txs {
                        id: id.clone(),
                        from: propagation_source,
                        txs,
                    }
                })
            }
            None => {
                self.validate(&id, Verdict::Ignore);
                return;
            }
        };
        match decoded {
            Err(offence) => {
                // Honest peers never forward what they did not Accept, so the forwarder is the culprit.
                self.validate(&id, Verdict::Reject);
                self.punish(propagation_source, offence);
            }
            Ok(event) => {
                if self.events.try_send(event).is_err() {
                    // The node is behind: dropping gossip (without penalty) beats stalling the swarm.
                    tracing::debug!("network event queue full; gossip ignored");
                    self.validate(&id, Verdict::Ignore);
                }
            }
        }
    }

    fn validate(&mut self, id: &GossipId, verdict: Verdict) {
        let acceptance = match verdict {
            Verdict::Accept => MessageAcceptance::Accept,
            Verdict::Reject => MessageAcceptance::Reject,
            Verdict::Ignore => MessageAcceptance::Ignore,
        };
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(&id.message_id, &id.source, acceptance);
    }

    fn punish(&mut self, peer: PeerId, offence: Misbehaviour) {
        if peer == *self.swarm.local_peer_id() {
            return;
        }
        if !offence.is_provable() {
            let strikes = self.strikes.entry(peer).or_insert(0);
            *strikes += 1;
            tracing::info!(%peer, %offence, strikes = *strikes, "peer misbehaved");
            if *strikes < MAX_MINOR_OFFENCES {
                return;
            }
        }
        let now = Instant::now();
        tracing::warn!(%peer, reason = %offence, ban_secs = self.config.ban_duration.as_secs_f64(), "banning peer");
        if let Some(evicted) = self.bans.ban(peer, now, self.config.ban_duration) {
            self.swarm.behaviour_mut().block_list.unblock_peer(evicted);
        }
        self.strikes.remove(&peer);
        // Blocking closes every connection to the peer and refuses new ones, both directions.
        self.swarm.behaviour_mut().block_list.block_peer(peer);
        let _ = self.swarm.disconnect_peer_id(peer);
    }

    fn on_sync(&mut self, event: request_response::Event<SyncRequest, SyncResponse>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => self.on_inbound_request(peer, request, channel),
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some((_, reply)) = self.outbound.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                let provable = matches!(&error, OutboundFailure::Io(e) if e.kind() == std::io::ErrorKind::InvalidData);
                let mapped = match error {
                    OutboundFailure::DialFailure => RequestError::DialFailure { peer },
                    OutboundFailure::Timeout => RequestError::Timeout { peer },
                    OutboundFailure::ConnectionClosed => RequestError::ConnectionClosed { peer },
                    OutboundFailure::UnsupportedProtocols => RequestError::Unsupported { peer },
                    OutboundFailure::Io(e) => RequestError::Io {
                        peer,
                        reason: e.to_string(),
                    },
                };
                if let Some((_, reply)) = self.outbound.remove(&request_id) {
                    let _ = reply.send(Err(mapped));
                }
                if provable {
                    // Our decoder says InvalidData only for a malformed or oversized response.
                    self.punish(peer, Misbehaviour::Undecodable);
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "inbound sync request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn on_inbound_request(
        &mut self,
        from: PeerId,
        request: SyncRequest,
        channel: ResponseChannel<SyncResponse>,
    ) {
        let busy = |channel| (channel, SyncResponse::Error("busy".to_string()));
        if self.inbound.len() >= MAX_PENDING_INBOUND {
            let (channel, response) = busy(channel);
            let _ = self
                .swarm
                .behaviour_mut()
                .sync
                .send_response(channel, response);
            return;
        }
        let (reply, answer) = oneshot::channel();
        let event = NetworkEvent::SyncRequest {
            from,
            request: request.clamped(),
            reply,
        };
        if self.events.try_send(event).is_err() {
            // Never drop a request silently: the peer learns we are busy and can ask someone else.
            let (channel, response) = busy(channel);
            let _ = self
                .swarm
                .behaviour_mut()
                .sync
                .send_response(channel, response);
            return;
        }
        let deadline = self.config.request_timeout;
        self.inbound.push(
            async move {
                let response = match tokio::time::timeout(deadline, answer).await {
                    Ok(Ok(response)) => response,
                    Ok(Err(_)) => SyncResponse::Error("request dropped unanswered".to_string()),
                    Err(_) => SyncResponse::Error("timeout".to_string()),
                };
                (channel, response)
            }
            .boxed(),
        );
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Publish { topic, payload } => {
                self.seq = self.seq.wrapping_add(1);
                let data = gossip::wrap(self.seq, &payload);
                self.publish(topic, data);
            }
            Command::PublishTxs(txs) => {
                let split = gossip::split_tx_batches(txs, self.config.max_tx_batch_bytes);
                if !split.too_large.is_empty() {
                    tracing::warn!(
                        count = split.too_large.len(),
                        max_batch_bytes = self.config.max_tx_batch_bytes,
                        "transactions larger than a gossip batch not published"
                    );
                }
                for batch in split.batches {
                    self.seq = self.seq.wrapping_add(1);
                    let data = gossip::wrap(self.seq, &batch);
                    self.publish(GossipTopic::Txs, data);
                }
            }
            Command::PublishRaw { topic, data } => self.publish(topic, data),
            Command::Validation { id, verdict } => self.validate(&id, verdict),
            Command::ReportPeer { peer, misbehaviour } => self.punish(peer, misbehaviour),
            Command::Request {
                peer,
                request,
                reply,
            } => {
                if self.outbound.len() >= MAX_PENDING_OUTBOUND {
                    let _ = reply.send(Err(RequestError::Busy {
                        limit: MAX_PENDING_OUTBOUND,
                    }));
                    return;
                }
                let id = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_request(&peer, request.clamped());
                self.outbound.insert(id, (peer, reply));
            }
            Command::Peers(reply) => {
                let _ = reply.send(self.connected.values().cloned().collect());
            }
            Command::RefusedBanned(reply) => {
                let _ = reply.send(self.refused_banned);
            }
            Command::Banned(reply) => {
                let now = Instant::now();
                let banned = self
                    .bans
                    .peers()
                    .into_iter()
                    .filter(|p| self.bans.is_banned(p, now))
                    .collect();
                let _ = reply.send(banned);
            }
            Command::TopicPeers { topic, reply } => {
                let hash = topic.ident().hash();
                let gossipsub = &self.swarm.behaviour().gossipsub;
                let subscribed = gossipsub
                    .all_peers()
                    .filter(|(_, topics)| topics.contains(&&hash))
                    .map(|(peer, _)| *peer)
                    .collect();
                let mesh = gossipsub.mesh_peers(&hash).copied().collect();
                let _ = reply.send(TopicPeers { subscribed, mesh });
            }
            Command::Dial(addr) => self.dial(addr, false),
            // Handled by the run loop.
            Command::Shutdown => {}
        }
    }

    fn publish(&mut self, topic: GossipTopic, data: Vec<u8>) {
        let len = data.len();
        match self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(topic.ident(), data)
        {
            Ok(_) => {}
            // Normal while alone or before subscriptions are exchanged; consensus re-gossips.
            Err(PublishError::NoPeersSubscribedToTopic) => {
                tracing::debug!(
                    topic = topic.name(),
                    "no peers on topic; message not published"
                );
            }
            Err(error) => {
                tracing::warn!(topic = topic.name(), bytes = len, %error, "publish failed");
            }
        }
    }
}
