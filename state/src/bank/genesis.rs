//! Genesis allocations, read from the genesis file's `app_state`.
//!
//! ```json
//! {"accounts": [{"address": "<40 hex chars>", "balance": "<decimal u128>"}]}
//! ```
//!
//! Balances are decimal strings (JSON numbers cannot carry a u128 exactly). Addresses may be upper or
//! lower case. Unknown fields are refused (a typo must not silently drop an allocation).

use basalt_consensus::types::Address;
use serde::Deserialize;

use super::Account;

/// Most accounts a genesis file may allocate.
pub const MAX_GENESIS_ACCOUNTS: usize = 1_000_000;

/// Why a genesis `app_state` is refused.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    /// Not JSON of the expected shape.
    #[error("app_state is not a bank genesis: {source}")]
    Json {
        /// serde_json's reason.
        #[source]
        source: serde_json::Error,
    },
    /// More than [`MAX_GENESIS_ACCOUNTS`].
    #[error("genesis has {count} accounts, more than the limit of {max}")]
    TooManyAccounts {
        /// Count.
        count: usize,
        /// Limit.
        max: usize,
    },
    /// An address is not 20 bytes of hex.
    #[error("genesis account #{index}: address {address:?} is not 40 hex characters")]
    BadAddress {
        /// Position in `accounts`.
        index: usize,
        /// The text.
        address: String,
    },
    /// A balance is not a decimal u128.
    #[error("genesis account #{index}: balance {balance:?} is not a decimal integer below 2^128")]
    BadBalance {
        /// Position in `accounts`.
        index: usize,
        /// The text.
        balance: String,
    },
    /// The same address is allocated twice.
    #[error("genesis account #{index}: address {address} is allocated twice")]
    Duplicate {
        /// Position of the second allocation.
        index: usize,
        /// The address.
        address: Address,
    },
    /// `validator_authority` is not 20 bytes of hex.
    #[error("validator_authority {address:?} is not 40 hex characters")]
    BadAuthority {
        /// The text.
        address: String,
    },
    /// The balances sum to more than `u128::MAX`.
    #[error("genesis total supply overflows u128")]
    SupplyOverflow,
}

/// One allocation as written in JSON.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisAccount {
    /// Hex address.
    pub address: String,
    /// Decimal balance.
    pub balance: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GenesisJson {
    #[serde(default)]
    accounts: Vec<GenesisAccount>,
    /// The account that may change the validator set (proof of authority); absent: the set never
    /// changes.
    #[serde(default)]
    validator_authority: Option<String>,
}

/// Validated genesis allocations, ordered by address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BankGenesis {
    /// `(address, account)` pairs, sorted by address, no duplicates; nonces are 0.
    pub accounts: Vec<(Address, Account)>,
    /// Sum of the balances.
    pub total_supply: u128,
    /// The account allowed to change the validator set (`app_state.validator_authority`); `None`: the
    /// genesis set is the chain's for good.
    pub validator_authority: Option<Address>,
}

impl BankGenesis {
    /// Parses and validates `app_state` (the `null` value means no allocations).
    pub fn from_json(app_state: &serde_json::Value) -> Result<BankGenesis, GenesisError> {
        if app_state.is_null() {
            return Ok(BankGenesis::default());
        }
        let parsed =
            GenesisJson::deserialize(app_state).map_err(|source| GenesisError::Json { source })?;
        if parsed.accounts.len() > MAX_GENESIS_ACCOUNTS {
            return Err(GenesisError::TooManyAccounts {
                count: parsed.accounts.len(),
                max: MAX_GENESIS_ACCOUNTS,
            });
        }
        let mut accounts = std::collections::BTreeMap::new();
        let mut total_supply: u128 = 0;
        for (index, entry) in parsed.accounts.into_iter().enumerate() {
            let address =
                Address::from_hex(&entry.address).map_err(|_| GenesisError::BadAddress {
                    index,
                    address: entry.address.clone(),
                })?;
            let balance = parse_u128(&entry.balance).ok_or_else(|| GenesisError::BadBalance {
                index,
                balance: entry.balance.clone(),
            })?;
            total_supply = total_supply
                .checked_add(balance)
                .ok_or(GenesisError::SupplyOverflow)?;
            let account = Account { balance, nonce: 0 };
            if accounts.insert(address, account).is_some() {
                return Err(GenesisError::Duplicate { index, address });
            }
        }
        let validator_authority = parsed
            .validator_authority
            .map(|text| {
                Address::from_hex(&text).map_err(|_| GenesisError::BadAuthority { address: text })
            })
            .transpose()?;
        Ok(BankGenesis {
            accounts: accounts.into_iter().collect(),
            total_supply,
            validator_authority,
        })
    }
}

/// Strict decimal: 1 to 39 ASCII digits, no sign, no spaces, within u128.
fn parse_u128(text: &str) -> Option<u128> {
    if text.is_empty() || text.len() > 39 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}
