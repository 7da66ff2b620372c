//! `config/config.toml`: the node configuration (CometBFT section layout), defaults, profiles and validation.
//!
//! Every field has a default, so an empty file is a valid configuration. Reading is strict: an unknown key
//! is an error (a typo must not silently fall back to a default), and every error names the field
//! (`consensus.timeout_propose: "3x" is not a duration: …`). Durations are strings as in CometBFT (`"3s"`,
//! `"500ms"`); socket addresses accept `"tcp://host:port"`, `"host:port"` and `":port"` (all interfaces).
//!
//! Each section is declared once with [`config_section!`]: the declaration gives the struct, its defaults,
//! the reader (with field names for errors) and the commented TOML writer, so the four cannot drift apart.
//! The doc comment of each field is also the comment written above it in `config.toml`.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use basalt_consensus::types::encoding::{MAX_BLOCK_TXS, MAX_TX_BYTES};
use basalt_consensus::TimeoutKind;
use basalt_state::bank::gas_price::GasPrice;

use crate::home::{write_file_durably, FileMode};

/// Largest config file read (a real one is a few KiB).
pub const MAX_CONFIG_FILE_BYTES: u64 = 1024 * 1024;

/// Most entries in `p2p.persistent_peers`.
pub const MAX_PERSISTENT_PEERS: usize = 1_000;

/// Longest moniker accepted.
pub const MAX_MONIKER_LEN: usize = 256;
/// Most requests in one JSON-RPC batch unless configured (`rpc.max_batch_requests`): the one default for
/// the config file and the server.
pub const DEFAULT_MAX_BATCH_REQUESTS: usize = 100;

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;
const GIB: usize = 1024 * 1024 * 1024;

/// Why a configuration cannot be read, written or used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_CONFIG_FILE_BYTES`].
    #[error("{}: {len} bytes, more than the limit of {max}", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// The file is not valid TOML.
    #[error("{}:{line}:{column}: TOML syntax error: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// A field has a bad value, or is unknown.
    #[error("{field}: {reason}")]
    Field {
        /// Dotted field name, e.g. `consensus.timeout_propose`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An error about the contents of a file, with the file's path in front.
    #[error("{}: {source}", path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// The error inside it.
        #[source]
        source: Box<ConfigError>,
    },
}

impl ConfigError {
    fn field(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        ConfigError::Field {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Format of log lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Plain,
    /// One JSON object per line.
    Json,
}

/// A type a config field can have: how it is read from and written to TOML.
trait ConfigValue: Sized {
    /// Reads the value; the error is the reason, without the field name (the caller adds it).
    fn read(value: &toml::Value) -> Result<Self, String>;
    /// The value as a TOML literal.
    fn render(&self) -> String;
}

fn type_error(expected: &str, value: &toml::Value) -> String {
    format!("expected {expected}, found {} {value}", value.type_str())
}

impl ConfigValue for String {
    fn read(value: &toml::Value) -> Result<Self, String> {
        value
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| type_error("a string", value))
    }
    fn render(&self) -> String {
        toml::Value::String(self.clone()).to_string()
    }
}

impl ConfigValue for bool {
    fn read(value: &toml::Value) -> Result<Self, String> {
        value
            .as_bool()
            .ok_or_else(|| type_error("true or false", value))
    }
    fn render(&self) -> String {
        self.to_string()
    }
}

macro_rules! integer_config_value {
    ($($ty:ty),*) => {$(
        impl ConfigValue for $ty {
            fn read(value: &toml::Value) -> Result<Self, String> {
                let int = value
                    .as_integer()
                    .ok_or_else(|| type_error("an integer", value))?;
                <$ty>::try_from(int).map_err(|_| {
                    format!("{int} is out of range ({}..={})", <$ty>::MIN, <$ty>::MAX)
                })
            }
            fn render(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
integer_config_value!(u32, u64, usize);

impl ConfigValue for Duration {
    fn read(value: &toml::Value) -> Result<Self, String> {
        let text = value
            .as_str()
            .ok_or_else(|| type_error("a duration string such as \"3s\" or \"500ms\"", value))?;
        parse_duration(text)
    }
    fn render(&self) -> String {
        format!("\"{}\"", format_duration(*self))
    }
}

impl ConfigValue for GasPrice {
    fn read(value: &toml::Value) -> Result<Self, String> {
        value
            .as_str()
            .ok_or_else(|| type_error("a decimal string such as \"0.025\"", value))?
            .parse()
            .map_err(|e: basalt_state::bank::gas_price::GasPriceError| e.to_string())
    }
    fn render(&self) -> String {
        format!("\"{self}\"")
    }
}

impl ConfigValue for SocketAddr {
    fn read(value: &toml::Value) -> Result<Self, String> {
        let text = value.as_str().ok_or_else(|| {
            type_error("an address string such as \"tcp://0.0.0.0:26656\"", value)
        })?;
        parse_socket_addr(text)
    }
    fn render(&self) -> String {
        format!("\"tcp://{self}\"")
    }
}

impl ConfigValue for LogFormat {
    fn read(value: &toml::Value) -> Result<Self, String> {
        match value.as_str() {
            Some("plain") => Ok(LogFormat::Plain),
            Some("json") => Ok(LogFormat::Json),
            Some(other) => Err(format!("{other:?} is not \"plain\" or \"json\"")),
            None => Err(type_error("\"plain\" or \"json\"", value)),
        }
    }
    fn render(&self) -> String {
        match self {
            LogFormat::Plain => "\"plain\"".to_owned(),
            LogFormat::Json => "\"json\"".to_owned(),
        }
    }
}

/// Parses a CometBFT-style duration (`"3s"`, `"500ms"`, `"1m30s"`, `"0s"`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    // CometBFT writes `0s` and Go accepts a bare `0`; humantime wants a unit, so special-case it.
    if text.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(text.trim()).map_err(|e| format!("{text:?} is not a duration: {e}"))
}

/// Formats a duration the way [`parse_duration`] reads it (`"3s"`, `"500ms"`, `"1s 500ms"`).
pub fn format_duration(duration: Duration) -> String {
    if duration.is_zero() {
        return "0s".to_owned();
    }
    humantime::format_duration(duration).to_string()
}

/// Parses `"tcp://host:port"`, `"host:port"` or `":port"` (all interfaces). The host must be an IP literal
/// or `localhost` (a listen address is bound, not resolved).
pub fn parse_socket_addr(text: &str) -> Result<SocketAddr, String> {
    let bare = text.strip_prefix("tcp://").unwrap_or(text);
    if let Some(port) = bare.strip_prefix(':') {
        let port: u16 = port
            .parse()
            .map_err(|_| format!("{text:?}: {port:?} is not a port number"))?;
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port));
    }
    if let Some(port) = bare.strip_prefix("localhost:") {
        let port: u16 = port
            .parse()
            .map_err(|_| format!("{text:?}: {port:?} is not a port number"))?;
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    bare.parse().map_err(|_| {
        format!("{text:?} is not an address of the form \"tcp://<ip>:<port>\", \"<ip>:<port>\" or \":<port>\"")
    })
}

/// Declares one config section: the struct (with a doc comment per field), its `Default`, its reader
/// (unknown keys refused, errors carrying `<section>.<field>`) and its commented TOML writer.
macro_rules! config_section {
    (
        $(#[doc = $sdoc:literal])*
        pub struct $name:ident = $section:literal {
            $(
                $(#[doc = $doc:literal])*
                pub $field:ident : $ty:ty = $default:expr,
            )*
        }
    ) => {
        $(#[doc = $sdoc])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            $(
                $(#[doc = $doc])*
                pub $field: $ty,
            )*
        }

        impl Default for $name {
            fn default() -> Self {
                $name { $($field: $default,)* }
            }
        }

        impl $name {
            /// The section's name in `config.toml`.
            pub const SECTION: &'static str = $section;

            const FIELDS: &'static [&'static str] = &[$(stringify!($field)),*];

            fn read(table: &toml::Table) -> Result<Self, ConfigError> {
                refuse_unknown_keys(table, Some($section), Self::FIELDS)?;
                let mut out = Self::default();
                $(
                    if let Some(value) = table.get(stringify!($field)) {
                        out.$field = ConfigValue::read(value).map_err(|reason| {
                            ConfigError::field(concat!($section, ".", stringify!($field)), reason)
                        })?;
                    }
                )*
                Ok(out)
            }

            fn write_toml(&self, out: &mut String) {
                $(
                    write_comment(out, &[$($doc),*]);
                    let _ = writeln!(out, "{} = {}\n", stringify!($field), self.$field.render());
                )*
            }
        }
    };
}

fn write_comment(out: &mut String, lines: &[&str]) {
    for line in lines {
        let _ = writeln!(out, "#{}", line.trim_end());
    }
}

fn refuse_unknown_keys(
    table: &toml::Table,
    section: Option<&str>,
    known: &[&str],
) -> Result<(), ConfigError> {
    for key in table.keys() {
        if !known.contains(&key.as_str()) {
            let field = match section {
                Some(section) => format!("{section}.{key}"),
                None => key.clone(),
            };
            return Err(ConfigError::field(
                field,
                format!("unknown field (known: {})", known.join(", ")),
            ));
        }
    }
    Ok(())
}

config_section! {
    /// `[rpc]`: the JSON-RPC server.
    pub struct RpcConfig = "rpc" {
        /// TCP address the RPC server listens on.
        pub laddr: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 26657),
        /// Most simultaneous HTTP and websocket connections; further ones wait.
        pub max_open_connections: usize = 900,
        /// Largest request body accepted, in bytes (requests above it get HTTP 413).
        pub max_body_bytes: usize = 1_000_000,
        /// Largest request header block accepted, in bytes.
        pub max_header_bytes: usize = MIB,
        /// Most requests in one JSON-RPC batch.
        pub max_batch_requests: usize = DEFAULT_MAX_BATCH_REQUESTS,
        /// How long broadcast_tx_commit waits for the transaction to be committed.
        pub timeout_broadcast_tx_commit: Duration = Duration::from_secs(10),
        /// Most websocket clients subscribed to events at once.
        pub max_subscription_clients: usize = 100,
        /// Most subscriptions one websocket client may hold.
        pub max_subscriptions_per_client: usize = 5,
        /// Longest time one request may take before it is answered with an error.
        pub request_timeout: Duration = Duration::from_secs(10),
    }
}

config_section! {
    /// `[p2p]`: the libp2p network.
    pub struct P2pConfig = "p2p" {
        /// TCP address the p2p layer listens on.
        pub laddr: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 26656),
        /// Comma-separated peers to stay connected to, each "<peer id>@<host>:<port>"; the peer id is the
        /// libp2p PeerId printed by `basalt show-node-id` on that node (12D3KooW...).
        pub persistent_peers: String = String::new(),
        /// Most inbound peer connections.
        pub max_num_inbound_peers: u32 = 40,
        /// Most outbound peer connections (persistent peers included).
        pub max_num_outbound_peers: u32 = 10,
        /// How long a peer that sent invalid data stays banned.
        pub ban_duration: Duration = Duration::from_secs(300),
        /// Gossipsub heartbeat interval (mesh maintenance and gossip emission).
        pub gossip_heartbeat: Duration = Duration::from_millis(200),
        /// Largest batch of transactions gossiped in one message, in bytes.
        pub max_tx_batch_bytes: usize = 4 * MIB,
    }
}

impl P2pConfig {
    /// The entries of `persistent_peers`, trimmed, empty entries dropped.
    pub fn persistent_peer_list(&self) -> Vec<String> {
        self.persistent_peers
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

config_section! {
    /// `[mempool]`: pending transactions.
    pub struct MempoolConfig = "mempool" {
        /// Most transactions held.
        pub size: usize = 50_000,
        /// Most bytes of transactions held (sum of their sizes).
        pub max_txs_bytes: usize = 256 * MIB,
        /// Size of the cache of recently seen transaction hashes (rejects duplicates before any check).
        pub cache_size: usize = 100_000,
        /// Largest single transaction accepted, in bytes.
        pub max_tx_bytes: usize = MIB,
        /// Re-check the remaining transactions against the new state after every block.
        pub recheck: bool = true,
        /// Gossip transactions to peers.
        pub broadcast: bool = true,
        /// How often new transactions are batched and gossiped.
        pub gossip_interval: Duration = Duration::from_millis(20),
        /// Least fee per unit of gas admitted ("0.025": a transaction's fee must be at least its gas
        /// limit times this, rounded up). Admission only: blocks execute whatever fee they carry.
        pub min_gas_price: GasPrice = GasPrice::ZERO,
    }
}

config_section! {
    /// `[consensus]`: timeouts and block production. Round r's timeout is `timeout_X + r * timeout_X_delta`.
    pub struct ConsensusConfig = "consensus" {
        /// How long to wait for a proposal block before prevoting nil.
        pub timeout_propose: Duration = Duration::from_secs(3),
        /// How much timeout_propose grows each round.
        pub timeout_propose_delta: Duration = Duration::from_millis(500),
        /// How long to wait after receiving +2/3 prevotes for anything (i.e. not a single block or nil).
        pub timeout_prevote: Duration = Duration::from_secs(1),
        /// How much timeout_prevote grows each round.
        pub timeout_prevote_delta: Duration = Duration::from_millis(500),
        /// How long to wait after receiving +2/3 precommits for anything (i.e. not a single block or nil).
        pub timeout_precommit: Duration = Duration::from_secs(1),
        /// How much timeout_precommit grows each round.
        pub timeout_precommit_delta: Duration = Duration::from_millis(500),
        /// How long to wait after committing a block before starting the next height (lets late
        /// precommits arrive and transactions accumulate).
        pub timeout_commit: Duration = Duration::from_secs(1),
        /// Produce blocks without transactions. `false`: after timeout_commit a height waits for a
        /// transaction (the block after one that changed the state is still made: it carries the new
        /// app hash).
        pub create_empty_blocks: bool = true,
        /// With a non-zero interval a height waits at most this long for a transaction, then an empty
        /// block is made (with `create_empty_blocks = true` too, as CometBFT).
        pub create_empty_blocks_interval: Duration = Duration::ZERO,
        /// Most transactions in one block.
        pub max_block_txs: usize = 20_000,
        /// Re-broadcast cadence of this node's own votes and proposal while a round makes no progress.
        pub gossip_interval: Duration = Duration::from_millis(200),
    }
}

impl ConsensusConfig {
    /// The timeout of `kind` in `round`: base + delta × round, saturating.
    pub fn timeout(&self, kind: TimeoutKind, round: u32) -> Duration {
        let (base, delta) = match kind {
            TimeoutKind::Propose => (self.timeout_propose, self.timeout_propose_delta),
            TimeoutKind::Prevote => (self.timeout_prevote, self.timeout_prevote_delta),
            TimeoutKind::Precommit => (self.timeout_precommit, self.timeout_precommit_delta),
        };
        base.saturating_add(delta.saturating_mul(round))
    }
}

config_section! {
    /// `[blocksync]`: catching up from peers.
    pub struct BlockSyncConfig = "blocksync" {
        /// Catch up by downloading committed blocks when behind, instead of only following consensus.
        pub enable: bool = true,
        /// Most block requests in flight at once.
        pub max_parallel_requests: usize = 8,
        /// Most blocks asked for in one request.
        pub batch_blocks: u32 = 32,
    }
}

config_section! {
    /// `[storage]`: what is kept on disk.
    pub struct StorageConfig = "storage" {
        /// Versions of the application state kept; older ones are pruned ("0": keep all, archive node).
        pub pruning_keep_recent: u64 = 0,
        /// Blocks kept in the block store; older ones are pruned ("0": keep all).
        pub retain_blocks: u64 = 0,
        /// RocksDB block cache size, in MiB.
        pub block_cache_mb: usize = 256,
        /// Inner nodes of the state tree kept decoded in memory (about 200 bytes each; twice the
        /// number of keys holds the whole tree, see `basalt_state::DEFAULT_NODE_CACHE_ENTRIES`).
        /// "0" disables the cache.
        pub state_cache_nodes: usize = basalt_state::DEFAULT_NODE_CACHE_ENTRIES,
    }
}

config_section! {
    /// `[statesync]`: state snapshots this node takes (and, later, serves to nodes that state-sync).
    pub struct StateSyncConfig = "statesync" {
        /// Take a snapshot of the application state every this many heights ("0": none). A
        /// snapshot of height h is the state after block h, whose app hash header h + 1 carries.
        pub snapshot_interval: u64 = 0,
        /// Snapshots kept on disk (the newest ones), in `data/snapshots/`.
        pub snapshot_keep_recent: u32 = 2,
        /// Target size of a snapshot chunk, in bytes.
        pub snapshot_chunk_bytes: usize = MIB,
    }
}

config_section! {
    /// `[instrumentation]`: Prometheus metrics.
    pub struct InstrumentationConfig = "instrumentation" {
        /// Serve Prometheus metrics at http://<prometheus_listen_addr>/metrics.
        pub prometheus: bool = true,
        /// Address of the metrics server.
        pub prometheus_listen_addr: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 26660),
        /// Prefix of every metric name ("cometbft"; dashboards of older nodes use "tendermint").
        pub namespace: String = "cometbft".to_owned(),
    }
}

/// The whole node configuration (`config/config.toml`).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Human-readable name of this node (shown in `status` and to peers).
    pub moniker: String,
    /// Log filter in tracing's `EnvFilter` syntax, e.g. `"info"` or `"info,basalt_node::p2p=debug"`.
    pub log_level: String,
    /// Log line format.
    pub log_format: LogFormat,
    /// `[rpc]`.
    pub rpc: RpcConfig,
    /// `[p2p]`.
    pub p2p: P2pConfig,
    /// `[mempool]`.
    pub mempool: MempoolConfig,
    /// `[consensus]`.
    pub consensus: ConsensusConfig,
    /// `[blocksync]`.
    pub blocksync: BlockSyncConfig,
    /// `[storage]`.
    pub storage: StorageConfig,
    /// `[statesync]`.
    pub statesync: StateSyncConfig,
    /// `[instrumentation]`.
    pub instrumentation: InstrumentationConfig,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            moniker: "basalt-node".to_owned(),
            log_level: "info".to_owned(),
            log_format: LogFormat::Plain,
            rpc: RpcConfig::default(),
            p2p: P2pConfig::default(),
            mempool: MempoolConfig::default(),
            consensus: ConsensusConfig::default(),
            blocksync: BlockSyncConfig::default(),
            storage: StorageConfig::default(),
            statesync: StateSyncConfig::default(),
            instrumentation: InstrumentationConfig::default(),
        }
    }
}

/// The config profiles `basalt init --profile` and `basalt testnet --profile` accept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// CometBFT's default timeouts (about one block per second).
    #[default]
    Default,
    /// Short timeouts for validators on one machine or a LAN (empty blocks every ~50 ms or less).
    FastLocal,
}

impl Profile {
    /// The configuration of this profile.
    pub fn config(self) -> Config {
        match self {
            Profile::Default => Config::default(),
            Profile::FastLocal => Config::fast_local(),
        }
    }
}

const TOP_LEVEL_KEYS: &[&str] = &[
    "moniker",
    "log_level",
    "log_format",
    RpcConfig::SECTION,
    P2pConfig::SECTION,
    MempoolConfig::SECTION,
    ConsensusConfig::SECTION,
    BlockSyncConfig::SECTION,
    StorageConfig::SECTION,
    StateSyncConfig::SECTION,
    InstrumentationConfig::SECTION,
];

impl Config {
    /// Reads and parses `config.toml` (missing fields take their defaults). Does not [`Config::validate`].
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let read_error = |source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        };
        let len = std::fs::metadata(path).map_err(read_error)?.len();
        if len > MAX_CONFIG_FILE_BYTES {
            return Err(ConfigError::TooLarge {
                path: path.to_path_buf(),
                len,
                max: MAX_CONFIG_FILE_BYTES,
            });
        }
        let text = std::fs::read_to_string(path).map_err(read_error)?;
        Config::from_toml_str(&text).map_err(|error| match error {
            ConfigError::Syntax {
                line,
                column,
                message,
                ..
            } => ConfigError::Syntax {
                path: path.to_path_buf(),
                line,
                column,
                message,
            },
            other => ConfigError::InFile {
                path: path.to_path_buf(),
                source: Box::new(other),
            },
        })
    }

    /// Parses TOML text (syntax errors carry an empty path; [`Config::load`] fills it in).
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        let table: toml::Table = toml::from_str(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map(|span| line_column(text, span.start))
                .unwrap_or((0, 0));
            ConfigError::Syntax {
                path: PathBuf::new(),
                line,
                column,
                message: e.message().trim().replace('\n', " "),
            }
        })?;
        Config::from_table(&table)
    }

    fn from_table(table: &toml::Table) -> Result<Config, ConfigError> {
        refuse_unknown_keys(table, None, TOP_LEVEL_KEYS)?;
        let mut config = Config::default();
        if let Some(value) = table.get("moniker") {
            config.moniker = String::read(value).map_err(|r| ConfigError::field("moniker", r))?;
        }
        if let Some(value) = table.get("log_level") {
            config.log_level =
                String::read(value).map_err(|r| ConfigError::field("log_level", r))?;
        }
        if let Some(value) = table.get("log_format") {
            config.log_format =
                LogFormat::read(value).map_err(|r| ConfigError::field("log_format", r))?;
        }
        let section = |name: &str| -> Result<Option<&toml::Table>, ConfigError> {
            match table.get(name) {
                None => Ok(None),
                Some(toml::Value::Table(t)) => Ok(Some(t)),
                Some(other) => Err(ConfigError::field(name, type_error("a [section]", other))),
            }
        };
        if let Some(t) = section(RpcConfig::SECTION)? {
            config.rpc = RpcConfig::read(t)?;
        }
        if let Some(t) = section(P2pConfig::SECTION)? {
            config.p2p = P2pConfig::read(t)?;
        }
        if let Some(t) = section(MempoolConfig::SECTION)? {
            config.mempool = MempoolConfig::read(t)?;
        }
        if let Some(t) = section(ConsensusConfig::SECTION)? {
            config.consensus = ConsensusConfig::read(t)?;
        }
        if let Some(t) = section(BlockSyncConfig::SECTION)? {
            config.blocksync = BlockSyncConfig::read(t)?;
        }
        if let Some(t) = section(StorageConfig::SECTION)? {
            config.storage = StorageConfig::read(t)?;
        }
        if let Some(t) = section(StateSyncConfig::SECTION)? {
            config.statesync = StateSyncConfig::read(t)?;
        }
        if let Some(t) = section(InstrumentationConfig::SECTION)? {
            config.instrumentation = InstrumentationConfig::read(t)?;
        }
        Ok(config)
    }

    /// Writes the commented TOML durably (temporary file, fsync, rename).
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        write_file_durably(path, self.to_toml().as_bytes(), FileMode::Public).map_err(|source| {
            ConfigError::Write {
                path: path.to_path_buf(),
                source,
            }
        })
    }

    /// The "fast-local" profile: validators on one machine or a LAN, where messages arrive in well under
    /// a millisecond, so timeouts only cover CPU time. Targets an empty-block interval of at most 50 ms.
    pub fn fast_local() -> Config {
        let mut config = Config::default();
        let c = &mut config.consensus;
        c.timeout_propose = Duration::from_millis(400);
        c.timeout_propose_delta = Duration::from_millis(100);
        c.timeout_prevote = Duration::from_millis(100);
        c.timeout_prevote_delta = Duration::from_millis(100);
        c.timeout_precommit = Duration::from_millis(100);
        c.timeout_precommit_delta = Duration::from_millis(100);
        c.timeout_commit = Duration::from_millis(10);
        c.gossip_interval = Duration::from_millis(50);
        config.p2p.gossip_heartbeat = Duration::from_millis(100);
        config
    }

    /// The configuration as commented TOML, in CometBFT's layout (base options, then one section each).
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# Basalt node configuration (CometBFT v0.38 layout; see docs/CONFIG.md).\n\
             # Durations are strings such as \"3s\" or \"500ms\"; addresses are \"tcp://<ip>:<port>\".\n\
             # Unknown keys are an error. Missing keys take their defaults.\n\n",
        );
        banner(&mut out, "Main Base Config Options");
        write_comment(&mut out, &[" A custom human readable name for this node."]);
        let _ = writeln!(out, "moniker = {}\n", self.moniker.render());
        write_comment(
            &mut out,
            &[
                " Log filter (tracing EnvFilter syntax): a level (error, warn, info, debug, trace),",
                " optionally with per-module overrides such as \"info,basalt_node=debug\".",
            ],
        );
        let _ = writeln!(out, "log_level = {}\n", self.log_level.render());
        write_comment(&mut out, &[" Log format: \"plain\" or \"json\"."]);
        let _ = writeln!(out, "log_format = {}\n", self.log_format.render());

        banner(&mut out, "Advanced Configuration Options");
        let mut section = |title: &str, name: &str, write: &dyn Fn(&mut String)| {
            let _ = writeln!(
                out,
                "#######################################################"
            );
            let _ = writeln!(out, "###       {title:<42}###");
            let _ = writeln!(
                out,
                "#######################################################"
            );
            let _ = writeln!(out, "[{name}]\n");
            write(&mut out);
        };
        section(
            "RPC Server Configuration Options",
            RpcConfig::SECTION,
            &|o| self.rpc.write_toml(o),
        );
        section("P2P Configuration Options", P2pConfig::SECTION, &|o| {
            self.p2p.write_toml(o)
        });
        section(
            "Mempool Configuration Options",
            MempoolConfig::SECTION,
            &|o| self.mempool.write_toml(o),
        );
        section(
            "Consensus Configuration Options",
            ConsensusConfig::SECTION,
            &|o| self.consensus.write_toml(o),
        );
        section(
            "Block Sync Configuration Options",
            BlockSyncConfig::SECTION,
            &|o| self.blocksync.write_toml(o),
        );
        section(
            "Storage Configuration Options",
            StorageConfig::SECTION,
            &|o| self.storage.write_toml(o),
        );
        section(
            "State Sync Configuration Options",
            StateSyncConfig::SECTION,
            &|o| self.statesync.write_toml(o),
        );
        section(
            "Instrumentation Configuration Options",
            InstrumentationConfig::SECTION,
            &|o| self.instrumentation.write_toml(o),
        );
        out
    }

    /// Checks every field against its limits and the fields against each other; the error names the
    /// field. A configuration that passes can be run (ports may still be taken, which only binding finds).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_base()?;
        self.validate_rpc()?;
        self.validate_p2p()?;
        self.validate_mempool()?;
        self.validate_consensus()?;
        self.validate_rest()?;
        self.validate_ports()
    }

    fn validate_base(&self) -> Result<(), ConfigError> {
        if self.moniker.len() > MAX_MONIKER_LEN {
            return Err(ConfigError::field(
                "moniker",
                format!(
                    "{} bytes, more than the limit of {MAX_MONIKER_LEN}",
                    self.moniker.len()
                ),
            ));
        }
        if self.moniker.chars().any(char::is_control) {
            return Err(ConfigError::field(
                "moniker",
                "must not contain control characters",
            ));
        }
        tracing_subscriber::EnvFilter::try_new(&self.log_level).map_err(|e| {
            ConfigError::field(
                "log_level",
                format!("{:?} is not a log filter: {e}", self.log_level),
            )
        })?;
        Ok(())
    }

    fn validate_rpc(&self) -> Result<(), ConfigError> {
        let r = &self.rpc;
        in_range(
            "rpc.max_open_connections",
            r.max_open_connections,
            1,
            100_000,
        )?;
        in_range("rpc.max_body_bytes", r.max_body_bytes, KIB, 64 * MIB)?;
        in_range("rpc.max_header_bytes", r.max_header_bytes, KIB, 16 * MIB)?;
        in_range("rpc.max_batch_requests", r.max_batch_requests, 1, 10_000)?;
        duration_in_range(
            "rpc.timeout_broadcast_tx_commit",
            r.timeout_broadcast_tx_commit,
            Duration::from_millis(1),
            Duration::from_secs(300),
        )?;
        in_range(
            "rpc.max_subscription_clients",
            r.max_subscription_clients,
            0,
            10_000,
        )?;
        in_range(
            "rpc.max_subscriptions_per_client",
            r.max_subscriptions_per_client,
            1,
            1_000,
        )?;
        duration_in_range(
            "rpc.request_timeout",
            r.request_timeout,
            Duration::from_millis(1),
            Duration::from_secs(600),
        )
    }

    fn validate_p2p(&self) -> Result<(), ConfigError> {
        let p = &self.p2p;
        let peers = p.persistent_peer_list();
        if peers.len() > MAX_PERSISTENT_PEERS {
            return Err(ConfigError::field(
                "p2p.persistent_peers",
                format!(
                    "{} entries, more than the limit of {MAX_PERSISTENT_PEERS}",
                    peers.len()
                ),
            ));
        }
        for (index, entry) in peers.iter().enumerate() {
            parse_peer_address(entry).map_err(|reason| {
                ConfigError::field(format!("p2p.persistent_peers[{index}]"), reason)
            })?;
        }
        in_range(
            "p2p.max_num_inbound_peers",
            p.max_num_inbound_peers as usize,
            0,
            10_000,
        )?;
        in_range(
            "p2p.max_num_outbound_peers",
            p.max_num_outbound_peers as usize,
            0,
            1_000,
        )?;
        if p.max_num_inbound_peers == 0 && p.max_num_outbound_peers == 0 {
            return Err(ConfigError::field(
                "p2p.max_num_outbound_peers",
                "0 with max_num_inbound_peers also 0: the node could never have a peer",
            ));
        }
        duration_in_range(
            "p2p.ban_duration",
            p.ban_duration,
            Duration::from_secs(1),
            Duration::from_secs(30 * 24 * 3600),
        )?;
        duration_in_range(
            "p2p.gossip_heartbeat",
            p.gossip_heartbeat,
            Duration::from_millis(10),
            Duration::from_secs(60),
        )?;
        in_range(
            "p2p.max_tx_batch_bytes",
            p.max_tx_batch_bytes,
            self.mempool.max_tx_bytes,
            64 * MIB,
        )
        .map_err(|e| with_hint(e, "(at least mempool.max_tx_bytes, so any tx fits)"))
    }

    fn validate_mempool(&self) -> Result<(), ConfigError> {
        let m = &self.mempool;
        in_range("mempool.size", m.size, 1, 10_000_000)?;
        in_range("mempool.max_tx_bytes", m.max_tx_bytes, 1, MAX_TX_BYTES)?;
        in_range(
            "mempool.max_txs_bytes",
            m.max_txs_bytes,
            m.max_tx_bytes,
            64 * GIB,
        )
        .map_err(|e| with_hint(e, "(at least mempool.max_tx_bytes)"))?;
        in_range("mempool.cache_size", m.cache_size, 0, 10_000_000)?;
        duration_in_range(
            "mempool.gossip_interval",
            m.gossip_interval,
            Duration::from_millis(1),
            Duration::from_secs(60),
        )
    }

    fn validate_consensus(&self) -> Result<(), ConfigError> {
        let c = &self.consensus;
        let min = Duration::from_millis(1);
        let max = Duration::from_secs(600);
        for (field, value, lowest) in [
            ("consensus.timeout_propose", c.timeout_propose, min),
            (
                "consensus.timeout_propose_delta",
                c.timeout_propose_delta,
                Duration::ZERO,
            ),
            ("consensus.timeout_prevote", c.timeout_prevote, min),
            (
                "consensus.timeout_prevote_delta",
                c.timeout_prevote_delta,
                Duration::ZERO,
            ),
            ("consensus.timeout_precommit", c.timeout_precommit, min),
            (
                "consensus.timeout_precommit_delta",
                c.timeout_precommit_delta,
                Duration::ZERO,
            ),
            ("consensus.timeout_commit", c.timeout_commit, Duration::ZERO),
        ] {
            duration_in_range(field, value, lowest, max)?;
        }
        // A timer is set this far ahead: bounded so that it is a time, not an overflow.
        duration_in_range(
            "consensus.create_empty_blocks_interval",
            c.create_empty_blocks_interval,
            Duration::ZERO,
            Duration::from_secs(7 * 24 * 3_600),
        )?;
        in_range("consensus.max_block_txs", c.max_block_txs, 1, MAX_BLOCK_TXS)?;
        duration_in_range(
            "consensus.gossip_interval",
            c.gossip_interval,
            Duration::from_millis(1),
            Duration::from_secs(60),
        )
    }

    fn validate_rest(&self) -> Result<(), ConfigError> {
        let b = &self.blocksync;
        in_range(
            "blocksync.max_parallel_requests",
            b.max_parallel_requests,
            1,
            256,
        )?;
        in_range("blocksync.batch_blocks", b.batch_blocks as usize, 1, 1_000)?;
        in_range(
            "storage.block_cache_mb",
            self.storage.block_cache_mb,
            1,
            64 * 1024,
        )?;
        in_range(
            "storage.state_cache_nodes",
            self.storage.state_cache_nodes,
            0,
            100_000_000,
        )?;
        let snapshots = &self.statesync;
        in_range(
            "statesync.snapshot_keep_recent",
            snapshots.snapshot_keep_recent as usize,
            1,
            100,
        )?;
        in_range(
            "statesync.snapshot_chunk_bytes",
            snapshots.snapshot_chunk_bytes,
            1024,
            basalt_state::snapshot::MAX_CHUNK_TARGET_BYTES,
        )?;
        let retain = self.storage.retain_blocks;
        if retain == 1 {
            // The last block's commit is needed to build the next block and to serve catching-up peers.
            return Err(ConfigError::field(
                "storage.retain_blocks",
                "1 is too few: keep 0 (all) or at least 2",
            ));
        }
        let namespace = &self.instrumentation.namespace;
        let valid_start = namespace
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if !valid_start
            || !namespace
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            || namespace.len() > 64
        {
            return Err(ConfigError::field(
                "instrumentation.namespace",
                format!("{namespace:?} is not a Prometheus name prefix ([a-zA-Z_][a-zA-Z0-9_]*, at most 64)"),
            ));
        }
        Ok(())
    }

    /// Two listeners of this node on the same port and overlapping addresses cannot both bind.
    fn validate_ports(&self) -> Result<(), ConfigError> {
        let mut listeners = vec![("p2p.laddr", self.p2p.laddr), ("rpc.laddr", self.rpc.laddr)];
        if self.instrumentation.prometheus {
            listeners.push((
                "instrumentation.prometheus_listen_addr",
                self.instrumentation.prometheus_listen_addr,
            ));
        }
        for (i, (field, addr)) in listeners.iter().enumerate() {
            for (other_field, other) in &listeners[..i] {
                let overlap = addr.ip() == other.ip()
                    || addr.ip().is_unspecified()
                    || other.ip().is_unspecified();
                if addr.port() != 0 && addr.port() == other.port() && overlap {
                    return Err(ConfigError::field(
                        *field,
                        format!("{addr} uses the same port as {other_field} ({other})"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Splits a persistent peer entry `"<peer id>@<host>:<port>"` into its peer id and `host:port`, checking
/// that the peer id is a libp2p PeerId and the port a number.
pub fn parse_peer_address(entry: &str) -> Result<(libp2p::PeerId, String, u16), String> {
    let (id, host_port) = entry
        .split_once('@')
        .ok_or_else(|| format!("{entry:?} is not of the form \"<peer id>@<host>:<port>\""))?;
    let peer_id: libp2p::PeerId = id
        .parse()
        .map_err(|_| format!("{id:?} is not a libp2p peer id (see `basalt show-node-id`)"))?;
    let (host, port) = host_port
        .rsplit_once(':')
        .ok_or_else(|| format!("{host_port:?} has no port"))?;
    if host.is_empty() {
        return Err(format!("{entry:?} has an empty host"));
    }
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("{port:?} is not a port number (1-65535)"))?;
    Ok((peer_id, host.to_owned(), port))
}

fn in_range(field: &str, value: usize, min: usize, max: usize) -> Result<(), ConfigError> {
    if value < min || value > max {
        return Err(ConfigError::field(
            field,
            format!("{value} is outside the allowed range {min}..={max}"),
        ));
    }
    Ok(())
}

fn duration_in_range(
    field: &str,
    value: Duration,
    min: Duration,
    max: Duration,
) -> Result<(), ConfigError> {
    if value < min || value > max {
        return Err(ConfigError::field(
            field,
            format!(
                "{} is outside the allowed range {}..={}",
                format_duration(value),
                format_duration(min),
                format_duration(max)
            ),
        ));
    }
    Ok(())
}

fn with_hint(error: ConfigError, hint: &str) -> ConfigError {
    match error {
        ConfigError::Field { field, reason } => ConfigError::Field {
            field,
            reason: format!("{reason} {hint}"),
        },
        other => other,
    }
}

fn banner(out: &mut String, title: &str) {
    let _ = writeln!(
        out,
        "#######################################################################"
    );
    let _ = writeln!(out, "###{:^65}###", title);
    let _ = writeln!(
        out,
        "#######################################################################\n"
    );
}

/// 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn empty_file_is_the_default_and_valid() {
        let config = Config::from_toml_str("").unwrap();
        assert_eq!(config, Config::default());
        config.validate().unwrap();
        Config::fast_local().validate().unwrap();
    }

    #[test]
    fn written_toml_reads_back_identically() {
        for mut config in [Config::default(), Config::fast_local()] {
            config.moniker = "node \"quoted\" \\ one".to_owned();
            config.p2p.persistent_peers =
                "12D3KooWSzfHkRUSMcpvkKDbxwJZcrH58VmxVSUUp6T8cSgRpXsK@127.0.0.1:26656".to_owned();
            config.log_format = LogFormat::Json;
            config.rpc.timeout_broadcast_tx_commit = Duration::from_millis(1500);
            config.mempool.min_gas_price = "0.025".parse().unwrap();
            let text = config.to_toml();
            assert_eq!(Config::from_toml_str(&text).unwrap(), config, "{text}");
            config.validate().unwrap();
        }
    }

    #[test]
    fn every_field_has_a_comment() {
        let text = Config::default().to_toml();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if line.contains(" = ") && !line.starts_with('#') {
                assert!(
                    i > 0 && lines[i - 1].starts_with('#'),
                    "no comment above {line:?}"
                );
            }
        }
    }

    #[test]
    fn cometbft_value_forms_are_accepted() {
        let config = Config::from_toml_str(
            "[rpc]\nladdr = \"0.0.0.0:1234\"\n[p2p]\nladdr = \":26656\"\n\
             [consensus]\ntimeout_commit = \"0\"\ntimeout_propose = \"1m30s\"\n\
             [instrumentation]\nprometheus_listen_addr = \"tcp://localhost:9000\"\n",
        )
        .unwrap();
        assert_eq!(config.rpc.laddr, "0.0.0.0:1234".parse().unwrap());
        assert_eq!(config.p2p.laddr, "0.0.0.0:26656".parse().unwrap());
        assert_eq!(config.consensus.timeout_commit, Duration::ZERO);
        assert_eq!(config.consensus.timeout_propose, Duration::from_secs(90));
        assert_eq!(
            config.instrumentation.prometheus_listen_addr,
            "127.0.0.1:9000".parse().unwrap()
        );
    }

    /// Each class of bad input gives an error naming the field (and for syntax errors, line and column).
    #[test]
    fn bad_configs_name_the_field() {
        let cases: &[(&str, &str)] = &[
            (
                "[consensus]\ntimeout_propose = \"3x\"",
                "consensus.timeout_propose: \"3x\" is not a duration",
            ),
            (
                "[consensus]\ntimeout_propose = 3",
                "consensus.timeout_propose: expected a duration",
            ),
            (
                "[rpc]\nladdr = \"nowhere\"",
                "rpc.laddr: \"nowhere\" is not an address",
            ),
            ("[rpc]\nladdr = \"tcp://1.2.3.4:99999\"", "rpc.laddr:"),
            (
                "[rpc]\nmax_body_bytes = -5",
                "rpc.max_body_bytes: -5 is out of range",
            ),
            (
                "[rpc]\nmax_body_bytes = \"big\"",
                "rpc.max_body_bytes: expected an integer",
            ),
            ("[rpc]\nbogus = 1", "rpc.bogus: unknown field"),
            ("bogus = 1", "bogus: unknown field"),
            ("rpc = 1", "rpc: expected a [section]"),
            ("log_format = \"xml\"", "log_format: \"xml\" is not"),
            (
                "[mempool]\nrecheck = \"yes\"",
                "mempool.recheck: expected true or false",
            ),
            (
                "[mempool]\nmin_gas_price = \"-1\"",
                "mempool.min_gas_price: \"-1\" is not a decimal number",
            ),
            (
                "[mempool]\nmin_gas_price = 0.025",
                "mempool.min_gas_price: expected a decimal string",
            ),
            (
                "[consensus]\ntimeout_propose = \"1s\"\ntimeout_propose = \"2s\"",
                "TOML syntax error",
            ),
            ("moniker = \"unterminated", "TOML syntax error"),
        ];
        for (text, expected) in cases {
            let error = Config::from_toml_str(text).unwrap_err().to_string();
            assert!(
                error.contains(expected),
                "{text:?}: {error:?} lacks {expected:?}"
            );
            assert!(!error.contains('\n'), "multi-line error {error:?}");
        }
    }

    #[test]
    fn syntax_errors_give_line_and_column() {
        let error = Config::from_toml_str("moniker = \"a\"\n[rpc]\nladdr = = 3\n").unwrap_err();
        match error {
            ConfigError::Syntax { line, column, .. } => {
                assert_eq!(line, 3);
                assert!(column > 1, "column {column}");
            }
            other => panic!("{other:?}"),
        }
    }

    /// Validation rejects zero and absurd limits, naming the field.
    #[test]
    fn validation_names_the_field() {
        type Edit = fn(&mut Config);
        let cases: &[(Edit, &str)] = &[
            (
                |c| c.rpc.max_open_connections = 0,
                "rpc.max_open_connections",
            ),
            (|c| c.rpc.max_body_bytes = 10, "rpc.max_body_bytes"),
            (|c| c.rpc.max_batch_requests = 0, "rpc.max_batch_requests"),
            (
                |c| c.rpc.request_timeout = Duration::ZERO,
                "rpc.request_timeout",
            ),
            (
                |c| c.rpc.max_subscriptions_per_client = 0,
                "rpc.max_subscriptions_per_client",
            ),
            (|c| c.mempool.size = 0, "mempool.size"),
            (|c| c.mempool.max_tx_bytes = 2 * MIB, "mempool.max_tx_bytes"),
            (|c| c.mempool.max_txs_bytes = 10, "mempool.max_txs_bytes"),
            (
                |c| c.consensus.timeout_propose = Duration::ZERO,
                "consensus.timeout_propose",
            ),
            (
                |c| c.consensus.timeout_commit = Duration::from_secs(3600),
                "consensus.timeout_commit",
            ),
            (|c| c.consensus.max_block_txs = 0, "consensus.max_block_txs"),
            (
                |c| c.consensus.max_block_txs = MAX_BLOCK_TXS + 1,
                "consensus.max_block_txs",
            ),
            (
                |c| c.p2p.gossip_heartbeat = Duration::ZERO,
                "p2p.gossip_heartbeat",
            ),
            (|c| c.p2p.max_tx_batch_bytes = 100, "p2p.max_tx_batch_bytes"),
            (
                |c| {
                    c.p2p.max_num_inbound_peers = 0;
                    c.p2p.max_num_outbound_peers = 0
                },
                "p2p.max_num_outbound_peers",
            ),
            (
                |c| c.p2p.persistent_peers = "nobody@1.2.3.4:5".into(),
                "p2p.persistent_peers[0]",
            ),
            (
                |c| {
                    c.p2p.persistent_peers =
                        "12D3KooWSzfHkRUSMcpvkKDbxwJZcrH58VmxVSUUp6T8cSgRpXsK@host".into()
                },
                "p2p.persistent_peers[0]",
            ),
            (|c| c.blocksync.batch_blocks = 0, "blocksync.batch_blocks"),
            (
                |c| c.statesync.snapshot_keep_recent = 0,
                "statesync.snapshot_keep_recent",
            ),
            (
                |c| c.statesync.snapshot_chunk_bytes = 100,
                "statesync.snapshot_chunk_bytes",
            ),
            (
                |c| c.blocksync.max_parallel_requests = 0,
                "blocksync.max_parallel_requests",
            ),
            (|c| c.storage.block_cache_mb = 0, "storage.block_cache_mb"),
            (
                |c| c.storage.state_cache_nodes = 100_000_001,
                "storage.state_cache_nodes",
            ),
            (|c| c.storage.retain_blocks = 1, "storage.retain_blocks"),
            (
                |c| c.instrumentation.namespace = "9bad-name".into(),
                "instrumentation.namespace",
            ),
            (|c| c.log_level = "info,[".into(), "log_level"),
            (|c| c.moniker = "x".repeat(MAX_MONIKER_LEN + 1), "moniker"),
            (
                |c| c.rpc.laddr = "0.0.0.0:26656".parse().unwrap(),
                "rpc.laddr",
            ),
        ];
        for (edit, field) in cases {
            let mut config = Config::default();
            edit(&mut config);
            match config.validate() {
                Err(ConfigError::Field { field: named, .. }) => assert_eq!(&named, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn timeouts_grow_per_round_and_saturate() {
        let c = Config::fast_local().consensus;
        assert_eq!(
            c.timeout(TimeoutKind::Propose, 0),
            Duration::from_millis(400)
        );
        assert_eq!(
            c.timeout(TimeoutKind::Propose, 2),
            Duration::from_millis(600)
        );
        assert_eq!(
            c.timeout(TimeoutKind::Prevote, 1),
            Duration::from_millis(200)
        );
        assert_eq!(
            c.timeout(TimeoutKind::Precommit, 3),
            Duration::from_millis(400)
        );
        let mut huge = c.clone();
        huge.timeout_propose_delta = Duration::MAX;
        assert_eq!(huge.timeout(TimeoutKind::Propose, u32::MAX), Duration::MAX);
    }

    #[test]
    fn persistent_peer_list_trims_and_drops_empty() {
        let p = P2pConfig {
            persistent_peers: " a@h:1 ,, b@h:2,".to_owned(),
            ..P2pConfig::default()
        };
        assert_eq!(p.persistent_peer_list(), vec!["a@h:1", "b@h:2"]);
    }

    #[test]
    fn load_and_save_roundtrip_with_path_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let config = Config::fast_local();
        config.save(&path).unwrap();
        assert_eq!(Config::load(&path).unwrap(), config);
        std::fs::write(&path, "[consensus]\ntimeout_commit = \"soon\"\n").unwrap();
        let error = Config::load(&path).unwrap_err().to_string();
        assert!(
            error.contains("config.toml: consensus.timeout_commit"),
            "{error}"
        );
        let missing = Config::load(&dir.path().join("absent.toml")).unwrap_err();
        assert!(matches!(missing, ConfigError::Read { .. }));
    }

    #[test]
    fn empty_block_settings_are_read_and_the_interval_bounded() {
        let config = Config::from_toml_str(
            "[consensus]\ncreate_empty_blocks = false\ncreate_empty_blocks_interval = \"30s\"\n",
        )
        .unwrap();
        config.validate().unwrap();
        assert!(!config.consensus.create_empty_blocks);
        assert_eq!(
            config.consensus.create_empty_blocks_interval,
            Duration::from_secs(30)
        );
        let far = Config::from_toml_str("[consensus]\ncreate_empty_blocks_interval = \"8760h\"\n")
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            far.contains("consensus.create_empty_blocks_interval"),
            "{far}"
        );
    }
}
