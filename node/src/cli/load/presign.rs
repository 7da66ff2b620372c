//! Before the clock starts: read the accounts, ask a node for the chain id and each account's committed
//! nonce, and sign every transfer of the run (on all cores), so submission costs only I/O.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use basalt_consensus::types::{tx_hash, Address, ChainId, Hash, PrivateKey};
use basalt_state::bank::{TransferBody, TRANSFER_GAS};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use futures::StreamExt;

use super::schedule::TxRef;
use super::LoadError;
use crate::cli::testnet::AccountEntry;
use crate::cli::tx::build::{build_transfer, TransferParams, MAX_KEY_FILE_BYTES};
use crate::cli::tx::client::RpcClient;

/// Most transactions one run signs (memory: about 300 bytes each with the hash index).
pub const MAX_TOTAL_TXS: usize = 2_000_000;
/// Most accounts read from the accounts file.
pub const MAX_ACCOUNTS: usize = 1_000_000;
/// Concurrent `abci_query` requests while reading nonces.
const NONCE_QUERY_CONCURRENCY: usize = 16;
/// Amount of every transfer (the fee is 0, so the balance of a funded account lasts any run).
const TRANSFER_AMOUNT: u128 = 1;

/// One signed transfer, ready to put in a request.
#[derive(Debug, Clone)]
pub struct SignedTx {
    /// The transaction bytes, base64 (JSON-RPC's encoding of `tx`).
    pub base64: String,
    /// BLAKE2s-256 of the bytes: what `broadcast_tx_sync` returns and what blocks are matched by.
    pub hash: Hash,
}

/// Every transaction of the run.
#[derive(Debug)]
pub struct Presigned {
    /// Per account, its transactions in nonce order.
    pub accounts: Vec<Vec<SignedTx>>,
    /// Transaction hash → which one it is.
    pub index: HashMap<Hash, TxRef>,
}

impl Presigned {
    /// The transaction `tx` refers to.
    pub fn get(&self, tx: TxRef) -> Option<&SignedTx> {
        self.accounts
            .get(tx.account as usize)
            .and_then(|list| list.get(tx.seq as usize))
    }

    /// Number of transactions.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}

/// Reads the signing keys of `accounts.json` (as written by `basalt testnet`), at most `max` of them,
/// checking each address against its seed.
pub fn load_accounts(path: &Path, max: usize) -> Result<Vec<PrivateKey>, LoadError> {
    let bad = |reason: String| LoadError::Accounts {
        path: path.to_path_buf(),
        reason,
    };
    let len = std::fs::metadata(path)
        .map_err(|e| bad(e.to_string()))?
        .len();
    if len > MAX_KEY_FILE_BYTES {
        return Err(bad(format!("{len} bytes, more than {MAX_KEY_FILE_BYTES}")));
    }
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let entries: Vec<AccountEntry> = serde_json::from_str(&text)
        .map_err(|e| bad(format!("not a JSON array of {{address, seed}}: {e}")))?;
    if entries.is_empty() {
        return Err(bad("no accounts".to_owned()));
    }
    entries
        .iter()
        .take(max.min(MAX_ACCOUNTS))
        .enumerate()
        .map(|(i, entry)| {
            let mut seed = [0u8; 32];
            hex::decode_to_slice(&entry.seed, &mut seed)
                .map_err(|_| bad(format!("[{i}].seed: not 64 hex characters")))?;
            let key = PrivateKey::from_seed(&seed);
            let address = Address::from_hex(&entry.address)
                .map_err(|_| bad(format!("[{i}].address: not 40 hex characters")))?;
            if address != key.public_key().address() {
                return Err(bad(format!(
                    "[{i}].address: {} is not the seed's address",
                    entry.address
                )));
            }
            Ok(key)
        })
        .collect()
}

/// The committed nonce of every account, queried from `node` with bounded concurrency.
pub async fn query_nonces(
    node: &str,
    keys: &[PrivateKey],
    timeout: Duration,
) -> Result<Vec<u64>, LoadError> {
    let client = RpcClient::new(node, timeout)?;
    let results: Vec<(usize, Result<u64, LoadError>)> =
        futures::stream::iter(keys.iter().enumerate())
            .map(|(i, key)| {
                let client = client.clone();
                async move {
                    let account = client.account(&key.public_key().address()).await;
                    (i, account.map(|a| a.nonce).map_err(LoadError::from))
                }
            })
            .buffer_unordered(NONCE_QUERY_CONCURRENCY)
            .collect()
            .await;
    let mut nonces = vec![0u64; keys.len()];
    for (i, result) in results {
        nonces[i] = result?;
    }
    Ok(nonces)
}

/// Signs `per_account` transfers for each key, nonces from `first_nonces[i]` on, using `threads` threads.
/// Each account sends to the next account's address (the last to the first).
pub fn presign(
    keys: &[PrivateKey],
    first_nonces: &[u64],
    chain_id: &ChainId,
    per_account: usize,
    threads: usize,
) -> Result<Presigned, LoadError> {
    let total = keys.len().saturating_mul(per_account);
    if total > MAX_TOTAL_TXS {
        return Err(LoadError::BadArgument {
            argument: "--txs-per-account",
            reason: format!(
                "{} accounts × {per_account} = {total} transactions, more than {MAX_TOTAL_TXS}",
                keys.len()
            ),
        });
    }
    let recipients: Vec<Address> = keys.iter().map(|k| k.public_key().address()).collect();
    let threads = threads.clamp(1, 64);
    let chunk = keys.len().div_ceil(threads).max(1);
    let signed: Vec<Result<Vec<Vec<SignedTx>>, LoadError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = keys
            .chunks(chunk)
            .enumerate()
            .map(|(c, part)| {
                let recipients = &recipients;
                scope.spawn(move || {
                    part.iter()
                        .enumerate()
                        .map(|(j, key)| {
                            let i = c * chunk + j;
                            let to = recipients[(i + 1) % recipients.len()];
                            sign_account(key, to, first_nonces[i], chain_id, per_account)
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(LoadError::Presign {
                        reason: "a signing thread panicked".to_owned(),
                    })
                })
            })
            .collect()
    });
    let mut accounts = Vec::with_capacity(keys.len());
    for part in signed {
        accounts.extend(part?);
    }
    let mut index = HashMap::with_capacity(total);
    for (a, list) in accounts.iter().enumerate() {
        for (s, tx) in list.iter().enumerate() {
            let tx_ref = TxRef {
                account: a as u32,
                seq: s as u32,
            };
            if index.insert(tx.hash, tx_ref).is_some() {
                return Err(LoadError::Presign {
                    reason: format!(
                        "two transactions hash to {} (duplicate accounts in the file?)",
                        tx.hash.to_hex_upper()
                    ),
                });
            }
        }
    }
    Ok(Presigned { accounts, index })
}

/// One account's transfers. The first goes through [`build_transfer`], which decodes and verifies what
/// it built, so a systematic encoding mistake stops the run before any load is sent; the rest are signed
/// directly (verifying each would double the cost).
fn sign_account(
    key: &PrivateKey,
    to: Address,
    first_nonce: u64,
    chain_id: &ChainId,
    count: usize,
) -> Result<Vec<SignedTx>, LoadError> {
    let mut out = Vec::with_capacity(count);
    for k in 0..count {
        let nonce = first_nonce
            .checked_add(k as u64)
            .ok_or_else(|| LoadError::Presign {
                reason: format!("nonce overflow from {first_nonce}"),
            })?;
        let bytes = if k == 0 {
            let params = TransferParams {
                chain_id: chain_id.clone(),
                to,
                amount: TRANSFER_AMOUNT,
                fee: 0,
                nonce,
                gas_limit: TRANSFER_GAS,
            };
            build_transfer(key, &params)?.bytes
        } else {
            let body = TransferBody {
                chain_id: chain_id.clone(),
                from: key.public_key(),
                to,
                amount: TRANSFER_AMOUNT,
                fee: 0,
                nonce,
                gas_limit: TRANSFER_GAS,
            };
            body.sign(key).to_tx_bytes()
        };
        out.push(SignedTx {
            hash: tx_hash(&bytes),
            base64: BASE64.encode(&bytes),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use basalt_state::bank::BankTx;

    #[test]
    fn presigned_txs_decode_verify_and_are_indexed() {
        let keys: Vec<PrivateKey> = (1..=3u8).map(|i| PrivateKey::from_seed(&[i; 32])).collect();
        let chain = ChainId::new("load-test").unwrap();
        let p = presign(&keys, &[0, 5, 9], &chain, 4, 2).unwrap();
        assert_eq!(p.len(), 12);
        for (a, list) in p.accounts.iter().enumerate() {
            assert_eq!(list.len(), 4);
            for (s, tx) in list.iter().enumerate() {
                let bytes = BASE64.decode(&tx.base64).unwrap();
                assert_eq!(tx_hash(&bytes), tx.hash);
                let decoded = BankTx::decode(&bytes).unwrap();
                decoded.transfer().verify().unwrap();
                let body = decoded.transfer().body();
                assert_eq!(body.nonce, [0, 5, 9][a] + s as u64);
                assert_eq!(body.from, keys[a].public_key());
                assert_eq!(body.to, keys[(a + 1) % 3].public_key().address());
                assert_eq!(
                    p.index[&tx.hash],
                    TxRef {
                        account: a as u32,
                        seq: s as u32
                    }
                );
            }
        }
    }

    #[test]
    fn too_many_transactions_are_refused_before_signing() {
        let keys = vec![PrivateKey::from_seed(&[1; 32])];
        let chain = ChainId::new("load-test").unwrap();
        let error = presign(&keys, &[0], &chain, MAX_TOTAL_TXS + 1, 1).unwrap_err();
        assert!(error.to_string().contains("--txs-per-account"), "{error}");
    }

    #[test]
    fn accounts_file_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("accounts.json");
        let key = PrivateKey::from_seed(&[4; 32]);
        let good = AccountEntry {
            address: key.public_key().address().to_hex_upper(),
            seed: hex::encode([4u8; 32]),
        };
        std::fs::write(
            &path,
            serde_json::to_string(&vec![good.clone(), good.clone()]).unwrap(),
        )
        .unwrap();
        assert_eq!(load_accounts(&path, 1).unwrap().len(), 1);
        assert_eq!(load_accounts(&path, 10).unwrap().len(), 2);
        let mut wrong = good;
        wrong.address = "00".repeat(20);
        std::fs::write(&path, serde_json::to_string(&vec![wrong]).unwrap()).unwrap();
        let error = load_accounts(&path, 10).unwrap_err().to_string();
        assert!(
            error.contains("[0].address") && error.contains("accounts.json"),
            "{error}"
        );
        std::fs::write(&path, "[]").unwrap();
        assert!(load_accounts(&path, 10).is_err());
    }
}
