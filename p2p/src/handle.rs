//! What the node sees: the handle to the network task, the events it receives and the types they carry.

use std::net::SocketAddr;
use std::time::SystemTime;

use basalt_consensus::engine::ConsensusMessage;
use basalt_consensus::types::Tx;
use libp2p::gossipsub::MessageId;
use libp2p::PeerId;
use tokio::sync::{mpsc, oneshot, watch};

use crate::error::RequestError;
use crate::gossip::GossipTopic;
use crate::sync::{SyncRequest, SyncResponse};

/// Identifies a received gossip message so the node can report its verdict on it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GossipId {
    pub(crate) message_id: MessageId,
    pub(crate) source: PeerId,
}

impl GossipId {
    /// The peer that forwarded the message to us (the one penalised if it is invalid).
    pub fn source(&self) -> PeerId {
        self.source
    }
}

/// The node's verdict on a gossip message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Valid: forward it to the mesh.
    Accept,
    /// Invalid: drop it and penalise the peer that sent it (gossipsub peer score).
    Reject,
    /// Not useful (stale, duplicate, cannot judge): drop it without penalty.
    Ignore,
}

/// What a peer did wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Misbehaviour {
    /// Sent bytes that do not decode.
    Undecodable,
    /// Sent a message over its size limit.
    Oversized,
    /// Sent a message with an invalid signature.
    BadSignature,
    /// Sent a structurally or semantically invalid block.
    InvalidBlock,
    /// Claimed a height it could not serve, or served blocks that contradict its claim.
    LiedAboutHeight,
    /// Anything else; not provable on its own, so it bans only after
    /// [`crate::MAX_MINOR_OFFENCES`] of them.
    Other(String),
}

impl Misbehaviour {
    /// Whether one such offence is enough to ban (it proves the peer is faulty or malicious).
    pub fn is_provable(&self) -> bool {
        !matches!(self, Misbehaviour::Other(_))
    }
}

impl std::fmt::Display for Misbehaviour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Misbehaviour::Undecodable => write!(f, "undecodable message"),
            Misbehaviour::Oversized => write!(f, "oversized message"),
            Misbehaviour::BadSignature => write!(f, "bad signature"),
            Misbehaviour::InvalidBlock => write!(f, "invalid block"),
            Misbehaviour::LiedAboutHeight => write!(f, "lied about its height"),
            Misbehaviour::Other(reason) => write!(f, "{reason}"),
        }
    }
}

/// A connected peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// Its id.
    pub id: PeerId,
    /// The remote address of the first established connection, if it is an ip/tcp address.
    pub addr: Option<SocketAddr>,
    /// Whether we dialled it (first established connection).
    pub outbound: bool,
    /// When the first established connection came up.
    pub since: SystemTime,
}

/// What the network tells the node.
// The shape is the node's API; each event is moved once, so boxing the large variant buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum NetworkEvent {
    /// A decoded consensus message; report a [`Verdict`] on `id` (nothing is forwarded before Accept).
    Consensus {
        /// For [`NetworkHandle::report_validation`].
        id: GossipId,
        /// The peer that forwarded it.
        from: PeerId,
        /// The message.
        message: ConsensusMessage,
    },
    /// A decoded, non-empty transaction batch; report a [`Verdict`] on `id`.
    Txs {
        /// For [`NetworkHandle::report_validation`].
        id: GossipId,
        /// The peer that forwarded it.
        from: PeerId,
        /// The transactions.
        txs: Vec<Tx>,
    },
    /// A peer asks something; answer through `reply` within the request timeout (an unanswered or
    /// dropped `reply` is answered with [`SyncResponse::Error`]).
    SyncRequest {
        /// Who asks.
        from: PeerId,
        /// What (a `Blocks` count is already clamped to [`crate::MAX_SYNC_BLOCKS`]).
        request: SyncRequest,
        /// Where the answer goes.
        reply: oneshot::Sender<SyncResponse>,
    },
    /// The first connection to a peer is established.
    PeerConnected {
        /// The peer.
        peer: PeerId,
        /// Its ip:port, if known.
        addr: Option<SocketAddr>,
    },
    /// The last connection to a peer closed.
    PeerDisconnected {
        /// The peer.
        peer: PeerId,
    },
}

/// Commands from handles to the swarm task.
pub(crate) enum Command {
    Publish {
        topic: GossipTopic,
        payload: Vec<u8>,
    },
    PublishTxs(Vec<Tx>),
    PublishRaw {
        topic: GossipTopic,
        data: Vec<u8>,
    },
    Validation {
        id: GossipId,
        verdict: Verdict,
    },
    ReportPeer {
        peer: PeerId,
        misbehaviour: Misbehaviour,
    },
    Request {
        peer: PeerId,
        request: SyncRequest,
        reply: oneshot::Sender<Result<SyncResponse, RequestError>>,
    },
    Peers(oneshot::Sender<Vec<PeerInfo>>),
    Banned(oneshot::Sender<Vec<PeerId>>),
    RefusedBanned(oneshot::Sender<u64>),
    TopicPeers {
        topic: GossipTopic,
        reply: oneshot::Sender<TopicPeers>,
    },
    Dial(crate::config::PeerAddr),
    Shutdown,
}

impl Command {
    /// A short name for logs (never the payload).
    fn kind(&self) -> &'static str {
        match self {
            Command::Publish { .. } => "publish",
            Command::PublishTxs(_) => "publish_txs",
            Command::PublishRaw { .. } => "publish_raw",
            Command::Validation { .. } => "report_validation",
            Command::ReportPeer { .. } => "report_peer",
            Command::Request { .. } => "request",
            Command::Peers(_) => "peers",
            Command::Banned(_) => "banned",
            Command::RefusedBanned(_) => "refused_banned",
            Command::TopicPeers { .. } => "topic_peers",
            Command::Dial(_) => "dial",
            Command::Shutdown => "shutdown",
        }
    }
}

/// Who is on a gossip topic, as seen by this node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopicPeers {
    /// Peers that told us they subscribe to the topic.
    pub subscribed: Vec<PeerId>,
    /// Peers in our mesh for the topic (they receive what we forward).
    pub mesh: Vec<PeerId>,
}

/// A cheap, cloneable handle to the network task.
#[derive(Clone, Debug)]
pub struct NetworkHandle {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) local_peer_id: PeerId,
    pub(crate) listen_addr: SocketAddr,
    pub(crate) stopped: watch::Receiver<bool>,
    pub(crate) request_timeout: std::time::Duration,
}

impl NetworkHandle {
    /// This node's peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    /// The address the listener is bound to (the real port when the config asked for port 0).
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen_addr
    }

    /// Publishes a consensus message. Every call publishes anew (a fresh envelope sequence number), so a
    /// deliberate re-broadcast is not dropped as a duplicate. Never blocks: if the command queue is full
    /// the publish is dropped with a warning (consensus re-gossips).
    pub fn publish_consensus(&self, msg: &ConsensusMessage) {
        self.send(Command::Publish {
            topic: GossipTopic::Consensus,
            payload: msg.to_bytes(),
        });
    }

    /// Publishes transactions as one batch, split into several if larger than `max_tx_batch_bytes`.
    pub fn publish_txs(&self, txs: Vec<Tx>) {
        if !txs.is_empty() {
            self.send(Command::PublishTxs(txs));
        }
    }

    /// Reports the node's verdict on a received gossip message.
    pub fn report_validation(&self, id: GossipId, verdict: Verdict) {
        self.send(Command::Validation { id, verdict });
    }

    /// Reports a misbehaving peer; see the ban policy in the crate docs.
    pub fn report_peer(&self, peer: PeerId, misbehaviour: Misbehaviour) {
        self.send(Command::ReportPeer { peer, misbehaviour });
    }

    /// Dials a peer once (no redial); for peers learnt at run time.
    pub fn dial(&self, addr: crate::config::PeerAddr) {
        self.send(Command::Dial(addr));
    }

    /// Sends a sync request to `peer` and waits for the answer (at most the configured request timeout).
    pub async fn request(
        &self,
        peer: PeerId,
        req: SyncRequest,
    ) -> Result<SyncResponse, RequestError> {
        let (reply, answer) = oneshot::channel();
        let command = Command::Request {
            peer,
            request: req,
            reply,
        };
        if self.commands.send(command).await.is_err() {
            return Err(RequestError::Shutdown);
        }
        // The requester's deadline is kept here; the swarm's own libp2p timeout is longer (see
        // `runtime`), so a peer whose node never answers gives `Timeout`, not a stream error.
        match tokio::time::timeout(self.request_timeout, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(RequestError::Shutdown),
            Err(_) => Err(RequestError::Timeout { peer }),
        }
    }

    /// The connected peers.
    pub async fn peers(&self) -> Vec<PeerInfo> {
        self.ask(Command::Peers).await.unwrap_or_default()
    }

    /// The currently banned peers.
    pub async fn banned(&self) -> Vec<PeerId> {
        self.ask(Command::Banned).await.unwrap_or_default()
    }

    /// How many connections from banned peers were refused (or closed at once) since start.
    pub async fn refused_banned(&self) -> u64 {
        self.ask(Command::RefusedBanned).await.unwrap_or_default()
    }

    /// Who is subscribed to / in our mesh for a gossip topic (for status pages and tests waiting for
    /// the mesh to form).
    pub async fn topic_peers(&self, topic: GossipTopic) -> TopicPeers {
        self.ask(|reply| Command::TopicPeers { topic, reply })
            .await
            .unwrap_or_default()
    }

    /// Publishes raw bytes (no envelope, no checks) on a topic. Only for tests of misbehaving peers.
    #[doc(hidden)]
    pub fn publish_raw_for_tests(&self, topic: GossipTopic, data: Vec<u8>) {
        self.send(Command::PublishRaw { topic, data });
    }

    /// Closes the swarm and returns when the network task has ended.
    pub async fn shutdown(self) {
        let mut stopped = self.stopped.clone();
        let _ = self.commands.send(Command::Shutdown).await;
        // An error means the task is gone already, which is what we wait for.
        let _ = stopped.wait_for(|s| *s).await;
    }

    /// Whether the network task has ended.
    pub fn is_stopped(&self) -> bool {
        *self.stopped.borrow()
    }

    fn send(&self, command: Command) {
        match self.commands.try_send(command) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(command)) => {
                tracing::warn!(
                    command = command.kind(),
                    "network command queue full; command dropped"
                );
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::debug!("network task stopped; command dropped");
            }
        }
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Option<T> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(make(reply)).await.ok()?;
        answer.await.ok()
    }
}
