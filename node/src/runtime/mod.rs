//! The running node: consensus driver, executor, block sync, gossip wiring and clean shutdown.
//!
//! [`run`] opens the store, reconciles it with the application (handshake), loads the signer and the WAL,
//! starts libp2p, the RPC and metrics servers and the transaction gossip, and runs the consensus
//! [`driver`] on its own thread (so RPC load never delays a vote) until SIGINT/SIGTERM.

pub mod blocks;
pub mod chain;
pub mod core;
pub mod driver;
pub mod evidence;
pub mod observe;
pub mod pruner;
pub mod regossip;
pub mod rpc_backend;
pub mod search;
pub mod settings;
pub mod shared;
pub mod snapshots;
pub mod statesync;
pub mod sync;
pub mod txs;
pub mod valsets;
pub mod walrec;

use std::sync::Arc;
use std::time::Duration;

use basalt_consensus::types::Hash;
use basalt_state::app::{handshake, results_hash, BankApp, BankAppConfig, HandshakeError};
use basalt_state::StateStore;
use tokio::sync::watch;

use crate::config::Config;
use crate::durability::privval::PrivValidator;
use crate::durability::wal::Wal;
use crate::genesis::GenesisDoc;
use crate::home::Home;
use crate::keys::{NodeKey, PrivValidatorKey};
use crate::mempool::Mempool;

/// Why the node stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A file could not be loaded.
    #[error("{what}: {reason}")]
    Load {
        /// Which file.
        what: String,
        /// Why.
        reason: String,
    },
    /// The store failed.
    #[error("block store / state: {0}")]
    Store(#[from] basalt_state::StateError),
    /// The start-up handshake refused to start.
    #[error("handshake: {0}")]
    Handshake(#[from] HandshakeError),
    /// The application failed while executing a block.
    #[error("application: {0}")]
    App(#[from] basalt_state::app::AppError),
    /// The consensus engine refused to start.
    #[error("consensus engine: {0}")]
    Engine(#[from] basalt_consensus::engine::EngineError),
    /// The WAL failed.
    #[error("consensus WAL: {0}")]
    Wal(#[from] crate::durability::wal::WalError),
    /// A WAL record does not decode.
    #[error("consensus WAL record is corrupt: {0} (run `basalt wal repair`)")]
    WalRecord(#[from] basalt_consensus::types::DecodeError),
    /// The signer's state could not be loaded.
    #[error("signer: {0}")]
    Privval(#[from] crate::durability::privval::PrivvalError),
    /// The network did not start.
    #[error("p2p: {0}")]
    Network(#[from] basalt_p2p::NetworkError),
    /// A committed block does not continue the chain this node executed: the node stops rather than
    /// build on a state the network does not share.
    #[error("diverged from the network: {0}; this node's state is not the network's (restore it from a trusted snapshot or resync from genesis)")]
    Diverged(#[from] chain::Diverged),
    /// Building our own block failed (a bug: logged with the reason).
    #[error("building a block: {0}")]
    BuildBlock(#[from] basalt_consensus::types::BlockError),
    /// A stored block could not be read.
    #[error("{0}")]
    BlockRead(#[from] blocks::ReadError),
    /// A listener could not be bound.
    #[error("cannot listen on {addr} ({what}): {source}")]
    Listen {
        /// Which server.
        what: &'static str,
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// A task or thread failed.
    #[error("internal: {0}")]
    Internal(String),
}

fn load_err(what: impl Into<String>, e: impl std::fmt::Display) -> NodeError {
    NodeError::Load {
        what: what.into(),
        reason: e.to_string(),
    }
}

/// Runs the node in `home` until SIGINT/SIGTERM.
pub async fn run(home: Home, config: Config) -> Result<(), NodeError> {
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        let _ = shutdown_tx.send(true);
    });
    run_until(home, config, shutdown_rx).await
}

/// Resolves once `shutdown` turns true (or its sender is gone).
async fn stopped(mut shutdown: watch::Receiver<bool>) {
    while !*shutdown.borrow() {
        if shutdown.changed().await.is_err() {
            break;
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs the node until `shutdown` turns true.
pub async fn run_until(
    home: Home,
    config: Config,
    shutdown: watch::Receiver<bool>,
) -> Result<(), NodeError> {
    let genesis = GenesisDoc::load(&home.genesis_file())
        .and_then(|doc| doc.validate())
        .map_err(|e| load_err(home.genesis_file().display().to_string(), e))?;
    let node_key = NodeKey::load(&home.node_key_file())
        .map_err(|e| load_err(home.node_key_file().display().to_string(), e))?;
    let pv_key = PrivValidatorKey::load(&home.priv_validator_key_file())
        .map_err(|e| load_err(home.priv_validator_key_file().display().to_string(), e))?;
    let chain_id = genesis.chain_id.clone();
    let settings = settings::Settings::from_config(&config)?;

    // State and application, reconciled.
    let store = Arc::new(StateStore::open(&home.db_dir(), settings.store.clone())?);
    // One cache of verified transaction signatures for every application instance of this node: a
    // signature checked at admission is not checked again when its block executes.
    let signatures = Arc::new(basalt_state::app::SignatureCache::default());
    // IBC transactions (kind 1) run in the IBC module. ibc-rs turns a connection's delay period into
    // blocks with the expected block time: the commit timeout, at least a second (ibc-go's default
    // is 30 s; Basalt's blocks come faster, and a smaller figure only makes delays more blocks long).
    let ibc = Arc::new(basalt_ibc::module::IbcModule::new(
        basalt_ibc::host::HostParams {
            max_expected_time_per_block: config
                .consensus
                .timeout_commit
                .max(Duration::from_secs(1)),
            max_client_trusting_period: genesis.evidence_max_age,
        },
    ));
    // Validator-set changes (kind 2) exist on chains whose genesis names a validator authority.
    let authority = basalt_state::bank::BankGenesis::from_json(&genesis.app_state)
        .map_err(|e| load_err(home.genesis_file().display().to_string(), e))?
        .validator_authority;
    let validators_module = authority.map(|authority| {
        Arc::new(basalt_state::app::validators::ValidatorModule::new(
            authority,
            &genesis.validators,
        ))
    });
    let bank = |store: &Arc<StateStore>| {
        let app = BankApp::new(
            store.clone(),
            BankAppConfig {
                chain_id: chain_id.clone(),
            },
        )
        .with_signature_cache(signatures.clone())
        .with_min_gas_price(settings.min_gas_price)
        .with_module(ibc.clone());
        match &validators_module {
            Some(module) => app.with_module(module.clone()),
            None => app,
        }
    };
    let mut app = bank(&store);
    let outcome = handshake(&store, &mut app, genesis.initial_height, &genesis.app_state)?;
    let height = outcome.height;
    let last = if height >= genesis.initial_height {
        blocks::read(&store, height)?
    } else {
        None
    };
    let last_results_hash = match store.block_results(height)? {
        Some(results) => results_hash(&results),
        None => Hash::ZERO,
    };
    // One history of validator sets for the chain state and the RPC backend.
    let sets = Arc::new(valsets::SetHistory::new(
        genesis.initial_height,
        genesis.validators.clone(),
    ));
    // With every committed block's validator updates, kept in the store with their blocks.
    for (block_height, bytes) in store.validator_updates(genesis.initial_height, usize::MAX)? {
        let updates = basalt_state::app::validators::decode_updates(&bytes).map_err(|e| {
            NodeError::Internal(format!(
                "stored validator updates of block {block_height}: {e}"
            ))
        })?;
        sets.record(block_height, updates)
            .map_err(|e| NodeError::Internal(format!("stored validator updates: {e}")))?;
    }
    let chain = chain::ChainState::new(
        chain_id.clone(),
        genesis.initial_height,
        genesis.genesis_time_ms,
        sets.clone(),
        height,
        last,
        outcome.app_hash,
        last_results_hash,
    )
    .with_committed_evidence(store.clone());
    tracing::info!(
        chain_id = %chain_id.as_str(),
        height,
        app_hash = %outcome.app_hash.to_hex_upper(),
        replayed = ?outcome.replayed,
        "state loaded"
    );

    // Signer and WAL.
    let privval = PrivValidator::load(
        pv_key.private_key().clone(),
        &home.priv_validator_state_file(),
    )?;
    let opened = Wal::open(&home.wal_file())?;
    if let Some(tail) = &opened.truncated_tail {
        tracing::warn!(wal = %home.wal_file().display(), %tail, "WAL had a torn tail: truncated");
    }
    let mut wal_records = Vec::with_capacity(opened.records.len());
    for bytes in opened.records {
        let record = walrec::WalRecord::from_bytes(&bytes)?;
        wal_records.push((record.height(), bytes));
    }
    let own_address = privval.address();
    let in_set = genesis.validators.index_of(&privval.address()).is_some();
    tracing::info!(
        address = %privval.address().to_hex_upper(),
        validator = in_set,
        wal_records = wal_records.len(),
        "signer loaded"
    );

    // Mempool and network.
    let mempool = Arc::new(Mempool::new(settings.mempool));
    let has_peers = !settings.network.persistent_peers.is_empty();
    let network_config = settings.network.network_config(node_key.seed());
    let (network, net_rx) = basalt_p2p::spawn(network_config).await?;
    tracing::info!(node_id = %network.local_peer_id(), p2p = %network.listen_addr(), "p2p listening");

    let shared = Arc::new(shared::Shared::new(
        shared::Snapshot {
            height,
            ..shared::Snapshot::default()
        },
        settings.consensus.max_block_txs,
    ));

    // Metrics.
    let metrics = if let Some((namespace, addr)) = &settings.metrics {
        let addr = *addr;
        let metrics = crate::metrics::Metrics::new(namespace, chain_id.as_str())
            .map_err(|e| NodeError::Internal(format!("metrics: {e}")))?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| NodeError::Listen {
                what: "metrics",
                addr,
                source,
            })?;
        let registry = metrics.registry().clone();
        let stop = stopped(shutdown.clone());
        tokio::spawn(async move {
            if let Err(e) = crate::metrics::serve_metrics(listener, registry, stop).await {
                tracing::error!(error = %e, "metrics server failed");
            }
        });
        tracing::info!(%addr, "metrics listening");
        Some(Arc::new(metrics))
    } else {
        None
    };

    // JSON-RPC.
    let backend = rpc_backend::NodeBackend {
        node_info: crate::rpc::backend::NodeInfo {
            id: network.local_peer_id().to_string(),
            listen_addr: network.listen_addr().to_string(),
            network: chain_id.as_str().to_owned(),
            version: crate::build_info::BuildInfo::current().version.to_owned(),
            moniker: settings.moniker.clone(),
            rpc_address: format!("tcp://{}", settings.rpc_laddr),
            tx_index: true,
        },
        genesis_json: Arc::from(genesis.json.as_str()),
        initial_height: genesis.initial_height,
        validator: Some((privval.address(), privval.public_key())),
        store: store.clone(),
        app: Arc::new(bank(&store)),
        mempool: mempool.clone(),
        network: network.clone(),
        shared: shared.clone(),
        metrics: metrics.clone(),
        sets,
    };
    let rpc_addr = settings.rpc_laddr;
    let rpc_listener = tokio::net::TcpListener::bind(rpc_addr)
        .await
        .map_err(|source| NodeError::Listen {
            what: "rpc",
            addr: rpc_addr,
            source,
        })?;
    let limits = settings.rpc.clone();
    let stop = stopped(shutdown.clone());
    tokio::spawn(async move {
        if let Err(e) = crate::rpc::serve(rpc_listener, Arc::new(backend), limits, stop).await {
            tracing::error!(error = %e, "RPC server failed");
        }
    });
    tracing::info!(addr = %rpc_addr, "RPC listening");

    // Transaction gossip: batches of locally submitted transactions.
    if let Some((every, max_batch)) = settings.tx_gossip {
        let mempool = mempool.clone();
        let network = network.clone();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let notify = mempool.new_tx_notify();
            loop {
                tokio::select! {
                    _ = stop.changed() => break,
                    () = notify.notified() => {}
                    () = tokio::time::sleep(every) => {}
                }
                // Let a burst accumulate into one batch.
                tokio::time::sleep(every).await;
                loop {
                    let txs = mempool.take_new_for_gossip(max_batch);
                    if txs.is_empty() {
                        break;
                    }
                    network.publish_txs(txs);
                }
            }
        });
    }

    let ingest = txs::spawn_ingest(
        mempool.clone(),
        bank(&store),
        network.clone(),
        metrics.clone(),
    )
    .map_err(|e| NodeError::Internal(format!("tx ingest thread: {e}")))?;
    let snapshot_policy = match settings.snapshots.interval {
        0 => None,
        _ => {
            let dir = snapshots::SnapshotDir::open(&home.data_dir().join("snapshots"))
                .map_err(|e| NodeError::Internal(format!("snapshot directory: {e}")))?;
            Some((Arc::new(dir), settings.snapshots))
        }
    };
    let driver = driver::Driver {
        config: settings.consensus.clone(),
        blocksync: settings.blocksync,
        sync_config: settings.sync,
        max_block_bytes: genesis.max_block_bytes,
        chain,
        app,
        store: store.clone(),
        privval: Some(privval),
        wal: opened.wal,
        wal_records,
        mempool: mempool.clone(),
        recheck: settings.recheck,
        ingest,
        network: network.clone(),
        shared: shared.clone(),
        observer: observe::Observer::new(metrics, Some(own_address), 0),
        snapshots: snapshot_policy.as_ref().map(|(dir, _)| dir.clone()),
        pruner: pruner::Pruner::spawn(store.clone(), settings.retention, snapshot_policy)
            .map_err(|e| NodeError::Internal(format!("cannot start the pruning thread: {e}")))?,
    };
    // The driver gets its own thread and runtime: blocking work there (RocksDB commits, signature checks)
    // never stalls the RPC server, and RPC load never delays a vote.
    let driver_shutdown = shutdown.clone();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("consensus".into())
        .spawn(move || {
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| NodeError::Internal(format!("consensus runtime: {e}")))
                .and_then(|rt| rt.block_on(driver.run(net_rx, driver_shutdown, has_peers)));
            let _ = done_tx.send(result);
        })
        .map_err(|e| NodeError::Internal(format!("consensus thread: {e}")))?;
    let result = done_rx
        .await
        .unwrap_or_else(|_| Err(NodeError::Internal("consensus thread died".into())));
    network.shutdown().await;
    if let Err(e) = &result {
        tracing::error!(error = %e, "node stopped with an error");
    }
    result
}
