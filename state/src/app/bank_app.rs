//! [`BankApp`]: the [`Application`] running the bank module over a [`StateStore`].
//!
//! Query paths (`height` 0 means the latest committed height):
//!
//! | path | value | proof (when `prove`) |
//! |---|---|---|
//! | `/bank/account/<address>` | the account record exactly as stored: Borsh `balance` u128 LE ‖ `nonce` u64 LE (24 bytes); empty if the account does not exist | of `key` ↦ `value` (or of `key`'s absence) |
//! | `/bank/balance/<address>` | the balance as decimal ASCII (`"0"` if absent) | of the account record: verify `key` ↦ `proof.exist.value` and read the balance from its first 16 bytes |
//!
//! `<address>` is 40 hex characters (either case). Instead of a path suffix, `data` may carry the 20
//! raw address bytes. The returned `key` is the state key (`bank/accounts/<lower-case hex>`).

use std::sync::Arc;

use basalt_consensus::types::encoding::MAX_BLOCK_TXS;
use basalt_consensus::types::{
    encode, verify_batch, Address, Block, ChainId, Hash, PublicKey, Signature, Tx, ValidatorChange,
};

use super::module::{Ante, BlockContext, StateView, TxModule};
use super::query::{QueryPathError, QueryTarget};
use super::sigcache::SignatureCache;
use super::{
    bounded_log, AppError, AppInfo, Application, CheckTxResult, Event, FinalizeResult,
    ProposalVerdict, QueryResult, TxResult, CODE_OK,
};
use crate::bank::gas_price::GasPrice;
use crate::bank::{
    account_key, check_charge, check_transfer, read_account, Account, BankGenesis, BankTx, Charge,
    CheckedTransfer, NonceRule, Overlay, SignedTransfer, TxCode, TxFailure, TRANSFER_GAS,
};
use crate::index::CommittedTx;
use crate::store::{BlockCommit, PreparedState, StateStore, Write};

/// Query failed: the path is not served.
pub const QUERY_CODE_UNKNOWN_PATH: u32 = 1;
/// Query failed: the address is not 20 bytes (40 hex characters).
pub const QUERY_CODE_BAD_ADDRESS: u32 = 2;
/// Query failed: the height is not available (not committed yet or pruned) or the store failed.
pub const QUERY_CODE_UNAVAILABLE: u32 = 3;
/// Query failed: the store key is empty or longer than [`MAX_QUERY_KEY_BYTES`].
pub const QUERY_CODE_BAD_KEY: u32 = 4;

/// The prefix of every IBC key in the state (the chain's ICS-23 commitment prefix): the key of ICS-24
/// path `p` is `ibc/ ‖ p`. `/store/ibc/key` queries read under it.
pub const IBC_STORE_PREFIX: &[u8] = b"ibc/";
/// The prefix of ICS-20's own state (voucher balances), read by `/store/transfer/key` queries.
pub const TRANSFER_STORE_PREFIX: &[u8] = b"transfer/";
/// Longest key a `/store/…/key` query may name (an ICS-24 path is far shorter).
pub const MAX_QUERY_KEY_BYTES: usize = 1020;

/// Configuration of a [`BankApp`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BankAppConfig {
    /// The chain this application runs; transactions and blocks for other chains are refused.
    pub chain_id: ChainId,
}

/// A decided block executed in memory, waiting for [`Application::commit`]: its Merkle update is
/// computed once, here, and committed as is.
#[derive(Debug)]
struct Pending {
    height: u64,
    block: Vec<u8>,
    block_hash: [u8; 32],
    txs: Vec<CommittedTx>,
    /// Offence keys of the block's evidence (indexed so no offence is committed twice).
    evidence: Vec<[u8; 32]>,
    state: PreparedState,
    app_hash: Hash,
    /// The block's validator updates, encoded ([`super::validators::encode_updates`]).
    validator_updates: Vec<u8>,
}

/// The bank application. Its state *is* the [`StateStore`]: the application height is the store's
/// latest version, so the two can never disagree.
#[derive(Debug)]
pub struct BankApp {
    store: Arc<StateStore>,
    config: BankAppConfig,
    pending: Option<Pending>,
    verified: Arc<SignatureCache>,
    /// Handlers of the other transaction kinds ([`BankApp::with_module`]).
    modules: Vec<Arc<dyn TxModule>>,
    /// The least fee per gas `check_tx` admits ([`BankApp::with_min_gas_price`]).
    min_gas_price: GasPrice,
}

/// What [`BankApp::preverify_signatures`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preverified {
    /// The batch verified: this many signatures were recorded (0: nothing new, or one alone).
    Recorded(usize),
    /// At least one of `verified` signatures is bad: nothing was recorded.
    Failed {
        /// Signatures in the failed batch (the work spent).
        verified: usize,
    },
}

/// A transaction decoded by its kind.
// Transfers are the common case and are decoded by the block: boxing the large variant would cost an
// allocation per transfer for nothing.
#[allow(clippy::large_enum_variant)]
enum Decoded {
    /// Kind `0`: the bank's transfer.
    Transfer(SignedTransfer),
    /// Another kind, with its module (an index into [`BankApp::modules`]) and its ante fields.
    Module(usize, Ante),
}

impl BankApp {
    /// An application over `store` (which may be empty: then [`Application::init_chain`] comes first).
    pub fn new(store: Arc<StateStore>, config: BankAppConfig) -> BankApp {
        BankApp {
            store,
            config,
            pending: None,
            verified: Arc::new(SignatureCache::default()),
            modules: Vec::new(),
            min_gas_price: GasPrice::ZERO,
        }
    }

    /// Hands transactions of `module`'s kind to it (see [`super::module`]). A kind already handled
    /// (or the bank's own, `0`) is not registered twice: the first handler stays.
    pub fn with_module(mut self, module: Arc<dyn TxModule>) -> BankApp {
        let kind = module.kind();
        if kind != 0 && self.modules.iter().all(|m| m.kind() != kind) {
            self.modules.push(module);
        }
        self
    }

    /// Decodes `tx` by its kind byte (no state, no signature check).
    fn decode(&self, tx: &Tx) -> Result<Decoded, TxFailure> {
        let bytes = tx.as_bytes();
        match bytes.first() {
            None => Err(TxFailure::new(TxCode::Decode, "empty transaction")),
            Some(0) => decode_transfer(tx).map(Decoded::Transfer),
            Some(&kind) => {
                let index = self
                    .modules
                    .iter()
                    .position(|m| m.kind() == kind)
                    .ok_or_else(|| {
                        TxFailure::new(TxCode::Decode, format!("unknown transaction kind {kind}"))
                    })?;
                let ante = self.modules[index].decode(bytes)?;
                Ok(Decoded::Module(index, ante))
            }
        }
    }

    /// Whether a decoded transaction's signature verifies (one by one; finalize batches transfers).
    fn verify(&self, tx: &Tx, decoded: &Decoded) -> Result<(), TxFailure> {
        match decoded {
            Decoded::Transfer(t) => t
                .verify()
                .map_err(|e| TxFailure::new(TxCode::BadSignature, e.to_string())),
            Decoded::Module(index, _) => self.modules[*index].verify(tx.as_bytes()),
        }
    }

    /// Verifies in one batch the transfer signatures among `txs` that this node has not verified yet, and
    /// records them in the signature cache, so the [`Application::check_tx`] of each that follows is a
    /// cache hit: a batch costs about half as much per signature as checking them one by one, and
    /// verification is most of what admitting a transfer costs. A batch that fails records nothing (each
    /// `check_tx` then verifies alone and names the bad one); other kinds and bytes that do not decode
    /// are left to `check_tx`. Sound because ZIP-215's batch accepts exactly what single checks accept.
    pub fn preverify_signatures<'a>(&self, txs: impl IntoIterator<Item = &'a Tx>) -> Preverified {
        let mut seen = std::collections::HashSet::new();
        let mut hashes = Vec::new();
        let mut transfers = Vec::new();
        for tx in txs {
            if tx.as_bytes().first() != Some(&0) {
                continue;
            }
            let hash = tx.hash();
            if !seen.insert(hash) || self.verified.contains(&hash) {
                continue;
            }
            if let Ok(transfer) = decode_transfer(tx) {
                hashes.push(hash);
                transfers.push(transfer);
            }
        }
        // One signature gains nothing from a batch.
        if transfers.len() < 2 {
            return Preverified::Recorded(0);
        }
        let messages: Vec<Vec<u8>> = transfers.iter().map(|t| t.body().sign_bytes()).collect();
        let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        let signatures: Vec<Signature> = transfers.iter().map(|t| *t.signature()).collect();
        let keys: Vec<PublicKey> = transfers.iter().map(|t| t.body().from).collect();
        if verify_batch(&refs, &signatures, &keys).is_err() {
            return Preverified::Failed {
                verified: transfers.len(),
            };
        }
        let recorded = hashes.len();
        for hash in hashes {
            self.verified.insert(hash);
        }
        Preverified::Recorded(recorded)
    }

    /// Whether this node already verified the signature of the transaction with `hash` (so its
    /// `check_tx` will not verify it again).
    pub fn signature_verified(&self, hash: &Hash) -> bool {
        self.verified.contains(hash)
    }

    /// Shares `cache` of verified transaction signatures with other instances of this node (see
    /// [`SignatureCache`]): signatures checked by one are not checked again by the others.
    pub fn with_signature_cache(mut self, cache: Arc<SignatureCache>) -> BankApp {
        self.verified = cache;
        self
    }

    /// Admits into the mempool only transactions whose fee covers `price` per unit of their gas limit
    /// (refused with [`TxCode::InsufficientFee`]). Admission policy: blocks execute whatever fee they
    /// carry, as other validators may price gas differently.
    pub fn with_min_gas_price(mut self, price: GasPrice) -> BankApp {
        self.min_gas_price = price;
        self
    }

    /// The underlying store.
    pub fn store(&self) -> &Arc<StateStore> {
        &self.store
    }

    /// The chain id.
    pub fn chain_id(&self) -> &ChainId {
        &self.config.chain_id
    }

    /// An account at a committed `version` (absent accounts read as zero balance, nonce 0).
    pub fn account(&self, address: &Address, version: u64) -> Result<Account, AppError> {
        Ok(read_account(&self.store, address, version)?)
    }

    fn latest(&self) -> Result<u64, AppError> {
        self.store.latest_version()?.ok_or(AppError::NotInitialized)
    }

    /// Checks the block is the next one on this chain; returns the version it builds on.
    fn check_block_position(&self, block: &Block) -> Result<u64, AppError> {
        let header = block.header();
        if header.chain_id != self.config.chain_id {
            return Err(AppError::WrongChain {
                got: header.chain_id.to_string(),
                expected: self.config.chain_id.to_string(),
            });
        }
        let latest = self.latest()?;
        let expected = latest.saturating_add(1);
        if block.height().0 != expected {
            return Err(AppError::WrongHeight {
                got: block.height().0,
                expected,
            });
        }
        Ok(latest)
    }

    /// The mempool checks of a decoded transaction whose signature is known good: chain, gas, nonce
    /// window and funds against the latest committed state.
    fn check_against_latest(&self, decoded: &Decoded) -> CheckTxResult {
        let latest = match self.store.latest_version() {
            Ok(Some(v)) => v,
            Ok(None) => return CheckTxResult::rejected(TxCode::Internal.as_u32(), "no state yet"),
            Err(e) => return CheckTxResult::rejected(TxCode::Internal.as_u32(), e.to_string()),
        };
        let (sender, nonce, fee, gas_limit, gas_used) = match decoded {
            Decoded::Transfer(t) => {
                let body = t.body();
                (
                    body.sender(),
                    body.nonce,
                    body.fee,
                    body.gas_limit,
                    TRANSFER_GAS,
                )
            }
            Decoded::Module(_, ante) => (
                ante.signer,
                ante.nonce,
                ante.fee,
                ante.gas_limit,
                ante.min_gas,
            ),
        };
        let min_fee = self.min_gas_price.min_fee(gas_limit);
        if fee < min_fee {
            return CheckTxResult::rejected(
                TxCode::InsufficientFee.as_u32(),
                format!(
                    "fee {fee} is below this node's minimum gas price {} × gas limit {gas_limit} = {min_fee}",
                    self.min_gas_price
                ),
            );
        }
        let account = match read_account(&self.store, &sender, latest) {
            Ok(a) => a,
            Err(e) => return CheckTxResult::rejected(TxCode::Internal.as_u32(), e.to_string()),
        };
        match self.check_ante(decoded, &account, NonceRule::Mempool) {
            Err(f) => CheckTxResult::rejected(f.code.as_u32(), f.log),
            Ok(_) => CheckTxResult {
                code: CODE_OK,
                log: String::new(),
                gas_wanted: gas_limit,
                gas_used,
                sender: Some(sender),
                nonce,
                priority: u64::try_from(fee).unwrap_or(u64::MAX),
            },
        }
    }

    /// The ante rules for a decoded transaction against its sender's `account`: a transfer's whole
    /// debit, or a module transaction's fee.
    fn check_ante(
        &self,
        decoded: &Decoded,
        account: &Account,
        rule: NonceRule,
    ) -> Result<CheckedTransfer, TxFailure> {
        match decoded {
            Decoded::Transfer(t) => check_transfer(t.body(), &self.config.chain_id, account, rule),
            Decoded::Module(_, ante) => {
                check_charge(&charge_of(ante), &self.config.chain_id, account, rule)
            }
        }
    }

    /// The sender of a decoded transaction.
    fn sender_of(decoded: &Decoded) -> Address {
        match decoded {
            Decoded::Transfer(t) => t.body().sender(),
            Decoded::Module(_, ante) => ante.signer,
        }
    }

    fn query_inner(&self, path: &str, data: &[u8], height: u64, prove: bool) -> QueryResult {
        let latest = match self.store.latest_version() {
            Ok(Some(v)) => v,
            Ok(None) => return QueryResult::error(QUERY_CODE_UNAVAILABLE, "no state yet", height),
            Err(e) => return QueryResult::error(QUERY_CODE_UNAVAILABLE, e.to_string(), height),
        };
        let version = if height == 0 { latest } else { height };
        let target = match QueryTarget::of(path, data) {
            Ok(t) => t,
            Err(e) => {
                let code = match e {
                    QueryPathError::UnknownPath(_) => QUERY_CODE_UNKNOWN_PATH,
                    QueryPathError::BadAddress => QUERY_CODE_BAD_ADDRESS,
                    QueryPathError::BadKey { .. } => QUERY_CODE_BAD_KEY,
                };
                return QueryResult::error(code, e.to_string(), version);
            }
        };
        let (stored, proof) = match self.read(target.key(), version, prove) {
            Ok(r) => r,
            Err(e) => return QueryResult::error(QUERY_CODE_UNAVAILABLE, e.to_string(), version),
        };
        let value = match target {
            QueryTarget::Account { .. } | QueryTarget::Raw { .. } => stored.unwrap_or_default(),
            QueryTarget::Balance { .. } => {
                let account = match stored.as_deref().map(Account::from_bytes).transpose() {
                    Ok(a) => a.unwrap_or_default(),
                    Err(e) => {
                        return QueryResult::error(QUERY_CODE_UNAVAILABLE, e.to_string(), version)
                    }
                };
                account.balance.to_string().into_bytes()
            }
        };
        QueryResult {
            code: CODE_OK,
            log: String::new(),
            key: target.into_key(),
            value,
            proof,
            height: version,
        }
    }
}

impl BankApp {
    /// The value of `key` at `version`, with an ICS-23 proof (of it, or of its absence) if `prove`.
    fn read(
        &self,
        key: &[u8],
        version: u64,
        prove: bool,
    ) -> crate::Result<(Option<Vec<u8>>, Option<ics23::CommitmentProof>)> {
        if prove {
            self.store
                .get_with_proof(key, version)
                .map(|(v, p)| (v, Some(p)))
        } else {
            self.store.get(key, version).map(|v| (v, None))
        }
    }
}

/// Decodes a transaction for execution (code [`TxCode::Decode`] on failure).
fn decode_transfer(tx: &Tx) -> Result<SignedTransfer, TxFailure> {
    match BankTx::decode(tx.as_bytes()) {
        Ok(BankTx::Transfer(t)) => Ok(t),
        Err(e) => Err(TxFailure {
            code: TxCode::Decode,
            log: e.to_string(),
        }),
    }
}

/// The bank's ante fields of a module transaction.
fn charge_of(ante: &Ante) -> Charge<'_> {
    Charge {
        chain_id: &ante.chain_id,
        sender: ante.signer,
        gas_limit: ante.gas_limit,
        min_gas: ante.min_gas,
        nonce: ante.nonce,
        debit: ante.fee,
    }
}

/// A module reads the block's state through the bank's overlay.
impl StateView for Overlay<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, crate::StateError> {
        Overlay::get(self, key)
    }
}

/// Which decoded transactions carry a valid signature; `known[i]` marks those this node already
/// verified. Transfers are verified in one batch (one by one only if the batch fails); other kinds by
/// their modules.
fn verify_signatures(
    app: &BankApp,
    txs: &[Tx],
    decoded: &[Result<Decoded, TxFailure>],
    known: &[bool],
) -> Vec<bool> {
    let transfers: Vec<&SignedTransfer> = decoded
        .iter()
        .zip(known)
        .filter(|(_, known)| !**known)
        .filter_map(|(d, _)| match d {
            Ok(Decoded::Transfer(t)) => Some(t),
            _ => None,
        })
        .collect();
    let messages: Vec<Vec<u8>> = transfers.iter().map(|t| t.body().sign_bytes()).collect();
    let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    let signatures: Vec<Signature> = transfers.iter().map(|t| *t.signature()).collect();
    let keys: Vec<PublicKey> = transfers.iter().map(|t| t.body().from).collect();
    let all_good = verify_batch(&refs, &signatures, &keys).is_ok();
    txs.iter()
        .zip(decoded)
        .zip(known)
        .map(|((tx, d), known)| match d {
            Ok(_) if *known => true,
            Ok(Decoded::Transfer(t)) => all_good || t.verify().is_ok(),
            Ok(module_tx) => app.verify(tx, module_tx).is_ok(),
            Err(_) => false,
        })
        .collect()
}

fn failed(failure: TxFailure, gas_wanted: u64) -> TxResult {
    TxResult {
        code: failure.code.as_u32(),
        log: bounded_log(failure.log),
        gas_wanted,
        gas_used: 0,
        events: Vec::new(),
    }
}

/// A module transaction that passed the ante rules: its fee is paid and its nonce used, then the module
/// runs; its writes and events are kept only if it succeeds within its gas limit.
fn execute_module(
    module: &dyn TxModule,
    tx: &Tx,
    ante: &Ante,
    checked: &CheckedTransfer,
    context: &BlockContext<'_>,
    overlay: &mut Overlay<'_>,
    fee_recipient: &Address,
) -> Result<TxResult, AppError> {
    if let Err(f) = overlay.apply(checked, 0, ante.fee, fee_recipient)? {
        return Ok(failed(f, ante.gas_limit));
    }
    let fee_event = fee_event(&ante.signer, ante.fee, ante.nonce);
    let executed = module.execute(tx.as_bytes(), context, &*overlay);
    let gas_used = executed.gas_used.min(ante.gas_limit);
    let outcome = match executed.outcome {
        Ok(_) if executed.gas_used > ante.gas_limit => Err(TxFailure::new(
            TxCode::OutOfGas,
            format!(
                "used {} gas, more than the limit of {}",
                executed.gas_used, ante.gas_limit
            ),
        )),
        Ok(effects) => {
            let moves: Vec<(Address, Address, u128)> = effects
                .moves
                .iter()
                .map(|m| (m.from, m.to, m.amount))
                .collect();
            overlay
                .apply_module(&moves, effects.writes)?
                .map(|()| effects.events)
        }
        Err(f) => Err(f),
    };
    let result = match outcome {
        Ok(mut events) => {
            events.push(fee_event);
            TxResult {
                code: CODE_OK,
                log: String::new(),
                gas_wanted: ante.gas_limit,
                gas_used,
                events,
            }
        }
        // The fee was paid: the result says so with the fee event, and nothing else remains.
        Err(f) => TxResult {
            code: f.code.as_u32(),
            log: bounded_log(f.log),
            gas_wanted: ante.gas_limit,
            gas_used,
            events: vec![fee_event],
        },
    };
    Ok(result)
}

/// The `tx` event: who paid what fee at which nonce (CometBFT/Cosmos SDK's `fee`, `fee_payer`,
/// `acc_seq`).
fn fee_event(payer: &Address, fee: u128, nonce: u64) -> Event {
    let payer = payer.to_hex_upper();
    Event::new(
        "tx",
        &[
            ("fee", fee.to_string()),
            ("fee_payer", payer.clone()),
            ("acc_seq", format!("{payer}/{nonce}")),
        ],
    )
}

fn transfer_events(t: &SignedTransfer) -> Vec<Event> {
    let body = t.body();
    let sender = body.sender().to_hex_upper();
    vec![
        Event::new(
            "transfer",
            &[
                ("sender", sender.clone()),
                ("recipient", body.to.to_hex_upper()),
                ("amount", body.amount.to_string()),
            ],
        ),
        fee_event(&body.sender(), body.fee, body.nonce),
    ]
}

impl Application for BankApp {
    fn info(&self) -> Result<AppInfo, AppError> {
        match self.store.latest_version()? {
            None => Ok(AppInfo {
                last_height: None,
                last_app_hash: Hash::ZERO,
            }),
            Some(v) => Ok(AppInfo {
                last_height: Some(v),
                last_app_hash: Hash(self.store.root(v)?),
            }),
        }
    }

    fn init_chain(
        &mut self,
        initial_height: u64,
        app_state: &serde_json::Value,
    ) -> Result<Hash, AppError> {
        if initial_height == 0 {
            return Err(AppError::BadInitialHeight);
        }
        if let Some(height) = self.store.latest_version()? {
            return Err(AppError::AlreadyInitialized { height });
        }
        let genesis = BankGenesis::from_json(app_state)?;
        let writes: Vec<Write> = genesis
            .accounts
            .iter()
            .map(|(address, account)| (account_key(address), Some(account.to_bytes())))
            .collect();
        let root = self.store.apply_batch(initial_height - 1, writes)?;
        self.pending = None;
        Ok(Hash(root))
    }

    fn check_tx(&self, tx: &Tx) -> CheckTxResult {
        let decoded = match self.decode(tx) {
            Ok(d) => d,
            Err(f) => return CheckTxResult::rejected(f.code.as_u32(), f.log),
        };
        let hash = tx.hash();
        if !self.verified.contains(&hash) {
            if let Err(f) = self.verify(tx, &decoded) {
                return CheckTxResult::rejected(f.code.as_u32(), f.log);
            }
            self.verified.insert(hash);
        }
        self.check_against_latest(&decoded)
    }

    /// Skips the signature check when `previous` accepted the same bytes (a signature cannot stop
    /// verifying); re-checks nonce, chain and funds against the latest committed state. A previously
    /// rejected transaction gets the full [`Application::check_tx`].
    fn recheck_tx(&self, tx: &Tx, previous: &CheckTxResult) -> CheckTxResult {
        if !previous.is_ok() {
            return self.check_tx(tx);
        }
        match self.decode(tx) {
            Ok(decoded) => self.check_against_latest(&decoded),
            Err(f) => CheckTxResult::rejected(f.code.as_u32(), f.log),
        }
    }

    /// Keeps, in the given order, the transactions that would execute successfully on top of the last
    /// committed state and of the transactions kept before them, within `max_bytes` and
    /// [`MAX_BLOCK_TXS`]. Signatures are not re-verified (the mempool admitted these through
    /// `check_tx`); a bad one would still fail, harmlessly, in `finalize_block`.
    fn prepare_proposal(&self, txs: Vec<Tx>, max_bytes: usize) -> Vec<Tx> {
        let Ok(Some(latest)) = self.store.latest_version() else {
            return Vec::new();
        };
        let mut overlay = Overlay::new(&self.store, latest);
        let mut chosen = Vec::new();
        let mut used_bytes: usize = 0;
        for tx in txs {
            if chosen.len() >= MAX_BLOCK_TXS {
                break;
            }
            let size = tx.as_bytes().len().saturating_add(4);
            if used_bytes.saturating_add(size) > max_bytes {
                continue;
            }
            let Ok(decoded) = self.decode(&tx) else {
                continue;
            };
            let Ok(sender) = overlay.account(&Self::sender_of(&decoded)) else {
                return chosen;
            };
            let Ok(checked) = self.check_ante(&decoded, &sender, NonceRule::Exact) else {
                continue;
            };
            let amount = match &decoded {
                Decoded::Transfer(t) => t.body().amount,
                // Only the fee is simulated: its messages may still fail, and then it pays the fee.
                Decoded::Module(..) => 0,
            };
            // The fee goes to the proposer at execution; the simulation credits it nowhere, which can
            // only understate a balance (so it never includes a transaction that would then fail).
            match overlay.apply(&checked, amount, 0, &checked.sender) {
                Ok(Ok(())) => {
                    used_bytes += size;
                    chosen.push(tx);
                }
                Ok(Err(_)) => continue,
                Err(_) => return chosen,
            }
        }
        chosen
    }

    /// Accepts a block for this chain at the next height whose header carries the current app hash and
    /// whose transactions all decode (as transfers, or as a registered module's kind) for this chain. Signatures, nonces and funds
    /// are checked at execution (a failing transaction is recorded with its code).
    fn process_proposal(&self, block: &Block) -> ProposalVerdict {
        let reject = |reason: String| ProposalVerdict::Reject { reason };
        let latest = match self.check_block_position(block) {
            Ok(v) => v,
            Err(e) => return reject(e.to_string()),
        };
        match self.store.root(latest) {
            Ok(root) if Hash(root) == block.header().app_hash => {}
            Ok(root) => {
                return reject(format!(
                    "header app_hash {} but the state after height {latest} is {}",
                    block.header().app_hash,
                    Hash(root)
                ))
            }
            Err(e) => return reject(e.to_string()),
        }
        for (index, tx) in block.txs().iter().enumerate() {
            let chain = match self.decode(tx) {
                Err(f) => return reject(format!("tx #{index}: {}", f.log)),
                Ok(Decoded::Transfer(t)) => t.body().chain_id.clone(),
                Ok(Decoded::Module(_, ante)) => ante.chain_id,
            };
            if chain != self.config.chain_id {
                return reject(format!("tx #{index}: for chain {chain}"));
            }
        }
        ProposalVerdict::Accept
    }

    fn finalize_block(&mut self, block: &Block) -> Result<FinalizeResult, AppError> {
        let latest = self.check_block_position(block)?;
        let decoded: Vec<Result<Decoded, TxFailure>> =
            block.txs().iter().map(|tx| self.decode(tx)).collect();
        let known: Vec<bool> = block
            .txs()
            .iter()
            .map(|tx| self.verified.contains(&tx.hash()))
            .collect();
        let good_signature = verify_signatures(self, block.txs(), &decoded, &known);
        let fee_recipient = block.header().proposer_address;
        let context = BlockContext {
            chain_id: &self.config.chain_id,
            header: block.header(),
            store: &self.store,
            version: latest,
        };
        let mut overlay = Overlay::new(&self.store, latest);
        let mut tx_results = Vec::with_capacity(decoded.len());
        for ((tx, entry), signature_ok) in block.txs().iter().zip(decoded).zip(good_signature) {
            let decoded = match entry {
                Ok(d) => d,
                Err(f) => {
                    tx_results.push(failed(f, 0));
                    continue;
                }
            };
            let sender = Self::sender_of(&decoded);
            let gas_limit = match &decoded {
                Decoded::Transfer(t) => t.body().gas_limit,
                Decoded::Module(_, ante) => ante.gas_limit,
            };
            if !signature_ok {
                let f = TxFailure {
                    code: TxCode::BadSignature,
                    log: format!("signature does not verify for {sender}"),
                };
                tx_results.push(failed(f, gas_limit));
                continue;
            }
            let account = overlay.account(&sender)?;
            let checked = match self.check_ante(&decoded, &account, NonceRule::Exact) {
                Ok(c) => c,
                Err(f) => {
                    tx_results.push(failed(f, gas_limit));
                    continue;
                }
            };
            let result = match &decoded {
                Decoded::Transfer(transfer) => {
                    let body = transfer.body();
                    match overlay.apply(&checked, body.amount, body.fee, &fee_recipient)? {
                        Err(f) => failed(f, gas_limit),
                        Ok(()) => TxResult {
                            code: CODE_OK,
                            log: String::new(),
                            gas_wanted: gas_limit,
                            gas_used: TRANSFER_GAS,
                            events: transfer_events(transfer),
                        },
                    }
                }
                Decoded::Module(index, ante) => {
                    let module = &self.modules[*index];
                    execute_module(
                        module.as_ref(),
                        tx,
                        ante,
                        &checked,
                        &context,
                        &mut overlay,
                        &fee_recipient,
                    )?
                }
            };
            tx_results.push(result);
        }
        // The block's net validator changes: its final validator state against the committed one.
        let mut validator_updates: Vec<ValidatorChange> = Vec::new();
        let start = Overlay::new(&self.store, latest);
        for module in &self.modules {
            let updates = module
                .validator_updates(&start, &overlay)
                .map_err(|f| AppError::Module { reason: f.log })?;
            validator_updates.extend(updates);
        }
        let writes = overlay.into_writes();
        let state = self.store.prepare_state(block.height().0, writes)?;
        let app_hash = Hash(state.root());
        let txs = block
            .txs()
            .iter()
            .zip(&tx_results)
            .map(|(tx, result)| CommittedTx {
                hash: tx.hash().0,
                tx: tx.as_bytes().to_vec(),
                result: result.clone(),
            })
            .collect();
        self.pending = Some(Pending {
            height: block.height().0,
            block: encode(block),
            block_hash: block.id().hash.0,
            txs,
            evidence: block.evidence().iter().map(|e| e.offence_key().0).collect(),
            state,
            app_hash,
            validator_updates: super::validators::encode_updates(&validator_updates),
        });
        Ok(FinalizeResult {
            tx_results,
            events: Vec::new(),
            app_hash,
            validator_updates,
        })
    }

    fn commit(&mut self, commit_bytes: Vec<u8>) -> Result<Hash, AppError> {
        let pending = self.pending.take().ok_or(AppError::OutOfOrder {
            reason: "commit without a finalized block",
        })?;
        let root = self.store.commit_block(BlockCommit {
            height: pending.height,
            writes: Vec::new(),
            block: pending.block,
            commit: commit_bytes,
            block_hash: Some(pending.block_hash),
            txs: pending.txs,
            evidence: pending.evidence,
            prepared: Some(pending.state),
            validator_updates: pending.validator_updates,
        })?;
        let committed = Hash(root);
        if committed != pending.app_hash {
            return Err(AppError::RootMismatch {
                announced: pending.app_hash,
                committed,
            });
        }
        Ok(committed)
    }

    fn query(&self, path: &str, data: &[u8], height: u64, prove: bool) -> QueryResult {
        self.query_inner(path, data, height, prove)
    }
}
