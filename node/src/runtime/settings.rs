//! Everything the running node takes from `config.toml`, in the form each component takes it, built by
//! one function ([`Settings::from_config`]) so that a test can walk every key of the file and prove that
//! changing it changes what some component is given (issue 14, item 9: no key is silently ignored).

use std::net::SocketAddr;
use std::time::Duration;

use basalt_p2p::PeerAddr;
use basalt_state::StoreConfig;

use crate::config::{Config, ConsensusConfig, LogFormat};
use crate::mempool::MempoolConfig;
use crate::rpc::RpcLimits;
use basalt_state::bank::gas_price::GasPrice;

use super::pruner::Retention;
use super::snapshots::SnapshotPolicy;
use super::sync::SyncConfig;
use super::NodeError;

/// What the node's components are started with.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Name shown in `status` and to peers.
    pub moniker: String,
    /// Log filter and line format (`basalt start` installs them before the node runs).
    pub log: (String, LogFormat),
    /// The state store.
    pub store: StoreConfig,
    /// Mempool limits.
    pub mempool: MempoolConfig,
    /// Re-check the mempool after every block.
    pub recheck: bool,
    /// Least fee per unit of gas `check_tx` admits.
    pub min_gas_price: GasPrice,
    /// Gossip of locally submitted transactions: batch cadence and largest batch (`None`: off).
    pub tx_gossip: Option<(Duration, usize)>,
    /// The p2p layer (everything but the node key).
    pub network: NetworkSettings,
    /// Where the RPC server listens.
    pub rpc_laddr: SocketAddr,
    /// The RPC server's limits.
    pub rpc: RpcLimits,
    /// Prometheus metrics: namespace and address (`None`: off).
    pub metrics: Option<(String, SocketAddr)>,
    /// Consensus timeouts and block production.
    pub consensus: ConsensusConfig,
    /// Catch up by block sync.
    pub blocksync: bool,
    /// Block sync tunables.
    pub sync: SyncConfig,
    /// What the pruner keeps.
    pub retention: Retention,
    /// State snapshots to take (`[statesync]`).
    pub snapshots: SnapshotPolicy,
}

/// The p2p part of [`Settings`].
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkSettings {
    /// Listen address.
    pub listen_addr: SocketAddr,
    /// Peers dialled and redialled forever.
    pub persistent_peers: Vec<PeerAddr>,
    /// Most inbound connections.
    pub max_inbound: u32,
    /// Most outbound connections.
    pub max_outbound: u32,
    /// How long a misbehaving peer stays banned.
    pub ban_duration: Duration,
    /// Largest transaction batch gossiped or accepted.
    pub max_tx_batch_bytes: usize,
    /// Gossipsub heartbeat.
    pub gossip_heartbeat: Duration,
}

impl NetworkSettings {
    /// The network task's configuration with this node's key.
    pub fn network_config(&self, node_key_seed: [u8; 32]) -> basalt_p2p::NetworkConfig {
        basalt_p2p::NetworkConfig {
            node_key_seed,
            listen_addr: self.listen_addr,
            persistent_peers: self.persistent_peers.clone(),
            max_inbound: self.max_inbound,
            max_outbound: self.max_outbound,
            ban_duration: self.ban_duration,
            max_tx_batch_bytes: self.max_tx_batch_bytes,
            gossip_heartbeat: self.gossip_heartbeat,
            ..basalt_p2p::NetworkConfig::default()
        }
    }
}

impl Settings {
    /// The settings `config` gives (a persistent peer that does not parse is an error naming it).
    pub fn from_config(config: &Config) -> Result<Settings, NodeError> {
        let mut store = StoreConfig {
            keep_recent: config.storage.pruning_keep_recent,
            node_cache_entries: config.storage.state_cache_nodes,
            ..StoreConfig::default()
        };
        store.storage.block_cache_bytes = config.storage.block_cache_mb << 20;
        let mut persistent_peers = Vec::new();
        for entry in config.p2p.persistent_peer_list() {
            let peer = entry.parse::<PeerAddr>().map_err(|e| NodeError::Load {
                what: format!("p2p.persistent_peers entry {entry:?}"),
                reason: e.to_string(),
            })?;
            persistent_peers.push(peer);
        }
        let rpc = &config.rpc;
        Ok(Settings {
            moniker: config.moniker.clone(),
            log: log_settings(config),
            store,
            mempool: MempoolConfig {
                max_txs: config.mempool.size,
                max_bytes: config.mempool.max_txs_bytes,
                cache_size: config.mempool.cache_size,
                max_tx_bytes: config.mempool.max_tx_bytes,
            },
            recheck: config.mempool.recheck,
            min_gas_price: config.mempool.min_gas_price,
            tx_gossip: config.mempool.broadcast.then(|| {
                (
                    config.mempool.gossip_interval.max(Duration::from_millis(1)),
                    config.p2p.max_tx_batch_bytes,
                )
            }),
            network: NetworkSettings {
                listen_addr: config.p2p.laddr,
                persistent_peers,
                max_inbound: config.p2p.max_num_inbound_peers,
                max_outbound: config.p2p.max_num_outbound_peers,
                ban_duration: config.p2p.ban_duration,
                max_tx_batch_bytes: config.p2p.max_tx_batch_bytes,
                gossip_heartbeat: config.p2p.gossip_heartbeat,
            },
            rpc_laddr: rpc.laddr,
            rpc: RpcLimits {
                max_open_connections: rpc.max_open_connections,
                max_body_bytes: rpc.max_body_bytes,
                max_header_bytes: rpc.max_header_bytes,
                max_batch_requests: rpc.max_batch_requests,
                timeout_broadcast_tx_commit: rpc.timeout_broadcast_tx_commit,
                max_subscription_clients: rpc.max_subscription_clients,
                max_subscriptions_per_client: rpc.max_subscriptions_per_client,
                request_timeout: rpc.request_timeout,
                ..RpcLimits::default()
            },
            metrics: config.instrumentation.prometheus.then(|| {
                (
                    config.instrumentation.namespace.clone(),
                    config.instrumentation.prometheus_listen_addr,
                )
            }),
            consensus: config.consensus.clone(),
            blocksync: config.blocksync.enable,
            sync: SyncConfig::new(
                config.blocksync.max_parallel_requests,
                config.blocksync.batch_blocks,
            ),
            retention: Retention {
                retain_blocks: config.storage.retain_blocks,
                keep_recent: config.storage.pruning_keep_recent,
            },
            snapshots: SnapshotPolicy {
                interval: config.statesync.snapshot_interval,
                keep_recent: config.statesync.snapshot_keep_recent as usize,
                chunk_bytes: config.statesync.snapshot_chunk_bytes,
            },
        })
    }
}

/// The log filter and format of `config` (what `basalt start` installs).
pub fn log_settings(config: &Config) -> (String, LogFormat) {
    (config.log_level.clone(), config.log_format)
}

#[cfg(test)]
mod tests;
