//! `basalt light`: a verifying light-client proxy, as `cometbft light`. It follows a chain from a
//! header the operator trusts (`--height`, `--hash`) through one RPC server (`--primary`), verifies
//! every header it uses (skipping verification with bisection forwards, hash links backwards; the
//! rules of [`basalt_consensus::light`]) and serves on its own address only what it can check against
//! a verified header: `header`, `commit`, `validators`, `block` (its contents hashed against the
//! header), `light_block`, `abci_query` (the ICS-23 proof checked against the next header's app
//! hash), `status` (the primary's node info with verified sync info) and `health`; transactions are
//! passed to the primary. Anything it cannot verify is refused with an error, never served.
//!
//! - [`source`]: fetching and decoding from the primary; [`client`]: the verified store and the
//!   verification steps; [`serve`]: the JSON-RPC server.

pub mod client;
pub mod serve;
pub mod source;

use std::sync::Arc;
use std::time::Duration;

use basalt_consensus::light::{Options, SkipError, TrustLevel};
use basalt_consensus::types::{ChainId, Hash};

use client::LightClient;
use source::{Primary, Source};

/// Why the proxy cannot start or a request cannot be answered.
#[derive(Debug, thiserror::Error)]
pub enum LightError {
    /// An argument is invalid.
    #[error("{argument}: {reason}")]
    BadArgument {
        /// The flag.
        argument: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The primary did not answer usefully.
    #[error("primary rpc {method}: {reason}")]
    Rpc {
        /// The method.
        method: &'static str,
        /// Why.
        reason: String,
    },
    /// The primary refused a query.
    #[error("the primary refused the query with code {code}: {log}")]
    QueryRefused {
        /// Its code.
        code: u64,
        /// Its log.
        log: String,
    },
    /// The primary serves another chain.
    #[error("the primary serves chain {got}, not {expected}")]
    WrongChain {
        /// The chain asked for.
        expected: String,
        /// The chain served.
        got: String,
    },
    /// A header failed verification: the primary served something that is not the chain's.
    #[error("verification failed: {0}")]
    Verify(#[from] SkipError),
    /// An answer does not match what was verified.
    #[error("{what} is not verified: {reason}")]
    NotVerified {
        /// What was checked.
        what: String,
        /// Why it failed.
        reason: String,
    },
    /// A height that cannot be verified from what is trusted.
    #[error("height {height} cannot be verified: {reason}")]
    Unavailable {
        /// The height.
        height: u64,
        /// Why.
        reason: String,
    },
    /// A witness proved a different header of a height than the primary's, from the same trusted
    /// block: the validators signed two chains.
    #[error("conflicting headers at height {height}: the primary's is {primary_hash}, witness {witness} proves {witness_hash}; the height is refused")]
    Conflict {
        /// The height.
        height: u64,
        /// The witness.
        witness: String,
        /// The primary's header hash.
        primary_hash: String,
        /// The witness's header hash.
        witness_hash: String,
    },
    /// Every trusted header below the one asked for has outlived the trusting period.
    #[error("the trusted header at height {height} has expired: restart from a recent trusted height and hash")]
    Expired {
        /// The latest trusted height.
        height: u64,
    },
    /// The listener failed.
    #[error("listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// `basalt light`'s arguments (named as `cometbft light`'s).
#[derive(Debug, Clone, clap::Args)]
pub struct LightArgs {
    /// The chain to follow.
    pub chain_id: String,
    /// The RPC server to read from.
    #[arg(short = 'p', long)]
    pub primary: String,
    /// RPC servers to check the primary's headers against (comma-separated).
    #[arg(short = 'w', long, value_delimiter = ',')]
    pub witnesses: Vec<String>,
    /// Trusted height (its header's hash is `--hash`).
    #[arg(long)]
    pub height: u64,
    /// Trusted header hash (64 hex characters), obtained out of band.
    #[arg(long)]
    pub hash: String,
    /// Address to serve JSON-RPC on (`tcp://host:port`; port 0 picks a free one, printed at start).
    #[arg(long, default_value = "tcp://127.0.0.1:8888")]
    pub laddr: String,
    /// How long a verified header may be built on (shorter than the unbonding period).
    #[arg(long, default_value = "168h", value_parser = parse_duration)]
    pub trusting_period: Duration,
    /// Share of a trusted validator set that must sign a non-adjacent header, `n/d` in [1/3, 1].
    #[arg(long, default_value = "1/3")]
    pub trust_level: String,
    /// How far a header's time may be ahead of this machine's clock.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub max_clock_drift: Duration,
    /// How often to verify up to the primary's latest block.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub update_period: Duration,
    /// Timeout of each request to the primary.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::config::parse_duration(text)
}

fn bad(argument: &'static str, reason: impl Into<String>) -> LightError {
    LightError::BadArgument {
        argument,
        reason: reason.into(),
    }
}

/// `n/d` as a trust level.
pub fn parse_trust_level(text: &str) -> Result<TrustLevel, LightError> {
    let (n, d) = text
        .split_once('/')
        .ok_or_else(|| bad("--trust-level", format!("{text:?} is not n/d")))?;
    let parse = |s: &str| {
        s.trim()
            .parse::<u64>()
            .map_err(|e| bad("--trust-level", format!("{text:?}: {e}")))
    };
    TrustLevel::new(parse(n)?, parse(d)?).map_err(|e| bad("--trust-level", e.to_string()))
}

/// `basalt light`: verifies up to the primary's latest block, prints one JSON line with the address
/// served, then serves until interrupted, verifying new blocks every `--update-period`.
pub fn run(args: &LightArgs) -> Result<(), LightError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| bad("runtime", e.to_string()))?;
    runtime.block_on(start(args))
}

async fn start(args: &LightArgs) -> Result<(), LightError> {
    let chain_id = ChainId::new(&args.chain_id).map_err(|e| bad("chain id", e.to_string()))?;
    let hash = Hash::from_hex(&args.hash).map_err(|e| bad("--hash", e.to_string()))?;
    if args.height == 0 {
        return Err(bad("--height", "heights start at 1"));
    }
    if args.update_period.is_zero() {
        return Err(bad("--update-period", "must be above zero"));
    }
    let options = Options {
        trust_level: parse_trust_level(&args.trust_level)?,
        trusting_period_ms: duration_ms(args.trusting_period),
        max_clock_drift_ms: duration_ms(args.max_clock_drift),
    };
    let primary = Primary::new(&args.primary, args.timeout)?;
    let witnesses = args
        .witnesses
        .iter()
        .filter(|w| !w.is_empty())
        .map(|w| Primary::new(w, args.timeout))
        .collect::<Result<Vec<_>, _>>()?;
    let client = Arc::new(
        LightClient::start(primary, witnesses, chain_id, options, args.height, hash).await?,
    );
    // A primary that cannot be followed now is reported, not fatal: the root is verified, and each
    // request is verified (or refused) on its own.
    let latest = match client.update().await {
        Ok(latest) => latest,
        Err(e) => {
            eprintln!(
                "{}",
                serde_json::json!({"light": "update failed", "error": e.to_string()})
            );
            client.latest().await
        }
    };
    let addr = args
        .laddr
        .strip_prefix("tcp://")
        .unwrap_or(&args.laddr)
        .to_owned();
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|source| LightError::Listen {
            addr: addr.clone(),
            source,
        })?;
    let bound = listener
        .local_addr()
        .map_err(|source| LightError::Listen { addr, source })?;
    println!(
        "{}",
        serde_json::json!({
            "light": "serving", "laddr": format!("tcp://{bound}"), "chain_id": args.chain_id,
            "primary": client.primary().url(), "witnesses": client.witnesses().await,
            "verified_height": latest.height().0,
        })
    );
    let updater = tokio::spawn(follow(Arc::clone(&client), args.update_period));
    let shutdown = async {
        // A failure to install the handler leaves the proxy running until killed.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let served = serve::serve(listener, client, shutdown).await;
    updater.abort();
    served.map_err(|source| LightError::Listen {
        addr: bound.to_string(),
        source,
    })
}

/// Verifies up to the primary's latest block every `period`; a failure is reported on stderr and
/// tried again next time (the primary may restart), and nothing unverified is ever stored.
async fn follow(client: Arc<LightClient>, period: Duration) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(e) = client.update().await {
            eprintln!(
                "{}",
                serde_json::json!({"light": "update failed", "error": e.to_string()})
            );
        }
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
