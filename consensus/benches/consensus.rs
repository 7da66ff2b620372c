//! Criterion benchmarks of what bounds consensus throughput (issue 2, item 6):
//! - ed25519: one strict verification, one vote checked against the set (sign bytes + verification), and
//!   whole commits of 4, 10 and 100 validators, batch-verified (`Commit::verify`) and, for comparison,
//!   checked signature by signature with `PublicKey::verify`;
//! - the core: the vote keeper taking a full round of prevotes and precommits of 100 validators, and the
//!   driver processing the round's proposal plus that round of votes (it decides after 67 precommits and
//!   keeps storing the rest, as a node does);
//! - hashing and encoding: `Header::hash`, and a block of 1,000 transactions of 200 bytes encoded, decoded
//!   (decoding re-checks the header's content hashes, so it includes the Merkle root of the transactions)
//!   and its Merkle root alone.
//!
//! Run: `nice -n 5 cargo bench -p basalt-consensus --bench consensus`. Results are in `BENCHMARKS.md`.
//!
//! On a loaded machine wall-clock times include the time the benchmark thread spent waiting for a CPU. With
//! `BASALT_BENCH_CPU_TIME=1` the same benchmarks measure the thread's on-CPU time instead (the scheduler's
//! `sum_exec_runtime` from `/proc/thread-self/schedstat`, Linux only, tick-granular at each reading, which
//! the long samples here absorb). Add `-- --save-baseline cpu` so criterion does not compare the two kinds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use basalt_consensus::core::{
    Driver, DriverConfig, Input, Output, Validity, VoteKeeper, VoteRecord, DEFAULT_ROUND_WINDOW,
};
use basalt_consensus::engine::BasaltContext;
use basalt_consensus::types::encoding::MAX_BLOCK_BYTES;
use basalt_consensus::types::{
    decode, encode, merkle_root, Block, BlockId, ChainId, Commit, CommitSig, Hash, Header,
    PrivateKey, Proposal, SignedProposal, SignedVote, Tx, ValidatorSet, VerifiedVote, Vote,
};
use basalt_consensus::{Height, Round, ValidatorIndex, VoteType};
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput};

/// Commit sizes measured.
const COMMIT_SIZES: [usize; 3] = [4, 10, 100];
/// Validators in the vote-keeper and driver benchmarks.
const ROUND_VALIDATORS: usize = 100;
/// Rounds prepared (cloned) per timed batch in the vote-keeper and driver benchmarks: one timer reading per
/// batch of tens of milliseconds, which on-CPU time (tick-granular) needs; per-round readings would be zero.
const ROUND_BATCH: u64 = 256;
/// Transactions in the encoded block, and the size of each.
const BLOCK_TXS: usize = 1_000;
const TX_BYTES: usize = 200;

fn chain() -> ChainId {
    ChainId::new("basalt-bench").unwrap()
}

/// A deterministic key per index (any number of validators).
fn key(i: usize) -> PrivateKey {
    let mut seed = [0x5au8; 32];
    seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
    PrivateKey::from_seed(&seed)
}

/// `n` validators of equal power, and their keys in the set's canonical order.
fn set_and_keys(n: usize) -> (ValidatorSet, Vec<PrivateKey>) {
    let keys: Vec<PrivateKey> = (0..n).map(key).collect();
    let set = ValidatorSet::new(keys.iter().map(|k| (k.public_key(), 10)).collect()).unwrap();
    let ordered = set
        .validators()
        .iter()
        .map(|v| {
            keys.iter()
                .find(|k| k.public_key() == v.public_key)
                .unwrap()
                .clone()
        })
        .collect();
    (set, ordered)
}

fn txs(count: usize, len: usize) -> Vec<Tx> {
    (0..count)
        .map(|i| {
            let bytes: Vec<u8> = (0..len).map(|j| (i * 31 + j * 7) as u8).collect();
            Tx::new(bytes).unwrap()
        })
        .collect()
}

/// A valid height-1 block of `set` with the given transactions.
fn block(set: &ValidatorSet, txs: Vec<Tx>) -> Block {
    let (data_hash, evidence_hash, last_commit_hash) = Block::content_hashes(&txs, &[], None);
    let header = Header {
        chain_id: chain(),
        height: Height(1),
        time_ms: 1_700_000_000_000,
        last_block_id: None,
        last_commit_hash,
        data_hash,
        validators_hash: set.hash(),
        next_validators_hash: set.next_height().hash(),
        app_hash: Hash::ZERO,
        last_results_hash: Hash::ZERO,
        evidence_hash,
        proposer_address: set.validators()[set.proposer().0 as usize].address,
    };
    Block::new(header, txs, vec![], None).unwrap()
}

fn vote(
    key: &PrivateKey,
    index: usize,
    vote_type: VoteType,
    block_id: Option<BlockId>,
) -> SignedVote {
    let vote = Vote {
        vote_type,
        height: Height(1),
        round: Round(0),
        block_id,
        validator_index: ValidatorIndex(index as u32),
    };
    let signature = key.sign(&vote.sign_bytes(&chain()));
    SignedVote { vote, signature }
}

/// A commit signed by every validator of the set.
fn full_commit(set: &ValidatorSet, keys: &[PrivateKey], block_id: BlockId) -> Commit {
    let verified: Vec<VerifiedVote> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            set.verify_vote(&chain(), vote(k, i, VoteType::Precommit, Some(block_id)))
                .unwrap()
        })
        .collect();
    let commit = Commit::from_precommits(Height(1), Round(0), block_id, set.len(), &verified);
    assert!(commit
        .signatures
        .iter()
        .all(|s| matches!(s, CommitSig::ForBlock(_))));
    commit.verify(&chain(), set).unwrap();
    commit
}

/// A full round for `block_id`: every validator's prevote, then every validator's precommit.
fn round_votes(keys: &[PrivateKey], block_id: BlockId) -> Vec<SignedVote> {
    [VoteType::Prevote, VoteType::Precommit]
        .into_iter()
        .flat_map(|t| {
            keys.iter()
                .enumerate()
                .map(move |(i, k)| vote(k, i, t, Some(block_id)))
        })
        .collect()
}

/// On-CPU time of the calling thread, in nanoseconds (see the module docs).
struct ThreadCpuTime;

fn thread_cpu_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat")
        .expect("/proc/thread-self/schedstat (Linux) is needed for BASALT_BENCH_CPU_TIME");
    stat.split_whitespace()
        .next()
        .and_then(|ns| ns.parse().ok())
        .expect("schedstat starts with the on-CPU time in ns")
}

impl Measurement for ThreadCpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns().saturating_sub(start)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, value: &u64) -> f64 {
        *value as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        // Values are nanoseconds, as wall-clock values are: reuse criterion's duration formatting.
        static WALL: WallTime = WallTime;
        WALL.formatter()
    }
}

/// Short measurements (the machine is shared): the whole suite runs in about a minute of CPU time.
fn config<M: Measurement>(c: Criterion<M>) -> Criterion<M> {
    c.sample_size(20)
        .warm_up_time(Duration::from_millis(700))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args()
}

fn run_all<M: Measurement>(mut c: Criterion<M>) {
    bench_signatures(&mut c);
    bench_core(&mut c);
    bench_encoding(&mut c);
    c.final_summary();
}

fn main() {
    if std::env::var_os("BASALT_BENCH_CPU_TIME").is_some_and(|v| v != "0") {
        run_all(config(Criterion::default().with_measurement(ThreadCpuTime)));
    } else {
        run_all(config(Criterion::default()));
    }
}

fn bench_signatures<M: Measurement>(c: &mut Criterion<M>) {
    let (set, keys) = set_and_keys(4);
    let signed = vote(
        &keys[0],
        0,
        VoteType::Precommit,
        Some(BlockId {
            hash: Hash::digest(b"block"),
        }),
    );
    let message = signed.vote.sign_bytes(&chain());
    let public_key = keys[0].public_key();

    let mut group = c.benchmark_group("ed25519");
    group.throughput(Throughput::Elements(1));
    group.bench_function("verify_single", |b| {
        b.iter(|| {
            public_key
                .verify(black_box(&message), black_box(&signed.signature))
                .unwrap()
        })
    });
    // What the edge pays per gossiped vote: sign bytes, then strict verification.
    group.bench_function("verify_vote", |b| {
        b.iter_batched(
            || signed.clone(),
            |v| set.verify_vote(&chain(), v).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.finish();

    let mut group = c.benchmark_group("commit_verify");
    for n in COMMIT_SIZES {
        let (set, keys) = set_and_keys(n);
        let block_id = block(&set, txs(2, 16)).id();
        let commit = full_commit(&set, &keys, block_id);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("batch", n), &commit, |b, commit| {
            b.iter(|| black_box(commit).verify(&chain(), &set).unwrap())
        });
        // The same signatures checked one by one with strict single verification.
        group.bench_with_input(BenchmarkId::new("one_by_one", n), &commit, |b, commit| {
            b.iter(|| {
                let commit = black_box(commit);
                let message = Vote {
                    vote_type: VoteType::Precommit,
                    height: commit.height,
                    round: commit.round,
                    block_id: Some(commit.block_id),
                    validator_index: ValidatorIndex(0),
                }
                .sign_bytes(&chain());
                for (sig, validator) in commit.signatures.iter().zip(set.validators()) {
                    if let CommitSig::ForBlock(s) = sig {
                        validator.public_key.verify(&message, s).unwrap();
                    }
                }
            })
        });
    }
    group.finish();
}

fn bench_core<M: Measurement>(c: &mut Criterion<M>) {
    let (set, keys) = set_and_keys(ROUND_VALIDATORS);
    let block_id = block(&set, txs(2, 16)).id();
    let votes = round_votes(&keys, block_id);
    let powers = set.powers();

    let records: Vec<VoteRecord<BlockId, SignedVote>> = votes
        .iter()
        .map(|v| VoteRecord {
            validator: v.vote.validator_index,
            round: v.vote.round,
            vote_type: v.vote.vote_type,
            value: v.vote.block_id,
            msg: v.clone(),
        })
        .collect();
    let mut group = c.benchmark_group("votekeeper");
    group.throughput(Throughput::Elements(records.len() as u64));
    group.bench_function(
        BenchmarkId::new("add_vote_full_round", ROUND_VALIDATORS),
        |b| {
            b.iter_batched(
                || {
                    let keeper: VoteKeeper<BlockId, SignedVote> =
                        VoteKeeper::new(powers.clone(), DEFAULT_ROUND_WINDOW).unwrap();
                    (keeper, records.clone())
                },
                |(mut keeper, records)| {
                    for record in records {
                        black_box(keeper.add_vote(record).unwrap());
                    }
                    keeper
                },
                BatchSize::NumIterations(ROUND_BATCH),
            )
        },
    );
    group.finish();

    // The driver of a validator that is not the round-0 proposer: start the round, receive the proposal,
    // then every prevote and every precommit (its own included, as the edge feeds them back).
    let proposer = set.proposer();
    let own = ValidatorIndex((proposer.0 + 1) % ROUND_VALIDATORS as u32);
    let proposal = Proposal::new(Height(1), Round(0), None, block_id).unwrap();
    let signature = keys[proposer.0 as usize].sign(&proposal.sign_bytes(&chain()));
    let mut inputs: Vec<Input<BasaltContext>> = vec![
        Input::StartRound { round: Round(0) },
        Input::Proposal {
            round: Round(0),
            value: block_id,
            pol_round: None,
            proposer,
            validity: Validity::Valid,
            msg: SignedProposal {
                proposal,
                signature,
            },
        },
    ];
    inputs.extend(votes.iter().map(|v| Input::Vote {
        vote_type: v.vote.vote_type,
        round: v.vote.round,
        value: v.vote.block_id,
        validator: v.vote.validator_index,
        msg: v.clone(),
    }));
    let new_driver = || {
        let proposers = set.clone();
        Driver::<BasaltContext, _>::new(
            Height(1),
            powers.clone(),
            Some(own),
            move |round: Round| proposers.proposer_for_round(round),
            DriverConfig::default(),
        )
        .unwrap()
    };
    // Sanity: the round decides the block, once.
    {
        let mut driver = new_driver();
        let decisions = inputs
            .iter()
            .cloned()
            .flat_map(|input| driver.process(input).unwrap())
            .filter(|o| matches!(o, Output::Decide { value, .. } if *value == block_id))
            .count();
        assert_eq!(decisions, 1);
    }
    let mut group = c.benchmark_group("driver");
    group.throughput(Throughput::Elements(votes.len() as u64));
    group.bench_function(BenchmarkId::new("full_round", ROUND_VALIDATORS), |b| {
        b.iter_batched(
            || (new_driver(), inputs.clone()),
            |(mut driver, inputs)| {
                for input in inputs {
                    black_box(driver.process(input).unwrap());
                }
                assert!(driver.decision().is_some());
                driver
            },
            BatchSize::NumIterations(ROUND_BATCH),
        )
    });
    group.finish();
}

fn bench_encoding<M: Measurement>(c: &mut Criterion<M>) {
    let (set, _) = set_and_keys(100);
    let mut header = block(&set, vec![]).header().clone();
    header.height = Height(2);
    header.last_block_id = Some(BlockId {
        hash: Hash::digest(b"previous"),
    });
    let mut group = c.benchmark_group("header");
    group.throughput(Throughput::Elements(1));
    group.bench_function("hash", |b| b.iter(|| black_box(&header).hash()));
    group.finish();

    let transactions = txs(BLOCK_TXS, TX_BYTES);
    let block = block(&set, transactions.clone());
    let bytes = encode(&block);
    let back: Block = decode("block", &bytes, MAX_BLOCK_BYTES).unwrap();
    assert_eq!(back, block);

    let mut group = c.benchmark_group("block_1000x200B");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("encode", |b| b.iter(|| encode(black_box(&block))));
    group.bench_function("decode", |b| {
        b.iter(|| decode::<Block>("block", black_box(&bytes), MAX_BLOCK_BYTES).unwrap())
    });
    group.bench_function("data_hash", |b| {
        b.iter(|| merkle_root(black_box(&transactions)))
    });
    group.finish();

    // The client-facing tx hash (SHA-256, as CometBFT's) against BLAKE2s, Basalt's hash elsewhere, on
    // one transfer-sized transaction.
    let tx = &transactions[0];
    let mut group = c.benchmark_group("tx_hash_200B");
    group.throughput(Throughput::Bytes(tx.as_bytes().len() as u64));
    group.bench_function("sha256", |b| b.iter(|| black_box(tx).hash()));
    group.bench_function("blake2s", |b| {
        b.iter(|| Hash::digest(black_box(tx).as_bytes()))
    });
    group.finish();
}
