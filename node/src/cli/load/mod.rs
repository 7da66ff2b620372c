//! `basalt load`: pushes pre-signed bank transfers at one or more nodes for a bounded time and reports
//! what was accepted and committed, committed tx/s and submit → commit latency.
//!
//! Phases: (1) read `accounts.json`, the chain id (`status`) and every account's committed nonce
//! (`abci_query /bank/account/<hex>`), and sign all transfers on all cores; (2) subscribe to
//! `tm.event='NewBlock'` on the first node and connect `--connections` submitters (accounts are pinned
//! to nodes, `i % nodes`); (3) start the clock and submit for `--duration`, at `--rate` (each new
//! transaction has a slot in a fixed-rate schedule, [`RateSchedule`]) or as fast as accepted, each
//! account at most [`NONCE_WINDOW`] transactions ahead of its committed nonce (the mempool refuses
//! more); (4) stop submitting and wait up to `--drain` for what was sent to commit; (5) read the nonces
//! of accounts with transactions still outstanding (commits the watcher did not see); (6) report.
//!
//! Every block's transactions are hashed (SHA-256, as `Tx::hash`) and matched to the transaction's
//! intended send time — its slot in the schedule with `--rate`, its first send without — which gives
//! the latency sample (an HDR histogram), so a client that falls behind its schedule cannot hide its
//! own queueing. The watcher follows every height (subscription, then reading blocks by height when the
//! subscription skipped or ended); if it cannot, the run fails. The report accounts for every
//! transaction: offered = sent + not sent, sent = committed + pending + lost.

pub mod presign;
pub mod report;
pub mod schedule;
pub mod submit;
pub mod watch;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use basalt_state::bank::NONCE_WINDOW;
use tokio::sync::{watch as tokio_watch, Notify};

use super::tx::{OutputFormat, TxError};
use super::CliError;
use presign::{load_accounts, presign, query_nonces, Presigned, MAX_TOTAL_TXS};
use report::{LoadReport, RunParams, Stats};
use schedule::{RateSchedule, Scheduler};
use submit::{websocket_url, Submitter, Transport};
use watch::Watcher;

/// Longest `--duration`.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);
/// Longest `--drain`.
pub const MAX_DRAIN: Duration = Duration::from_secs(600);
/// Most `--connections`.
pub const MAX_CONNECTIONS: usize = 256;
/// Largest `--batch` (the node's `max_batch_requests` defaults to 100).
pub const MAX_BATCH: usize = 1000;
/// Most `--node` addresses.
pub const MAX_NODES: usize = 64;
/// Rate assumed when sizing the presigned set for `--max` without `--txs-per-account`.
const MAX_MODE_RATE_GUESS: f64 = 15_000.0;
/// Back-off of an account after a transient rejection.
const RETRY_BACKOFF_US: u64 = 100_000;
/// An account whose sent transactions have not committed for this long sends them again.
const STALL_US: u64 = report::STALL_S * 1_000_000;
/// How often the supervisor looks at stalls and exhaustion.
const SUPERVISE_EVERY: Duration = Duration::from_millis(100);
/// Longest idle wait of a submitter with nothing ready (it is also woken by every block).
const IDLE_WAIT: Duration = Duration::from_millis(20);

/// Why `basalt load` failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The accounts file cannot be used.
    #[error("accounts file {}: {reason}", path.display())]
    Accounts {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A node cannot be reached.
    #[error("cannot connect to {node}: {reason}")]
    Connect {
        /// The address.
        node: String,
        /// Why.
        reason: String,
    },
    /// The block subscription failed.
    #[error("block subscription {url}: {reason}")]
    Watch {
        /// The websocket URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// A query before the run failed (chain id, nonces).
    #[error(transparent)]
    Rpc(#[from] TxError),
    /// Signing failed.
    #[error("presigning: {reason}")]
    Presign {
        /// Why.
        reason: String,
    },
    /// An argument is invalid.
    #[error("{argument}: {reason}")]
    BadArgument {
        /// The flag.
        argument: &'static str,
        /// Why.
        reason: String,
    },
}

/// Arguments of `basalt load`.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// Funded accounts: the accounts.json written by `basalt testnet`.
    #[arg(long)]
    pub accounts: PathBuf,
    /// Use at most this many accounts of the file.
    #[arg(long)]
    pub max_accounts: Option<usize>,
    /// RPC addresses, comma-separated; accounts are spread over them, the first is also watched for blocks.
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:26657")]
    pub node: Vec<String>,
    /// Target submission rate in transactions per second (default: as fast as accepted).
    #[arg(long, conflicts_with = "max")]
    pub rate: Option<f64>,
    /// Submit as fast as the nodes accept (the default when --rate is absent).
    #[arg(long)]
    pub max: bool,
    /// How long to submit.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub duration: Duration,
    /// After the duration, how long to wait at most for submitted transactions to commit.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub drain: Duration,
    /// Transactions signed per account (default: enough for the rate and duration).
    #[arg(long)]
    pub txs_per_account: Option<usize>,
    /// How transactions are submitted.
    #[arg(long, value_enum, default_value_t = Transport::Http)]
    pub transport: Transport,
    /// Concurrent connections, each with one request in flight (raised to the number of nodes).
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    /// Most transactions per request (a JSON-RPC batch over HTTP; pipelined requests over ws); at most the
    /// node's `rpc.max_batch_requests`.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Timeout of each request and of connecting.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Report format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::config::parse_duration(text)
}

/// The checked arguments.
#[derive(Debug, Clone)]
struct Settings {
    nodes: Vec<String>,
    rate: Option<f64>,
    duration: Duration,
    drain: Duration,
    connections: usize,
    batch: usize,
}

impl Settings {
    fn new(args: &LoadArgs) -> Result<Settings, LoadError> {
        let bad =
            |argument: &'static str, reason: String| LoadError::BadArgument { argument, reason };
        let nodes: Vec<String> = args
            .node
            .iter()
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .collect();
        if nodes.is_empty() || nodes.len() > MAX_NODES {
            return Err(bad("--node", format!("give 1..={MAX_NODES} addresses")));
        }
        if let Some(rate) = args.rate {
            if !(rate.is_finite() && rate > 0.0 && rate <= 10_000_000.0) {
                return Err(bad("--rate", format!("{rate} is not in (0, 10000000]")));
            }
        }
        if args.duration.is_zero() || args.duration > MAX_DURATION {
            return Err(bad(
                "--duration",
                format!("must be in (0, {MAX_DURATION:?}]"),
            ));
        }
        if args.drain > MAX_DRAIN {
            return Err(bad("--drain", format!("must be at most {MAX_DRAIN:?}")));
        }
        if args.timeout.is_zero() {
            return Err(bad("--timeout", "must be positive".to_owned()));
        }
        if args.connections == 0 || args.connections > MAX_CONNECTIONS {
            return Err(bad(
                "--connections",
                format!("must be 1..={MAX_CONNECTIONS}"),
            ));
        }
        if args.batch == 0 || args.batch > MAX_BATCH {
            return Err(bad("--batch", format!("must be 1..={MAX_BATCH}")));
        }
        if args.max_accounts == Some(0) {
            return Err(bad("--max-accounts", "must be at least 1".to_owned()));
        }
        if args.txs_per_account == Some(0) {
            return Err(bad("--txs-per-account", "must be at least 1".to_owned()));
        }
        // A fixed rate is sent in small batches so the load is smooth (about 200 requests/s in all).
        let batch = match args.rate {
            Some(rate) => args.batch.min(((rate / 200.0).ceil() as usize).max(1)),
            None => args.batch,
        };
        Ok(Settings {
            connections: args.connections.max(nodes.len()),
            nodes,
            rate: args.rate,
            duration: args.duration,
            drain: args.drain,
            batch,
        })
    }

    /// Transactions to sign per account when `--txs-per-account` is not given.
    fn default_per_account(&self, accounts: usize) -> usize {
        let rate = self.rate.unwrap_or(MAX_MODE_RATE_GUESS);
        let needed = rate * self.duration.as_secs_f64() * 1.1;
        let per = (needed / accounts.max(1) as f64).ceil() as usize + NONCE_WINDOW as usize;
        per.min(MAX_TOTAL_TXS / accounts.max(1)).max(1)
    }
}

/// State shared by the submitters, the watcher and the supervisor.
struct Shared {
    epoch: Instant,
    presigned: Presigned,
    sched: Mutex<Scheduler>,
    stats: Mutex<Stats>,
    /// Woken after every block (windows may have opened) and when the watcher ends.
    progress: Notify,
    /// Submission start and deadline, µs since `epoch` (`u64::MAX` until set).
    t0_us: AtomicU64,
    deadline_us: AtomicU64,
}

/// Locks a mutex; a poisoned one (a panicking holder) still holds consistent counters.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    fn now_us(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}

/// Runs `basalt load` and prints its report.
pub fn run(args: &LoadArgs) -> Result<(), CliError> {
    let fail = |e: LoadError| CliError::BadArgument {
        argument: "load",
        reason: e.to_string(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::BadArgument {
            argument: "load",
            reason: format!("cannot start a tokio runtime: {e}"),
        })?;
    let report = runtime.block_on(run_load(args)).map_err(fail)?;
    match args.output {
        OutputFormat::Text => print!("{}", report.to_text()),
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string(&report).map_err(|e| CliError::BadArgument {
                argument: "load",
                reason: e.to_string(),
            })?
        ),
    }
    match &report.watch_error {
        Some(reason) => Err(fail(LoadError::Watch {
            url: websocket_url(&report.params.nodes[0]),
            reason: reason.clone(),
        })),
        None => Ok(()),
    }
}

/// Runs the load and returns the report (the library entry point; [`run`] prints it).
pub async fn run_load(args: &LoadArgs) -> Result<LoadReport, LoadError> {
    let settings = Settings::new(args)?;
    let first = settings.nodes[0].clone();
    let keys = load_accounts(&args.accounts, args.max_accounts.unwrap_or(usize::MAX))?;

    let presign_started = Instant::now();
    let client = super::tx::client::RpcClient::new(&submit::http_url(&first), args.timeout)?;
    let chain_id = client.chain_id().await?;
    let nonces = query_nonces(&submit::http_url(&first), &keys, args.timeout).await?;
    let per_account = args
        .txs_per_account
        .unwrap_or_else(|| settings.default_per_account(keys.len()));
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let accounts = keys.len();
    let (signing_keys, first_nonces) = (keys.clone(), nonces.clone());
    let presigned = tokio::task::spawn_blocking(move || {
        presign(
            &signing_keys,
            &first_nonces,
            &chain_id,
            per_account,
            threads,
        )
    })
    .await
    .map_err(|e| LoadError::Presign {
        reason: e.to_string(),
    })??;
    let presign_s = presign_started.elapsed().as_secs_f64();

    let lens: Vec<usize> = presigned.accounts.iter().map(Vec::len).collect();
    let scheduler = Scheduler::new(
        &lens,
        settings.nodes.len(),
        NONCE_WINDOW as usize,
        RETRY_BACKOFF_US,
    );
    let watcher = Watcher::subscribe(
        &websocket_url(&first),
        &submit::http_url(&first),
        args.timeout,
    )
    .await?;
    let mut submitters = Vec::with_capacity(settings.connections);
    for k in 0..settings.connections {
        let node = k % settings.nodes.len();
        let submitter =
            Submitter::connect(args.transport, &settings.nodes[node], args.timeout).await?;
        submitters.push((node, submitter));
    }
    let params = RunParams {
        transport: args.transport,
        nodes: settings.nodes.clone(),
        accounts,
        connections: settings.connections,
        batch: settings.batch,
        rate_tx_s: settings.rate,
        duration_s: settings.duration.as_secs_f64(),
        drain_s: settings.drain.as_secs_f64(),
        presigned: presigned.len(),
        presign_s: (presign_s * 10.0).round() / 10.0,
    };
    let shared = Arc::new(Shared {
        epoch: Instant::now(),
        presigned,
        sched: Mutex::new(scheduler),
        stats: Mutex::new(Stats::default()),
        progress: Notify::new(),
        t0_us: AtomicU64::new(u64::MAX),
        deadline_us: AtomicU64::new(u64::MAX),
    });
    let (stop_watch, stop_rx) = tokio_watch::channel(false);
    let watch_task = tokio::spawn(watch_blocks(Arc::clone(&shared), watcher, stop_rx));

    // The clock starts here.
    let t0 = shared.now_us();
    let duration_us = u64::try_from(settings.duration.as_micros()).unwrap_or(u64::MAX);
    let deadline = t0.saturating_add(duration_us);
    shared.t0_us.store(t0, Ordering::SeqCst);
    shared.deadline_us.store(deadline, Ordering::SeqCst);
    let schedule = settings
        .rate
        .map(|rate| Arc::new(Mutex::new(RateSchedule::new(rate, t0))));
    let workers: Vec<_> = submitters
        .into_iter()
        .map(|(node, submitter)| {
            tokio::spawn(submit_loop(
                Arc::clone(&shared),
                submitter,
                node,
                settings.batch,
                schedule.clone(),
            ))
        })
        .collect();
    supervise(&shared, deadline).await;
    for worker in workers {
        let _ = worker.await;
    }
    drain(&shared, settings.drain, &watch_task).await;
    let _ = stop_watch.send(true);
    let _ = watch_task.await;

    reconcile(&shared, &first, &keys, &nonces, args.timeout).await;

    let tally = lock(&shared.sched).tally();
    let offered = schedule.map(|s| lock(&s).due_by(deadline.saturating_sub(1)));
    let stats = lock(&shared.stats);
    Ok(LoadReport::new(params, &stats, t0, tally, offered))
}

/// After the drain: accounts with transactions still outstanding have their nonces read, so commits the
/// watcher did not see (or that landed after it stopped) count — without a latency sample. A failed
/// read leaves those transactions pending (the report says what it knows).
async fn reconcile(
    shared: &Shared,
    node: &str,
    keys: &[basalt_consensus::types::PrivateKey],
    first_nonces: &[u64],
    timeout: Duration,
) {
    let accounts = lock(&shared.sched).accounts_outstanding();
    if accounts.is_empty() {
        return;
    }
    let subset: Vec<_> = accounts
        .iter()
        .filter_map(|a| keys.get(*a as usize).cloned())
        .collect();
    let Ok(nonces) = query_nonces(&submit::http_url(node), &subset, timeout).await else {
        return;
    };
    let mut newly = 0u64;
    {
        let mut sched = lock(&shared.sched);
        for (account, nonce) in accounts.iter().zip(nonces) {
            let first = first_nonces
                .get(*account as usize)
                .copied()
                .unwrap_or(nonce);
            let count = usize::try_from(nonce.saturating_sub(first)).unwrap_or(usize::MAX);
            newly += sched.reconcile(*account, count) as u64;
        }
    }
    lock(&shared.stats).committed_unseen += newly;
}

/// Until the deadline: re-queue stalled accounts and note when the presigned transactions ran out.
async fn supervise(shared: &Shared, deadline_us: u64) {
    loop {
        let now = shared.now_us();
        if now >= deadline_us {
            return;
        }
        let (requeued, exhausted) = {
            let mut sched = lock(&shared.sched);
            (sched.requeue_stalled(now, STALL_US), sched.exhausted())
        };
        {
            let mut stats = lock(&shared.stats);
            stats.requeued += requeued as u64;
            if exhausted && stats.ran_out_us.is_none() {
                stats.ran_out_us = Some(now);
            }
        }
        let left = Duration::from_micros(deadline_us - now);
        tokio::time::sleep(left.min(SUPERVISE_EVERY)).await;
    }
}

/// After the deadline: waits until nothing sent is outstanding, the drain time is over, or the watcher
/// ended.
async fn drain(shared: &Shared, limit: Duration, watch_task: &tokio::task::JoinHandle<()>) {
    let until = Instant::now() + limit;
    loop {
        let notified = shared.progress.notified();
        if lock(&shared.sched).outstanding() == 0 || watch_task.is_finished() {
            return;
        }
        let now = Instant::now();
        if now >= until {
            return;
        }
        let _ = tokio::time::timeout((until - now).min(SUPERVISE_EVERY), notified).await;
    }
}

/// One connection: takes ready transactions for its node, gives new ones their slots in the rate
/// schedule and waits for the last slot, sends, records outcomes.
async fn submit_loop(
    shared: Arc<Shared>,
    mut submitter: Submitter,
    node: usize,
    batch: usize,
    schedule: Option<Arc<Mutex<RateSchedule>>>,
) {
    let deadline = shared.deadline_us.load(Ordering::SeqCst);
    loop {
        let now = shared.now_us();
        if now >= deadline {
            return;
        }
        let notified = shared.progress.notified();
        let refs = lock(&shared.sched).take_ready(node, batch, now);
        if refs.is_empty() {
            let wait = Duration::from_micros(deadline - now).min(IDLE_WAIT);
            let _ = tokio::time::timeout(wait, notified).await;
            continue;
        }
        // New transactions take the next slots of the schedule (resends keep their first slot).
        let fresh: Vec<bool> = {
            let sched = lock(&shared.sched);
            refs.iter().map(|tx| sched.is_unsent(*tx)).collect()
        };
        let mut slots = match &schedule {
            Some(schedule) => lock(schedule).take(fresh.iter().filter(|f| **f).count()),
            None => Vec::new(),
        }
        .into_iter();
        if let Some(last) = slots.as_slice().last().copied() {
            if last > now {
                tokio::time::sleep(Duration::from_micros(last - now)).await;
            }
        }
        let sent_at = shared.now_us();
        if sent_at >= deadline {
            // Too late to send: give them back so they do not count as outstanding.
            let mut sched = lock(&shared.sched);
            for tx in refs {
                sched.unsend(tx);
            }
            return;
        }
        let mut lags = Vec::new();
        let first_send: Vec<bool> = {
            let mut sched = lock(&shared.sched);
            refs.iter()
                .zip(&fresh)
                .map(|(tx, fresh)| {
                    let intended = if *fresh { slots.next() } else { None };
                    if let Some(slot) = intended {
                        lags.push(sent_at.saturating_sub(slot));
                    }
                    sched.mark_sent(*tx, intended.unwrap_or(sent_at))
                })
                .collect()
        };
        if !lags.is_empty() {
            let mut stats = lock(&shared.stats);
            for lag in lags {
                stats.send_lag.record(lag);
            }
        }
        let txs: Vec<_> = refs
            .iter()
            .filter_map(|r| shared.presigned.get(*r))
            .collect();
        let outcomes = submitter.send(&txs).await;
        let now = shared.now_us();
        {
            let mut stats = lock(&shared.stats);
            for (outcome, first) in outcomes.iter().zip(&first_send) {
                stats.record(outcome, *first);
            }
        }
        let mut sched = lock(&shared.sched);
        for (tx, outcome) in refs.iter().zip(&outcomes) {
            if outcome.held_by_node() {
                sched.mark_accepted(*tx);
            }
            if outcome.is_transient() {
                sched.retry_later(*tx, now);
            }
        }
    }
}

/// Applies every block of the subscription until told to stop or the subscription ends.
async fn watch_blocks(
    shared: Arc<Shared>,
    mut watcher: Watcher,
    mut stop: tokio_watch::Receiver<bool>,
) {
    loop {
        let block = tokio::select! {
            block = watcher.next_block() => block,
            _ = stop.changed() => return,
        };
        match block {
            Ok(block) => {
                if let Some(reason) = watcher.fallback() {
                    let mut stats = lock(&shared.stats);
                    if stats.watch_fallback.is_none() {
                        stats.watch_fallback = Some(reason.to_owned());
                    }
                }
                apply_block(&shared, &block);
            }
            Err(reason) => {
                lock(&shared.stats).watch_error = Some(reason);
                shared.progress.notify_waiters();
                return;
            }
        }
    }
}

/// Matches a block's transactions to this run's and records commits, latencies and the block.
fn apply_block(shared: &Shared, block: &watch::BlockSeen) {
    let now = shared.now_us();
    let mut ours = 0usize;
    let mut newly = 0usize;
    let mut latencies = Vec::new();
    {
        let mut sched = lock(&shared.sched);
        for hash in &block.tx_hashes {
            if let Some(tx) = shared.presigned.index.get(hash) {
                ours += 1;
                let effect = sched.committed(*tx, now);
                newly += effect.newly_committed;
                latencies.extend(effect.latency_us);
            }
        }
    }
    {
        let mut stats = lock(&shared.stats);
        if now <= shared.deadline_us.load(Ordering::SeqCst) {
            stats.committed_in_duration += newly as u64;
        }
        for latency in latencies {
            stats.latency.record(latency);
        }
        if now >= shared.t0_us.load(Ordering::SeqCst) {
            stats.record_block(now, block.height, block.tx_hashes.len(), ours);
        }
    }
    shared.progress.notify_waiters();
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        load: LoadArgs,
    }

    fn parse(args: &[&str]) -> Result<Settings, String> {
        let mut all = vec!["load", "--accounts", "a.json"];
        all.extend_from_slice(args);
        let cli = Cli::try_parse_from(all).map_err(|e| e.to_string())?;
        Settings::new(&cli.load).map_err(|e| e.to_string())
    }

    #[test]
    fn arguments_are_checked_and_defaults_sized() {
        let s = parse(&["--node", "http://a:1,http://b:2", "--connections", "1"]).unwrap();
        assert_eq!(s.nodes.len(), 2);
        assert_eq!(s.connections, 2, "at least one connection per node");
        assert_eq!(s.batch, 100);
        let s = parse(&["--rate", "1000", "--duration", "10s"]).unwrap();
        assert_eq!(s.batch, 5, "a fixed rate uses small batches");
        // 1000 tx/s for 10 s over 100 accounts, 10% slack, plus one window.
        assert_eq!(s.default_per_account(100), 110 + NONCE_WINDOW as usize);
        assert!(s.default_per_account(1) <= MAX_TOTAL_TXS);
        for bad in [
            &["--rate", "0"][..],
            &["--rate", "1", "--max"],
            &["--duration", "0s"],
            &["--duration", "2h"],
            &["--batch", "0"],
            &["--connections", "1000"],
            &["--txs-per-account", "0"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
