//! Building signed transfers: reading the sender's key file and encoding a signed
//! [`basalt_state::bank::TransferBody`]. Pure and deterministic (ed25519 signing is deterministic), so the
//! same inputs always give the same bytes.

use std::path::Path;

use basalt_consensus::types::{tx_hash, Address, ChainId, Hash, PrivateKey};
use basalt_state::bank::{BankTx, TransferBody};

use super::TxError;
use crate::cli::testnet::AccountEntry;
use crate::keys::PrivValidatorKey;

/// Largest key file read: an `accounts.json` of a million accounts is about 130 MB.
pub const MAX_KEY_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// The fields of a transfer besides the sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferParams {
    /// Chain the transfer is for.
    pub chain_id: ChainId,
    /// Recipient.
    pub to: Address,
    /// Amount (at least 1).
    pub amount: u128,
    /// Fee paid to the block proposer.
    pub fee: u128,
    /// The sender's account nonce.
    pub nonce: u64,
    /// Gas limit (at least [`basalt_state::bank::TRANSFER_GAS`]).
    pub gas_limit: u64,
}

/// A built transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltTx {
    /// The transaction bytes (Borsh of `BankTx::Transfer`).
    pub bytes: Vec<u8>,
    /// Its hash (BLAKE2s-256 of the bytes, as the node reports it).
    pub hash: Hash,
}

/// Signs a transfer from `key` and encodes it. The result is decoded again and compared, so bytes that the
/// node's decoder would refuse are never returned.
pub fn build_transfer(key: &PrivateKey, params: &TransferParams) -> Result<BuiltTx, TxError> {
    let body = TransferBody {
        chain_id: params.chain_id.clone(),
        from: key.public_key(),
        to: params.to,
        amount: params.amount,
        fee: params.fee,
        nonce: params.nonce,
        gas_limit: params.gas_limit,
    };
    body.check().map_err(|e| TxError::Invalid {
        reason: e.to_string(),
    })?;
    let signed = body.sign(key);
    let bytes = signed.to_tx_bytes();
    let decoded = BankTx::decode(&bytes).map_err(|e| TxError::Invalid {
        reason: format!("built transaction does not decode: {e}"),
    })?;
    if decoded.transfer() != &signed || decoded.transfer().verify().is_err() {
        return Err(TxError::Invalid {
            reason: "built transaction does not round-trip".to_owned(),
        });
    }
    let hash = tx_hash(&bytes);
    Ok(BuiltTx { bytes, hash })
}

/// Reads the sender's signing key from `path`: a `priv_validator_key.json`, one `accounts.json` entry
/// (`{"address": HEX, "seed": HEX}`), or a whole `accounts.json` array (entry `index`).
pub fn load_signing_key(path: &Path, index: usize) -> Result<PrivateKey, TxError> {
    let bad = |reason: String| TxError::KeyFile {
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
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    match &json {
        serde_json::Value::Object(map) if map.contains_key("priv_key") => {
            let key = PrivValidatorKey::load(path).map_err(|e| bad(e.to_string()))?;
            Ok(key.private_key().clone())
        }
        serde_json::Value::Object(_) => account_key(json, "").map_err(bad),
        serde_json::Value::Array(entries) => {
            let entry = entries
                .get(index)
                .cloned()
                .ok_or_else(|| bad(format!("has {} accounts, no index {index}", entries.len())))?;
            account_key(entry, &format!("[{index}]")).map_err(bad)
        }
        _ => Err(bad(
            "neither a priv_validator_key.json nor accounts.json entries".to_owned(),
        )),
    }
}

/// An `accounts.json` entry's key, checking the address against the seed.
fn account_key(entry: serde_json::Value, at: &str) -> Result<PrivateKey, String> {
    let entry: AccountEntry =
        serde_json::from_value(entry).map_err(|e| format!("{at}: not an account entry: {e}"))?;
    let mut seed = [0u8; 32];
    hex::decode_to_slice(&entry.seed, &mut seed)
        .map_err(|_| format!("{at}.seed: not 64 hex characters"))?;
    let key = PrivateKey::from_seed(&seed);
    let address = Address::from_hex(&entry.address)
        .map_err(|_| format!("{at}.address: not 40 hex characters"))?;
    if address != key.public_key().address() {
        return Err(format!(
            "{at}.address: {} is not the seed's address {}",
            entry.address,
            key.public_key().address()
        ));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use basalt_state::bank::TRANSFER_GAS;

    fn params() -> TransferParams {
        TransferParams {
            chain_id: ChainId::new("test-chain").unwrap(),
            to: PrivateKey::from_seed(&[2; 32]).public_key().address(),
            amount: 5,
            fee: 1,
            nonce: 3,
            gas_limit: TRANSFER_GAS,
        }
    }

    #[test]
    fn builder_is_deterministic_and_decodes() {
        let key = PrivateKey::from_seed(&[1; 32]);
        let a = build_transfer(&key, &params()).unwrap();
        let b = build_transfer(&key, &params()).unwrap();
        assert_eq!(a, b);
        let tx = BankTx::decode(&a.bytes).unwrap();
        let body = tx.transfer().body();
        assert_eq!(body.nonce, 3);
        assert_eq!(body.amount, 5);
        assert_eq!(body.from, key.public_key());
        tx.transfer().verify().unwrap();
        // Any change of a field changes the bytes.
        let mut other = params();
        other.nonce = 4;
        assert_ne!(build_transfer(&key, &other).unwrap().bytes, a.bytes);
    }

    #[test]
    fn invalid_bodies_are_refused() {
        let key = PrivateKey::from_seed(&[1; 32]);
        let mut zero = params();
        zero.amount = 0;
        assert!(matches!(
            build_transfer(&key, &zero),
            Err(TxError::Invalid { .. })
        ));
        let mut gas = params();
        gas.gas_limit = u64::MAX;
        assert!(matches!(
            build_transfer(&key, &gas),
            Err(TxError::Invalid { .. })
        ));
    }

    #[test]
    fn key_files_of_every_kind_load() {
        let dir = tempfile::tempdir().unwrap();
        let key = PrivateKey::from_seed(&[7; 32]);
        let entry = AccountEntry {
            address: key.public_key().address().to_hex_upper(),
            seed: hex::encode(key.seed()),
        };
        let single = dir.path().join("one.json");
        std::fs::write(&single, serde_json::to_string(&entry).unwrap()).unwrap();
        assert_eq!(load_signing_key(&single, 0).unwrap().seed(), key.seed());

        let other = PrivateKey::from_seed(&[8; 32]);
        let list = dir.path().join("accounts.json");
        let entries = vec![
            AccountEntry {
                address: other.public_key().address().to_hex_upper(),
                seed: hex::encode(other.seed()),
            },
            entry.clone(),
        ];
        std::fs::write(&list, serde_json::to_string(&entries).unwrap()).unwrap();
        assert_eq!(load_signing_key(&list, 1).unwrap().seed(), key.seed());
        assert!(load_signing_key(&list, 2).is_err());

        let pv = dir.path().join("pv.json");
        PrivValidatorKey::from_private_key(key.clone())
            .save(&pv)
            .unwrap();
        assert_eq!(load_signing_key(&pv, 0).unwrap().seed(), key.seed());

        let mut wrong = entry;
        wrong.address = other.public_key().address().to_hex_upper();
        std::fs::write(&single, serde_json::to_string(&wrong).unwrap()).unwrap();
        let error = load_signing_key(&single, 0).unwrap_err().to_string();
        assert!(
            error.contains("one.json") && error.contains("address"),
            "{error}"
        );
    }
}
