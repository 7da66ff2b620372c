//! The bank module: accounts (balance and nonce), genesis allocations and signed transfers.
//!
//! # State layout (ICS-24 style paths in the Merkle state)
//!
//! | key | value |
//! |---|---|
//! | `bank/accounts/<address>` | [`Account`], Borsh: `balance` u128 LE (16 bytes) ‖ `nonce` u64 LE (8 bytes) |
//!
//! `<address>` is the 20-byte account address in **lower-case hex** (40 characters); an account's address
//! is the first 20 bytes of BLAKE2s-256 of its ed25519 public key ([`Address::from_public_key`], the same
//! derivation as validator addresses). One record per account keeps a transfer at three leaf updates
//! (sender, recipient, fee recipient). Accounts are never deleted: a zero balance stays recorded because
//! its nonce must survive (replay protection).
//!
//! # Rules
//!
//! - Total supply is fixed at genesis and must fit in a `u128`; transfers and fees only move value, so
//!   no balance can overflow (credits still use checked arithmetic and fail the transaction if they
//!   ever would).
//! - A transfer executes iff its signature verifies, its chain id is the chain's, its nonce equals the
//!   sender's account nonce, its gas limit covers [`TRANSFER_GAS`] and the sender's balance covers
//!   `amount + fee`. It then debits `amount + fee`, increments the sender's nonce, credits `amount` to the
//!   recipient and `fee` to the block proposer's account.
//! - A failed transfer changes **nothing** (no fee, no nonce increment); it is recorded with a non-zero
//!   [`TxCode`].
//! - The mempool check ([`check_transfer`] with [`NonceRule::Mempool`]) accepts a nonce from the account
//!   nonce up to `account nonce + NONCE_WINDOW - 1`, so a client can queue a few transfers ahead; the
//!   balance check there is against the last committed state only.

pub mod gas_price;
pub mod genesis;
pub use basalt_bank_tx as tx;

use std::collections::BTreeMap;

use basalt_consensus::types::{Address, ChainId};
use borsh::{BorshDeserialize, BorshSerialize};

use crate::error::StateError;
use crate::store::{StateStore, Write};

pub use genesis::{BankGenesis, GenesisAccount, GenesisError};
pub use tx::{
    BankTx, SignedTransfer, TransferBody, TxDecodeError, MAX_BANK_TX_BYTES, MAX_GAS_LIMIT,
    TRANSFER_GAS, TRANSFER_SIGN_DOMAIN,
};

/// Prefix of every account key.
pub const ACCOUNT_KEY_PREFIX: &str = "bank/accounts/";

/// How far ahead of the account nonce the mempool check accepts a nonce.
pub const NONCE_WINDOW: u64 = 16;

/// The state key of an account: `bank/accounts/<lower-case hex address>`.
pub fn account_key(address: &Address) -> Vec<u8> {
    let mut key = Vec::with_capacity(ACCOUNT_KEY_PREFIX.len() + 40);
    key.extend_from_slice(ACCOUNT_KEY_PREFIX.as_bytes());
    key.extend_from_slice(hex::encode(address.0).as_bytes());
    key
}

/// An account record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Account {
    /// Spendable balance.
    pub balance: u128,
    /// Number of transfers this account has sent; the next transfer must carry it.
    pub nonce: u64,
}

/// Encoded size of an [`Account`].
pub const ACCOUNT_BYTES: usize = 24;

impl Account {
    /// The record's bytes (what the Merkle state stores and proves).
    pub fn to_bytes(&self) -> Vec<u8> {
        basalt_consensus::types::encode(self)
    }

    /// Decodes a record read from the state; anything but exactly 24 bytes is corruption.
    pub fn from_bytes(bytes: &[u8]) -> Result<Account, BankError> {
        if bytes.len() != ACCOUNT_BYTES {
            return Err(BankError::CorruptAccount {
                len: bytes.len(),
                expected: ACCOUNT_BYTES,
            });
        }
        borsh::from_slice(bytes).map_err(|_| BankError::CorruptAccount {
            len: bytes.len(),
            expected: ACCOUNT_BYTES,
        })
    }
}

/// Errors of the bank that are not a transaction's fault (storage, corruption).
#[derive(Debug, thiserror::Error)]
pub enum BankError {
    /// The state store failed.
    #[error("state store: {source}")]
    Store {
        /// The store's error.
        #[from]
        source: StateError,
    },
    /// An account record in the state has the wrong size.
    #[error("corrupt account record: {len} bytes, expected {expected}")]
    CorruptAccount {
        /// Length found.
        len: usize,
        /// Length expected.
        expected: usize,
    },
}

/// Result codes of bank transactions (0 is success; CometBFT's convention).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u32)]
pub enum TxCode {
    /// Executed.
    Ok = 0,
    /// The bytes are not a bank transaction (too large, malformed, invalid body).
    Decode = 1,
    /// The transaction is for another chain.
    WrongChainId = 2,
    /// The signature does not verify.
    BadSignature = 3,
    /// The nonce is not the account's (replayed, or too far ahead).
    BadNonce = 4,
    /// Balance below `amount + fee`, or `amount + fee` overflows.
    InsufficientFunds = 5,
    /// A credit would overflow (impossible while supply fits in u128; checked anyway).
    Overflow = 6,
    /// The gas limit does not cover the transaction's gas.
    OutOfGas = 7,
    /// A module refused one of the transaction's messages (its fee was paid; nothing else changed).
    MessageFailed = 8,
    /// The fee is below this node's minimum gas price times the gas limit (mempool admission only:
    /// never a block's result).
    InsufficientFee = 9,
    /// The application could not read its state (the node should stop; not a tx fault).
    Internal = 99,
}

impl TxCode {
    /// The numeric code.
    pub fn as_u32(self) -> u32 {
        self as u32
    }
}

/// Which nonce a check accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NonceRule {
    /// Exactly the account nonce (block execution).
    Exact,
    /// From the account nonce to `account nonce + NONCE_WINDOW - 1` (mempool admission).
    Mempool,
}

/// A transfer that passed every check, with the records it will write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckedTransfer {
    /// Sender's address.
    pub sender: Address,
    /// Sender's record after the transfer.
    pub sender_after: Account,
    /// Recipient's address.
    pub recipient: Address,
    /// `amount + fee`.
    pub debit: u128,
}

/// A transaction failure: code and a human-readable log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxFailure {
    /// Non-zero code.
    pub code: TxCode,
    /// Why.
    pub log: String,
}

impl TxFailure {
    /// A failure with `code` and `log`.
    pub fn new(code: TxCode, log: impl Into<String>) -> TxFailure {
        TxFailure {
            code,
            log: log.into(),
        }
    }
}

/// The checks every transfer must pass, except the signature (verified separately, possibly batched):
/// chain id, gas, nonce (per `rule`) and funds, against `sender_account`.
pub fn check_transfer(
    body: &TransferBody,
    chain_id: &ChainId,
    sender_account: &Account,
    rule: NonceRule,
) -> Result<CheckedTransfer, TxFailure> {
    let debit = body
        .amount
        .checked_add(body.fee)
        .ok_or_else(|| TxFailure::new(TxCode::InsufficientFunds, "amount + fee overflows"))?;
    let charge = Charge {
        chain_id: &body.chain_id,
        sender: body.sender(),
        gas_limit: body.gas_limit,
        min_gas: TRANSFER_GAS,
        nonce: body.nonce,
        debit,
    };
    let mut checked = check_charge(&charge, chain_id, sender_account, rule)?;
    checked.recipient = body.to;
    Ok(checked)
}

/// What any transaction owes before it runs: the bank's ante rules over these fields.
#[derive(Clone, Copy, Debug)]
pub struct Charge<'a> {
    /// The chain it was signed for.
    pub chain_id: &'a ChainId,
    /// The paying account.
    pub sender: Address,
    /// Its gas limit.
    pub gas_limit: u64,
    /// The least gas it needs (a lower limit fails with [`TxCode::OutOfGas`]).
    pub min_gas: u64,
    /// Its nonce.
    pub nonce: u64,
    /// What leaves the sender's balance (amount and fee).
    pub debit: u128,
}

/// The ante rules (chain id, gas, nonce per `rule`, funds for `debit`) against `sender_account`; the
/// result debits the sender and increments its nonce (its `recipient` is the sender: credit nothing).
pub fn check_charge(
    charge: &Charge<'_>,
    chain_id: &ChainId,
    sender_account: &Account,
    rule: NonceRule,
) -> Result<CheckedTransfer, TxFailure> {
    if charge.chain_id != chain_id {
        return Err(TxFailure::new(
            TxCode::WrongChainId,
            format!(
                "transaction is for chain {}, this is {}",
                charge.chain_id, chain_id
            ),
        ));
    }
    if charge.gas_limit < charge.min_gas {
        return Err(TxFailure::new(
            TxCode::OutOfGas,
            format!(
                "gas limit {} below the transaction's {}",
                charge.gas_limit, charge.min_gas
            ),
        ));
    }
    let nonce_ok = match rule {
        NonceRule::Exact => charge.nonce == sender_account.nonce,
        NonceRule::Mempool => {
            charge.nonce >= sender_account.nonce
                && charge.nonce - sender_account.nonce < NONCE_WINDOW
        }
    };
    if !nonce_ok {
        return Err(TxFailure::new(
            TxCode::BadNonce,
            format!(
                "nonce {} but the account's is {}",
                charge.nonce, sender_account.nonce
            ),
        ));
    }
    let balance = sender_account
        .balance
        .checked_sub(charge.debit)
        .ok_or_else(|| {
            TxFailure::new(
                TxCode::InsufficientFunds,
                format!(
                    "balance {} below amount + fee {}",
                    sender_account.balance, charge.debit
                ),
            )
        })?;
    let nonce = sender_account
        .nonce
        .checked_add(1)
        .ok_or_else(|| TxFailure::new(TxCode::BadNonce, "nonce exhausted"))?;
    Ok(CheckedTransfer {
        sender: charge.sender,
        sender_after: Account { balance, nonce },
        recipient: charge.sender,
        debit: charge.debit,
    })
}

/// The address an account record's key names, if `key` is one.
fn parse_account_key(key: &[u8]) -> Option<Address> {
    let hex = key.strip_prefix(ACCOUNT_KEY_PREFIX.as_bytes())?;
    let hex = std::str::from_utf8(hex).ok()?;
    // Record keys are lower-case: an upper-case spelling is another key, one that holds nothing.
    if hex.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    Address::from_hex(hex).ok()
}

/// Reads an account at a committed version (absent = zero balance, nonce 0).
pub fn read_account(
    store: &StateStore,
    address: &Address,
    version: u64,
) -> Result<Account, BankError> {
    match store.get(&account_key(address), version)? {
        Some(bytes) => Account::from_bytes(&bytes),
        None => Ok(Account::default()),
    }
}

/// The accounts a block touches, on top of a committed version: reads fall through to the store, writes
/// stay here until [`Overlay::into_writes`]. Ordered by address, so the write set is deterministic.
#[derive(Debug)]
pub struct Overlay<'a> {
    store: &'a StateStore,
    version: u64,
    /// Records read from the store (absent accounts as the default record).
    read: BTreeMap<Address, Account>,
    /// Records written by applied transfers: the block's write set.
    written: BTreeMap<Address, Account>,
    /// Other modules' writes (never under [`ACCOUNT_KEY_PREFIX`]).
    other: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl<'a> Overlay<'a> {
    /// An empty overlay over `version` of `store`.
    pub fn new(store: &'a StateStore, version: u64) -> Overlay<'a> {
        Overlay {
            store,
            version,
            read: BTreeMap::new(),
            written: BTreeMap::new(),
            other: BTreeMap::new(),
        }
    }

    /// The value of any state `key` as of the overlay (account records as the bank's pending writes
    /// leave them, other keys as modules' pending writes do). Reads nothing into the overlay.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        if let Some(address) = parse_account_key(key) {
            if let Some(account) = self.written.get(&address) {
                return Ok(Some(account.to_bytes()));
            }
        } else if let Some(value) = self.other.get(key) {
            return Ok(value.clone());
        }
        self.store.get(key, self.version)
    }

    /// Moves native tokens between accounts for a module: each `(from, to, amount)` in order, all or
    /// none (a debit beyond a balance or an overflowing credit fails the whole set).
    pub fn move_native(
        &mut self,
        moves: &[(Address, Address, u128)],
    ) -> Result<Result<(), TxFailure>, BankError> {
        let mut staged: BTreeMap<Address, Account> = BTreeMap::new();
        for (from, to, amount) in moves {
            let mut debited = match staged.get(from) {
                Some(a) => *a,
                None => self.account(from)?,
            };
            let Some(balance) = debited.balance.checked_sub(*amount) else {
                return Ok(Err(TxFailure::new(
                    TxCode::InsufficientFunds,
                    format!("{from} holds {}, cannot move {amount}", debited.balance),
                )));
            };
            debited.balance = balance;
            staged.insert(*from, debited);
            let mut credited = match staged.get(to) {
                Some(a) => *a,
                None => self.account(to)?,
            };
            let Some(balance) = credited.balance.checked_add(*amount) else {
                return Ok(Err(TxFailure::new(
                    TxCode::Overflow,
                    "credit overflows the balance",
                )));
            };
            credited.balance = balance;
            staged.insert(*to, credited);
        }
        self.written.extend(staged);
        Ok(Ok(()))
    }

    /// Applies a module's effects, all or none: its native-token `moves` (as
    /// [`Overlay::move_native`]) and its state `writes`, which may not name an account record (only the
    /// bank writes balances and nonces). A refusal ([`TxCode::MessageFailed`]) leaves the overlay as it
    /// was.
    pub fn apply_module(
        &mut self,
        moves: &[(Address, Address, u128)],
        writes: Vec<Write>,
    ) -> Result<Result<(), TxFailure>, BankError> {
        if writes
            .iter()
            .any(|(key, _)| key.starts_with(ACCOUNT_KEY_PREFIX.as_bytes()))
        {
            return Ok(Err(TxFailure::new(
                TxCode::MessageFailed,
                "a module may not write the bank's account records",
            )));
        }
        if let Err(f) = self.move_native(moves)? {
            return Ok(Err(TxFailure::new(TxCode::MessageFailed, f.log)));
        }
        self.other.extend(writes);
        Ok(Ok(()))
    }

    /// The account as of the overlay (pending writes included).
    pub fn account(&mut self, address: &Address) -> Result<Account, BankError> {
        if let Some(account) = self.written.get(address).or_else(|| self.read.get(address)) {
            return Ok(*account);
        }
        let account = read_account(self.store, address, self.version)?;
        self.read.insert(*address, account);
        Ok(account)
    }

    /// Applies a checked transfer: debits the sender, credits the recipient and the fee recipient.
    /// All-or-nothing: nothing is written unless every credit fits.
    pub fn apply(
        &mut self,
        checked: &CheckedTransfer,
        amount: u128,
        fee: u128,
        fee_recipient: &Address,
    ) -> Result<Result<(), TxFailure>, BankError> {
        let overflow = || TxFailure::new(TxCode::Overflow, "credit overflows the balance");
        let mut staged: Vec<(Address, Account)> = Vec::with_capacity(3);
        staged.push((checked.sender, checked.sender_after));
        for (to, credit) in [(checked.recipient, amount), (*fee_recipient, fee)] {
            if credit == 0 {
                continue;
            }
            // Read through what is already staged (the recipient may be the sender or the proposer).
            let current = match staged.iter().find(|(a, _)| *a == to) {
                Some((_, acc)) => *acc,
                None => self.account(&to)?,
            };
            let Some(balance) = current.balance.checked_add(credit) else {
                return Ok(Err(overflow()));
            };
            let updated = Account { balance, ..current };
            match staged.iter_mut().find(|(a, _)| *a == to) {
                Some(slot) => slot.1 = updated,
                None => staged.push((to, updated)),
            }
        }
        for (address, account) in staged {
            self.written.insert(address, account);
        }
        Ok(Ok(()))
    }

    /// Number of accounts written.
    pub fn len(&self) -> usize {
        self.written.len()
    }

    /// Whether no account was written.
    pub fn is_empty(&self) -> bool {
        self.written.is_empty()
    }

    /// The write set: every account written by an applied transaction, in address order, then the
    /// modules' writes in key order. Accounts only read (e.g. by failed transfers) are not written, so
    /// failures leave the state untouched.
    pub fn into_writes(self) -> Vec<Write> {
        self.written
            .into_iter()
            .map(|(address, account)| (account_key(&address), Some(account.to_bytes())))
            .chain(self.other)
            .collect()
    }
}
