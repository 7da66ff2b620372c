//! ICS-20 fungible token transfer on Basalt: ibc-rs's transfer application (`ibc-app-transfer`) over the
//! bank's native token and a ledger of vouchers.
//!
//! - The native token's ICS-20 denomination is [`NATIVE_DENOM`]. Sending it escrows it in the channel's
//!   escrow account ([`escrow_address`]); it comes back out when it returns (or is refunded). Native
//!   tokens move only as [`Move`]s the bank applies with its own checks: nothing here can create or
//!   destroy them.
//! - Tokens received from another chain are vouchers, denominated by their full trace
//!   (`transfer/channel-0/basalt`) and kept under `transfer/balances/<address>/<denomination>` as a
//!   big-endian `u128`. Sending a voucher back burns it; receiving ours back unescrows.
//! - Bounds ibc-rs does not set: a denomination of at most [`MAX_DENOM_BYTES`], a memo of at most
//!   [`MAX_MEMO_BYTES`], a receiver of at most [`MAX_RECEIVER_BYTES`]; amounts above `u128::MAX` are
//!   refused. An incoming packet that breaks them is acknowledged with an error (the sender is
//!   refunded), never stored.
//! - The sender of a `MsgTransfer` must be the transaction's signer (checked when the transaction's
//!   messages are decoded, [`crate::tx`]): ibc-rs does not check it.
//!
//! One [`Transfers`] serves one transaction: it reads through the block's state and records its moves
//! and voucher balances, which the transaction's effects carry to the bank only if every message
//! succeeds.

use std::collections::BTreeMap;
use std::fmt;

use basalt_consensus::types::{Address, Hash};
use basalt_state::app::{Move, StateView};
use basalt_state::bank::{account_key, Account};
use basalt_state::Write;
use ibc_app_transfer::context::{TokenTransferExecutionContext, TokenTransferValidationContext};
use ibc_app_transfer::module as ics20;
use ibc_app_transfer::types::error::TokenTransferError;
use ibc_app_transfer::types::{Amount, Memo, PrefixedCoin, PrefixedDenom};
use ibc_core::channel::types::acknowledgement::Acknowledgement;
use ibc_core::channel::types::channel::{Counterparty, Order};
use ibc_core::channel::types::error::ChannelError;
use ibc_core::channel::types::packet::Packet;
use ibc_core::channel::types::Version;
use ibc_core::host::types::error::HostError;
use ibc_core::host::types::identifiers::{ChannelId, ConnectionId, PortId};
use ibc_core::primitives::Signer;
use ibc_core::router::module::Module;
use ibc_core::router::types::event::ModuleEvent;
use ibc_core::router::types::module::ModuleExtras;

/// The native token's ICS-20 denomination.
pub const NATIVE_DENOM: &str = "basalt";
/// Longest denomination (full trace path) a chain keeps.
pub const MAX_DENOM_BYTES: usize = 256;
/// Longest memo (ibc-go's limit).
pub const MAX_MEMO_BYTES: usize = 32_768;
/// Longest receiver (ibc-go's limit).
pub const MAX_RECEIVER_BYTES: usize = 2_048;
/// Where voucher balances live.
pub const VOUCHER_PREFIX: &str = "transfer/balances/";

/// The escrow account of `port`/`channel`: the first 20 bytes of BLAKE2s-256 of
/// `"ics20-1\0<port>/<channel>"` (ibc-go's construction, with Basalt's hash). Nobody holds its key.
pub fn escrow_address(port: &PortId, channel: &ChannelId) -> Address {
    let digest = Hash::digest(format!("ics20-1\0{port}/{channel}").as_bytes());
    let mut address = [0u8; 20];
    address.copy_from_slice(&digest.0[..20]);
    Address(address)
}

/// The `ibc/<HASH>` name of a voucher denomination, as ibc-go and wallets show it: upper-case hex of
/// SHA-256 of the full trace (`transfer/channel-0/basalt`). Reported in the `denomination_trace` event
/// of a receipt; balances are kept under the full trace.
pub fn ibc_denom(denom: &PrefixedDenom) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(denom.to_string().as_bytes());
    format!("ibc/{}", hex::encode_upper(digest))
}

/// The state key of `owner`'s balance of voucher `denom`.
pub fn voucher_key(owner: &Address, denom: &str) -> Vec<u8> {
    format!("{VOUCHER_PREFIX}{}/{denom}", hex_lower(owner)).into_bytes()
}

fn hex_lower(address: &Address) -> String {
    address.to_hex_upper().to_ascii_lowercase()
}

/// One transaction's ICS-20 ledger and ibc-rs's transfer application (see the module docs).
pub struct Transfers<'a> {
    state: &'a dyn StateView,
    /// Native balances touched so far (as the transaction leaves them).
    native: BTreeMap<Address, u128>,
    moves: Vec<Move>,
    /// Voucher balances touched so far, by state key.
    vouchers: BTreeMap<Vec<u8>, u128>,
}

impl fmt::Debug for Transfers<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transfers")
            .field("moves", &self.moves)
            .field("vouchers", &self.vouchers.len())
            .finish()
    }
}

impl<'a> Transfers<'a> {
    /// An empty ledger over the block's `state`.
    pub fn new(state: &'a dyn StateView) -> Transfers<'a> {
        Transfers {
            state,
            native: BTreeMap::new(),
            moves: Vec::new(),
            vouchers: BTreeMap::new(),
        }
    }

    /// What the transaction did: native moves for the bank, voucher balances as state writes.
    pub fn into_effects(self) -> (Vec<Move>, Vec<Write>) {
        let writes = self
            .vouchers
            .into_iter()
            .map(|(key, amount)| (key, (amount > 0).then(|| amount.to_be_bytes().to_vec())))
            .collect();
        (self.moves, writes)
    }

    fn native_balance(&self, owner: &Address) -> Result<u128, HostError> {
        if let Some(balance) = self.native.get(owner) {
            return Ok(*balance);
        }
        match self
            .state
            .get(&account_key(owner))
            .map_err(HostError::failed_to_retrieve)?
        {
            Some(bytes) => Ok(Account::from_bytes(&bytes)
                .map_err(HostError::invalid_state)?
                .balance),
            None => Ok(0),
        }
    }

    fn voucher_balance(&self, key: &[u8]) -> Result<u128, HostError> {
        if let Some(balance) = self.vouchers.get(key) {
            return Ok(*balance);
        }
        match self.state.get(key).map_err(HostError::failed_to_retrieve)? {
            Some(bytes) => Ok(u128::from_be_bytes(bytes.try_into().map_err(|_| {
                HostError::invalid_state("a voucher balance is not 16 bytes")
            })?)),
            None => Ok(0),
        }
    }

    /// `owner`'s balance of `denom`.
    fn balance(&self, owner: &Address, denom: &str) -> Result<u128, HostError> {
        if denom == NATIVE_DENOM {
            self.native_balance(owner)
        } else {
            self.voucher_balance(&voucher_key(owner, denom))
        }
    }

    /// Whether `from` can give `amount` of `denom` (and `to`, if any, can take it).
    fn check_move(
        &self,
        from: Option<&Address>,
        to: Option<&Address>,
        coin: &PrefixedCoin,
    ) -> Result<(String, u128), HostError> {
        let (denom, amount) = denom_and_amount(coin)?;
        if let Some(from) = from {
            let held = self.balance(from, &denom)?;
            if held < amount {
                return Err(HostError::invalid_state(format!(
                    "{from} holds {held} {denom}, cannot send {amount}"
                )));
            }
        }
        if let Some(to) = to {
            self.balance(to, &denom)?
                .checked_add(amount)
                .ok_or_else(|| HostError::invalid_state("the credit overflows the balance"))?;
        }
        Ok((denom, amount))
    }

    /// Takes `amount` of `denom` from `from` (if any) and gives it to `to` (if any): a mint has no
    /// `from`, a burn no `to`; the native token always has both (it only moves).
    fn apply_move(
        &mut self,
        from: Option<&Address>,
        to: Option<&Address>,
        coin: &PrefixedCoin,
    ) -> Result<(), HostError> {
        let (denom, amount) = self.check_move(from, to, coin)?;
        // check_move saw enough funds; a shortfall here would be a bug, reported rather than panicked on.
        let short = || HostError::invalid_state("balance changed between check and move");
        if denom == NATIVE_DENOM {
            let (Some(from), Some(to)) = (from, to) else {
                return Err(HostError::invalid_state(
                    "the native token is never minted or burned by ICS-20",
                ));
            };
            let debited = self
                .native_balance(from)?
                .checked_sub(amount)
                .ok_or_else(short)?;
            self.native.insert(*from, debited);
            let credited = self.native_balance(to)?.saturating_add(amount);
            self.native.insert(*to, credited);
            self.moves.push(Move {
                from: *from,
                to: *to,
                amount,
            });
            return Ok(());
        }
        if let Some(from) = from {
            let key = voucher_key(from, &denom);
            let left = self
                .voucher_balance(&key)?
                .checked_sub(amount)
                .ok_or_else(short)?;
            self.vouchers.insert(key, left);
        }
        if let Some(to) = to {
            let key = voucher_key(to, &denom);
            let credited = self.voucher_balance(&key)?.saturating_add(amount);
            self.vouchers.insert(key, credited);
        }
        Ok(())
    }
}

/// A coin's denomination (bounded) and amount (at most `u128::MAX`).
fn denom_and_amount(coin: &PrefixedCoin) -> Result<(String, u128), HostError> {
    let denom = coin.denom.to_string();
    if denom.len() > MAX_DENOM_BYTES {
        return Err(HostError::invalid_state(format!(
            "denomination of {} bytes, more than {MAX_DENOM_BYTES}",
            denom.len()
        )));
    }
    let amount = amount_u128(&coin.amount)?;
    Ok((denom, amount))
}

fn amount_u128(amount: &Amount) -> Result<u128, HostError> {
    amount
        .to_string()
        .parse::<u128>()
        .map_err(|_| HostError::invalid_state(format!("amount {amount} exceeds u128")))
}

/// An account named by a signer string: 40 hex characters (either case), at most
/// [`MAX_RECEIVER_BYTES`] long before parsing.
fn account(signer: &Signer) -> Result<Address, HostError> {
    let text: &str = signer.as_ref();
    if text.len() > MAX_RECEIVER_BYTES {
        return Err(HostError::invalid_state("account name too long"));
    }
    Address::from_hex(text)
        .map_err(|_| HostError::invalid_state(format!("{text:?} is not a Basalt address")))
}

impl TokenTransferValidationContext for Transfers<'_> {
    type AccountId = Address;

    fn sender_account(&self, sender: &Signer) -> Result<Address, HostError> {
        account(sender)
    }

    fn receiver_account(&self, receiver: &Signer) -> Result<Address, HostError> {
        account(receiver)
    }

    fn get_port(&self) -> Result<PortId, HostError> {
        Ok(PortId::transfer())
    }

    fn can_send_coins(&self) -> Result<(), HostError> {
        Ok(())
    }

    fn can_receive_coins(&self) -> Result<(), HostError> {
        Ok(())
    }

    fn escrow_coins_validate(
        &self,
        from: &Address,
        port: &PortId,
        channel: &ChannelId,
        coin: &PrefixedCoin,
        memo: &Memo,
    ) -> Result<(), HostError> {
        check_memo(memo)?;
        self.check_move(Some(from), Some(&escrow_address(port, channel)), coin)
            .map(drop)
    }

    fn unescrow_coins_validate(
        &self,
        to: &Address,
        port: &PortId,
        channel: &ChannelId,
        coin: &PrefixedCoin,
    ) -> Result<(), HostError> {
        self.check_move(Some(&escrow_address(port, channel)), Some(to), coin)
            .map(drop)
    }

    fn mint_coins_validate(&self, to: &Address, coin: &PrefixedCoin) -> Result<(), HostError> {
        self.check_move(None, Some(to), coin).map(drop)
    }

    fn burn_coins_validate(
        &self,
        from: &Address,
        coin: &PrefixedCoin,
        memo: &Memo,
    ) -> Result<(), HostError> {
        check_memo(memo)?;
        self.check_move(Some(from), None, coin).map(drop)
    }

    fn denom_hash_string(&self, denom: &PrefixedDenom) -> Option<String> {
        Some(ibc_denom(denom))
    }
}

fn check_memo(memo: &Memo) -> Result<(), HostError> {
    let len = memo.as_ref().len();
    if len > MAX_MEMO_BYTES {
        return Err(HostError::invalid_state(format!(
            "memo of {len} bytes, more than {MAX_MEMO_BYTES}"
        )));
    }
    Ok(())
}

impl TokenTransferExecutionContext for Transfers<'_> {
    fn escrow_coins_execute(
        &mut self,
        from: &Address,
        port: &PortId,
        channel: &ChannelId,
        coin: &PrefixedCoin,
        _memo: &Memo,
    ) -> Result<(), HostError> {
        self.apply_move(Some(from), Some(&escrow_address(port, channel)), coin)
    }

    fn unescrow_coins_execute(
        &mut self,
        to: &Address,
        port: &PortId,
        channel: &ChannelId,
        coin: &PrefixedCoin,
    ) -> Result<(), HostError> {
        self.apply_move(Some(&escrow_address(port, channel)), Some(to), coin)
    }

    fn mint_coins_execute(&mut self, to: &Address, coin: &PrefixedCoin) -> Result<(), HostError> {
        self.apply_move(None, Some(to), coin)
    }

    fn burn_coins_execute(
        &mut self,
        from: &Address,
        coin: &PrefixedCoin,
        _memo: &Memo,
    ) -> Result<(), HostError> {
        self.apply_move(Some(from), None, coin)
    }
}

/// The acknowledgement of a packet received: `{"result":"AQ=="}` (ibc-go's and ibc-rs's).
pub fn success_ack() -> Vec<u8> {
    format!(
        r#"{{"result":"{}"}}"#,
        ibc_app_transfer::types::ACK_SUCCESS_B64
    )
    .into_bytes()
}

/// The error acknowledgement every refused packet gets (ibc-go's deterministic text; the reason goes in
/// the `ics20_receive_error` event instead).
pub const ERROR_ACK: &[u8] =
    br#"{"error":"ABCI code: 1: error handling packet: see events for details"}"#;

/// ibc-rs writes an error acknowledgement by pasting the error's text between quotes, unescaped: a
/// reason containing `"` (a receiver or denomination from the packet) makes JSON the sender's chain cannot
/// parse, and the tokens stay escrowed for ever. Any acknowledgement but success becomes [`ERROR_ACK`]
/// (ibc-go never puts reasons in acknowledgements either: they would have to be identical on every
/// node and version); the reason is kept as an event.
fn canonical_ack(ack: Acknowledgement, extras: &mut ModuleExtras) -> Acknowledgement {
    if ack.as_bytes() == success_ack() {
        return ack;
    }
    extras.events.push(ModuleEvent {
        kind: "ics20_receive_error".to_owned(),
        attributes: vec![("acknowledgement", String::from_utf8_lossy(ack.as_bytes())).into()],
    });
    Acknowledgement::try_from(ERROR_ACK.to_vec()).unwrap_or(ack)
}

fn app_error(e: TokenTransferError) -> ChannelError {
    ChannelError::AppSpecific {
        description: e.to_string(),
    }
}

/// ibc-rs's ICS-20 callbacks over this ledger.
impl Module for Transfers<'_> {
    fn on_chan_open_init_validate(
        &self,
        order: Order,
        connection_hops: &[ConnectionId],
        port_id: &PortId,
        channel_id: &ChannelId,
        counterparty: &Counterparty,
        version: &Version,
    ) -> Result<Version, ChannelError> {
        ics20::on_chan_open_init_validate(
            self,
            order,
            connection_hops,
            port_id,
            channel_id,
            counterparty,
            version,
        )
        .map_err(app_error)?;
        Ok(Version::new(ibc_app_transfer::types::VERSION.to_owned()))
    }

    fn on_chan_open_init_execute(
        &mut self,
        order: Order,
        connection_hops: &[ConnectionId],
        port_id: &PortId,
        channel_id: &ChannelId,
        counterparty: &Counterparty,
        version: &Version,
    ) -> Result<(ModuleExtras, Version), ChannelError> {
        ics20::on_chan_open_init_execute(
            self,
            order,
            connection_hops,
            port_id,
            channel_id,
            counterparty,
            version,
        )
        .map_err(app_error)
    }

    fn on_chan_open_try_validate(
        &self,
        order: Order,
        connection_hops: &[ConnectionId],
        port_id: &PortId,
        channel_id: &ChannelId,
        counterparty: &Counterparty,
        counterparty_version: &Version,
    ) -> Result<Version, ChannelError> {
        ics20::on_chan_open_try_validate(
            self,
            order,
            connection_hops,
            port_id,
            channel_id,
            counterparty,
            counterparty_version,
        )
        .map_err(app_error)?;
        Ok(Version::new(ibc_app_transfer::types::VERSION.to_owned()))
    }

    fn on_chan_open_try_execute(
        &mut self,
        order: Order,
        connection_hops: &[ConnectionId],
        port_id: &PortId,
        channel_id: &ChannelId,
        counterparty: &Counterparty,
        counterparty_version: &Version,
    ) -> Result<(ModuleExtras, Version), ChannelError> {
        ics20::on_chan_open_try_execute(
            self,
            order,
            connection_hops,
            port_id,
            channel_id,
            counterparty,
            counterparty_version,
        )
        .map_err(app_error)
    }

    fn on_chan_open_ack_validate(
        &self,
        port_id: &PortId,
        channel_id: &ChannelId,
        counterparty_version: &Version,
    ) -> Result<(), ChannelError> {
        ics20::on_chan_open_ack_validate(self, port_id, channel_id, counterparty_version)
            .map_err(app_error)
    }

    fn on_chan_open_ack_execute(
        &mut self,
        port_id: &PortId,
        channel_id: &ChannelId,
        counterparty_version: &Version,
    ) -> Result<ModuleExtras, ChannelError> {
        ics20::on_chan_open_ack_execute(self, port_id, channel_id, counterparty_version)
            .map_err(app_error)
    }

    fn on_chan_open_confirm_validate(
        &self,
        port_id: &PortId,
        channel_id: &ChannelId,
    ) -> Result<(), ChannelError> {
        ics20::on_chan_open_confirm_validate(self, port_id, channel_id).map_err(app_error)
    }

    fn on_chan_open_confirm_execute(
        &mut self,
        port_id: &PortId,
        channel_id: &ChannelId,
    ) -> Result<ModuleExtras, ChannelError> {
        ics20::on_chan_open_confirm_execute(self, port_id, channel_id).map_err(app_error)
    }

    fn on_chan_close_init_validate(
        &self,
        port_id: &PortId,
        channel_id: &ChannelId,
    ) -> Result<(), ChannelError> {
        ics20::on_chan_close_init_validate(self, port_id, channel_id).map_err(app_error)
    }

    fn on_chan_close_init_execute(
        &mut self,
        port_id: &PortId,
        channel_id: &ChannelId,
    ) -> Result<ModuleExtras, ChannelError> {
        ics20::on_chan_close_init_execute(self, port_id, channel_id).map_err(app_error)
    }

    fn on_chan_close_confirm_validate(
        &self,
        port_id: &PortId,
        channel_id: &ChannelId,
    ) -> Result<(), ChannelError> {
        ics20::on_chan_close_confirm_validate(self, port_id, channel_id).map_err(app_error)
    }

    fn on_chan_close_confirm_execute(
        &mut self,
        port_id: &PortId,
        channel_id: &ChannelId,
    ) -> Result<ModuleExtras, ChannelError> {
        ics20::on_chan_close_confirm_execute(self, port_id, channel_id).map_err(app_error)
    }

    fn on_recv_packet_execute(
        &mut self,
        packet: &Packet,
        _relayer: &Signer,
    ) -> (ModuleExtras, Option<Acknowledgement>) {
        let (mut extras, ack) = ics20::on_recv_packet_execute(self, packet);
        let ack = canonical_ack(ack, &mut extras);
        (extras, Some(ack))
    }

    fn on_acknowledgement_packet_validate(
        &self,
        packet: &Packet,
        acknowledgement: &Acknowledgement,
        relayer: &Signer,
    ) -> Result<(), ChannelError> {
        ics20::on_acknowledgement_packet_validate(self, packet, acknowledgement, relayer)
            .map_err(app_error)
    }

    fn on_acknowledgement_packet_execute(
        &mut self,
        packet: &Packet,
        acknowledgement: &Acknowledgement,
        relayer: &Signer,
    ) -> (ModuleExtras, Result<(), ChannelError>) {
        let (extras, result) =
            ics20::on_acknowledgement_packet_execute(self, packet, acknowledgement, relayer);
        (extras, result.map_err(app_error))
    }

    fn on_timeout_packet_validate(
        &self,
        packet: &Packet,
        relayer: &Signer,
    ) -> Result<(), ChannelError> {
        ics20::on_timeout_packet_validate(self, packet, relayer).map_err(app_error)
    }

    fn on_timeout_packet_execute(
        &mut self,
        packet: &Packet,
        relayer: &Signer,
    ) -> (ModuleExtras, Result<(), ChannelError>) {
        let (extras, result) = ics20::on_timeout_packet_execute(self, packet, relayer);
        (extras, result.map_err(app_error))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;

    use super::*;

    struct Empty;

    impl StateView for Empty {
        fn get(&self, _: &[u8]) -> Result<Option<Vec<u8>>, basalt_state::StateError> {
            Ok(None)
        }
    }

    fn coin(denom: &str, amount: &str) -> PrefixedCoin {
        PrefixedCoin {
            denom: denom.parse().unwrap(),
            amount: amount.parse().unwrap(),
        }
    }

    #[test]
    fn incoming_tokens_beyond_the_bounds_are_refused_before_anything_is_kept() {
        let mut ledger = Transfers::new(&Empty);
        let who = Address([1; 20]);
        let long = format!("transfer/channel-0/{}", "d".repeat(MAX_DENOM_BYTES));
        assert!(ledger.mint_coins_validate(&who, &coin(&long, "1")).is_err());
        let huge = format!("{}0", u128::MAX);
        assert!(ledger
            .mint_coins_validate(&who, &coin("transfer/channel-0/x", &huge))
            .is_err());
        // The native token only moves: ICS-20 never mints or burns it.
        assert!(ledger
            .mint_coins_execute(&who, &coin(NATIVE_DENOM, "1"))
            .is_err());
        let fine = coin("transfer/channel-0/x", &u128::MAX.to_string());
        ledger.mint_coins_execute(&who, &fine).unwrap();
        // A second credit would overflow: refused, the balance stays.
        assert!(ledger
            .mint_coins_validate(&who, &coin("transfer/channel-0/x", "1"))
            .is_err());
        let (moves, writes) = ledger.into_effects();
        assert!(moves.is_empty());
        assert_eq!(
            BTreeMap::from_iter(writes),
            BTreeMap::from([(
                voucher_key(&who, "transfer/channel-0/x"),
                Some(u128::MAX.to_be_bytes().to_vec())
            )])
        );
    }

    #[test]
    fn a_voucher_is_named_as_ibc_go_names_it() {
        // ibc-go: "ibc/" + upper-case hex SHA-256 of the full trace; the value below is ATOM's
        // well-known voucher on Osmosis channel-0 (transfer/channel-0/uatom).
        let denom: PrefixedDenom = "transfer/channel-0/uatom".parse().unwrap();
        assert_eq!(
            ibc_denom(&denom),
            "ibc/27394FB092D2ECCD56123C74F36E4C1F926001CEADA9CA97EA622B25F41E5EB2"
        );
    }

    #[test]
    fn escrow_accounts_differ_per_channel_and_are_stable() {
        let port = PortId::transfer();
        let a = escrow_address(&port, &ChannelId::new(0));
        assert_ne!(a, escrow_address(&port, &ChannelId::new(1)));
        assert_eq!(a, escrow_address(&port, &ChannelId::new(0)));
    }
}
