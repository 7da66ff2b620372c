//! Validator-set changes by transaction, in the proof-of-authority model: one account named in the
//! genesis (the *validator authority*) sets validators' powers with [`tx`]'s transaction; every other
//! signer is refused before the transaction can enter a mempool or a block's execution.
//!
//! The module keeps the application's view of the validator set in the state (`validators/set`: the
//! genesis set until the first change, then the set with every change so far), checks each
//! transaction's changes against it with the consensus rules ([`ValidatorSet::next_height_with`]: no
//! removal of a non-member, no empty set, total power bounded). The block's validator updates
//! ([`super::FinalizeResult::validator_updates`]) are the *net* change of that view over the whole block
//! ([`TxModule::validator_updates`]): applied to the chain's set of h + 1 they always apply, even when
//! one block adds and removes the same validator. The chain applies them CometBFT's way: the updates
//! of block h shape the set of height h + 2.
//!
//! **At most a third of the power per block**: the changes of one block may move (sum of |power
//! change|) at most a third of the total power the set had at the start of the block, so consecutive
//! sets always share at least two thirds of their power — a light client trusting one set still finds
//! more than a third of it signing the next, however the changes fall.
//! A transaction that would exceed it fails (its fee is paid, nothing else changes).

/// The transaction's format (in `basalt-bank-tx`, where the fuzzer reaches it without RocksDB).
pub use basalt_bank_tx::validator as tx;

use basalt_consensus::types::{encode, Address, PublicKey, ValidatorChange, ValidatorSet};
use basalt_consensus::VotingPower;

use self::tx::{SignedValidatorTx, VALIDATOR_TX_KIND};
use super::module::{Ante, BlockContext, Effects, Executed, StateView, TxModule};
use super::Event;
use crate::bank::{TxCode, TxFailure};

/// State key of the application's view of the validator set (Borsh `Vec<(PublicKey, u64)>` in the
/// set's canonical order).
pub const VALIDATOR_SET_KEY: &[u8] = b"validators/set";
/// State key of the current block's power budget (Borsh `(height u64, total at block start u64, moved
/// so far u128)`).
pub const VALIDATOR_BUDGET_KEY: &[u8] = b"validators/budget";
/// Gas of a validator transaction before its changes.
pub const BASE_GAS: u64 = 20_000;
/// Gas per change.
pub const GAS_PER_CHANGE: u64 = 10_000;

/// The validator-update transaction kind (see the module docs).
#[derive(Clone, Debug)]
pub struct ValidatorModule {
    authority: Address,
    genesis: Vec<(PublicKey, VotingPower)>,
}

fn failure(code: TxCode, log: impl Into<String>) -> TxFailure {
    TxFailure::new(code, log)
}

fn members(set: &ValidatorSet) -> Vec<(PublicKey, VotingPower)> {
    set.validators()
        .iter()
        .map(|v| (v.public_key, v.voting_power))
        .collect()
}

impl ValidatorModule {
    /// The module of a chain whose genesis names `authority` and starts with `genesis` validators.
    pub fn new(authority: Address, genesis: &ValidatorSet) -> ValidatorModule {
        ValidatorModule {
            authority,
            genesis: members(genesis),
        }
    }

    /// The authority.
    pub fn authority(&self) -> Address {
        self.authority
    }

    /// The application's view of the validator set in `state`.
    pub fn view(&self, state: &dyn StateView) -> Result<ValidatorSet, TxFailure> {
        let stored = state
            .get(VALIDATOR_SET_KEY)
            .map_err(|e| failure(TxCode::Internal, e.to_string()))?;
        let list = match stored {
            None => self.genesis.clone(),
            Some(bytes) => borsh::from_slice::<Vec<(PublicKey, VotingPower)>>(&bytes)
                .map_err(|e| failure(TxCode::Internal, format!("stored validator set: {e}")))?,
        };
        ValidatorSet::new(list)
            .map_err(|e| failure(TxCode::Internal, format!("stored validator set: {e}")))
    }

    fn signed(&self, tx: &[u8]) -> Result<SignedValidatorTx, TxFailure> {
        let signed =
            SignedValidatorTx::decode(tx).map_err(|e| failure(TxCode::Decode, e.to_string()))?;
        if signed.body().signer() != self.authority {
            return Err(failure(
                TxCode::Decode,
                format!(
                    "signer {} is not the validator authority {}",
                    signed.body().signer().to_hex_upper(),
                    self.authority.to_hex_upper()
                ),
            ));
        }
        Ok(signed)
    }

    /// The changes' effects over `state` at `height`, or why they are refused.
    fn apply(
        &self,
        changes: &[ValidatorChange],
        height: u64,
        state: &dyn StateView,
    ) -> Result<Effects, TxFailure> {
        let refused = |log: String| failure(TxCode::MessageFailed, log);
        let view = self.view(state)?;
        let budget = state
            .get(VALIDATOR_BUDGET_KEY)
            .map_err(|e| failure(TxCode::Internal, e.to_string()))?
            .map(|bytes| borsh::from_slice::<(u64, VotingPower, u128)>(&bytes))
            .transpose()
            .map_err(|e| failure(TxCode::Internal, format!("stored budget: {e}")))?;
        let (base_total, moved_before) = match budget {
            Some((h, total, moved)) if h == height => (total, moved),
            _ => (view.total_power(), 0),
        };
        let moved: u128 = changes
            .iter()
            .map(|c| {
                let old = view
                    .index_of(&c.public_key.address())
                    .and_then(|i| view.get(i))
                    .map_or(0, |v| v.voting_power);
                u128::from(c.power.abs_diff(old))
            })
            .sum();
        let moved_total = moved_before + moved;
        if moved_total * 3 > u128::from(base_total) {
            return Err(refused(format!(
                "the block's validator changes would move {moved_total} of {base_total} power, \
                 more than a third"
            )));
        }
        let next = view
            .next_height_with(changes)
            .map_err(|e| refused(e.to_string()))?;
        let events = changes
            .iter()
            .map(|c| {
                Event::new(
                    "validator_update",
                    &[
                        ("address", c.public_key.address().to_hex_upper()),
                        ("pub_key", base64_of(&c.public_key.to_bytes())),
                        ("power", c.power.to_string()),
                    ],
                )
            })
            .collect();
        Ok(Effects {
            writes: vec![
                (VALIDATOR_SET_KEY.to_vec(), Some(encode(&members(&next)))),
                (
                    VALIDATOR_BUDGET_KEY.to_vec(),
                    Some(encode(&(height, base_total, moved_total))),
                ),
            ],
            moves: Vec::new(),
            events,
        })
    }
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The stored form of a block's validator updates ([`crate::BlockCommit::validator_updates`]): Borsh
/// `Vec<(PublicKey, u64)>`; empty bytes for none.
pub fn encode_updates(updates: &[ValidatorChange]) -> Vec<u8> {
    if updates.is_empty() {
        return Vec::new();
    }
    let pairs: Vec<(PublicKey, VotingPower)> =
        updates.iter().map(|c| (c.public_key, c.power)).collect();
    encode(&pairs)
}

/// Decodes [`encode_updates`]' bytes.
pub fn decode_updates(bytes: &[u8]) -> Result<Vec<ValidatorChange>, std::io::Error> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let pairs: Vec<(PublicKey, VotingPower)> = borsh::from_slice(bytes)?;
    Ok(pairs
        .into_iter()
        .map(|(public_key, power)| ValidatorChange { public_key, power })
        .collect())
}

/// Gas of a transaction with `changes` changes.
pub fn gas(changes: usize) -> u64 {
    BASE_GAS.saturating_add(GAS_PER_CHANGE.saturating_mul(changes as u64))
}

impl TxModule for ValidatorModule {
    fn kind(&self) -> u8 {
        VALIDATOR_TX_KIND
    }

    fn decode(&self, tx: &[u8]) -> Result<Ante, TxFailure> {
        let signed = self.signed(tx)?;
        let body = signed.body();
        Ok(Ante {
            chain_id: body.chain_id.clone(),
            signer: body.signer(),
            nonce: body.nonce,
            fee: body.fee,
            gas_limit: body.gas_limit,
            min_gas: gas(body.changes.len()),
        })
    }

    fn verify(&self, tx: &[u8]) -> Result<(), TxFailure> {
        self.signed(tx)?
            .verify()
            .map_err(|e| failure(TxCode::BadSignature, e.to_string()))
    }

    fn validator_updates(
        &self,
        start: &dyn StateView,
        end: &dyn StateView,
    ) -> Result<Vec<ValidatorChange>, TxFailure> {
        // Most blocks change no validator: then the stored view is untouched and nothing is decoded.
        let read = |view: &dyn StateView| {
            view.get(VALIDATOR_SET_KEY)
                .map_err(|e| failure(TxCode::Internal, e.to_string()))
        };
        if read(start)? == read(end)? {
            return Ok(Vec::new());
        }
        let before = self.view(start)?;
        let after = self.view(end)?;
        let power = |set: &ValidatorSet, address: &Address| {
            set.index_of(address)
                .and_then(|i| set.get(i))
                .map(|v| v.voting_power)
        };
        let mut updates: Vec<ValidatorChange> = after
            .validators()
            .iter()
            .filter(|v| power(&before, &v.address) != Some(v.voting_power))
            .map(|v| ValidatorChange {
                public_key: v.public_key,
                power: v.voting_power,
            })
            .chain(
                before
                    .validators()
                    .iter()
                    .filter(|v| power(&after, &v.address).is_none())
                    .map(|v| ValidatorChange {
                        public_key: v.public_key,
                        power: 0,
                    }),
            )
            .collect();
        updates.sort_by_key(|c| c.public_key.address());
        Ok(updates)
    }

    fn execute(&self, tx: &[u8], block: &BlockContext<'_>, state: &dyn StateView) -> Executed {
        let signed = match self.signed(tx) {
            Ok(s) => s,
            Err(f) => {
                return Executed {
                    gas_used: 0,
                    outcome: Err(f),
                }
            }
        };
        let changes = signed.body().validator_changes();
        Executed {
            gas_used: gas(changes.len()),
            outcome: self.apply(&changes, block.header.height.0, state),
        }
    }
}
