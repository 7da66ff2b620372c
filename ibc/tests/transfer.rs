//! ICS-20 between two Basalt chains (issue 16): after the connection and channel handshakes, a
//! relayer's account on chain a sends native tokens to an account on chain b (escrowed on a, a voucher
//! minted on b), the acknowledgement comes back, and the voucher travels home (burned on b, unescrowed
//! on a). Both chains run the real application; every packet, receipt and acknowledgement is proved.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use basalt_consensus::types::{Address, PrivateKey};
use basalt_ibc::relay;
use basalt_ibc::transfer::{escrow_address, voucher_key, NATIVE_DENOM};
use basalt_state::app::CODE_OK;
use basalt_state::bank::TxCode;
use common::relay::{
    acknowledge, attribute, channel, ok, open_connection, open_transfer_channel, recv, time_out,
    two_chains_with_clients,
};
use common::{relayer, signer, stranger, Chain, BALANCE, FEE};
use ibc_app_transfer::types::msgs::transfer::MsgTransfer;
use ibc_app_transfer::types::packet::PacketData;
use ibc_app_transfer::types::{Memo, PrefixedCoin};
use ibc_core::channel::types::channel::State as ChannelState;
use ibc_core::channel::types::packet::Packet;
use ibc_core::channel::types::timeout::{TimeoutHeight, TimeoutTimestamp};
use ibc_core::client::types::Height as IbcHeight;
use ibc_core::host::types::identifiers::{ChannelId, PortId, Sequence};
use ibc_core::host::types::path::{AckPath, CommitmentPath, ReceiptPath};
use ibc_core::primitives::ToProto;

fn address(key: &PrivateKey) -> Address {
    key.public_key().address()
}

fn voucher(chain: &Chain, owner: &Address, denom: &str) -> u128 {
    chain
        .app
        .store()
        .get(&voucher_key(owner, denom), chain.latest())
        .unwrap()
        .map_or(0, |v| u128::from_be_bytes(v.try_into().unwrap()))
}

fn native(chain: &Chain, owner: &Address) -> u128 {
    chain.app.account(owner, chain.latest()).unwrap().balance
}

/// `from` (on `chain`) sends `amount` of `denom` over channel-0 to `to` (on the other chain).
fn transfer(chain: &Chain, from: &Address, to: &Address, denom: &str, amount: u128) -> MsgTransfer {
    MsgTransfer {
        port_id_on_a: PortId::transfer(),
        chan_id_on_a: ChannelId::new(0),
        packet_data: PacketData {
            token: PrefixedCoin {
                denom: denom.parse().unwrap(),
                amount: amount.to_string().parse().unwrap(),
            },
            sender: signer(from),
            receiver: signer(to),
            memo: Memo::from(""),
        },
        timeout_height_on_b: TimeoutHeight::At(IbcHeight::new(0, chain.latest() + 1_000).unwrap()),
        timeout_timestamp_on_b: TimeoutTimestamp::Never,
    }
}

/// The packet a transfer sent, read from the chain's `send_packet` event as a relayer reads it, and
/// checked against the transfer (its data is the packet data's JSON, as ibc-rs builds it).
fn sent_packet(msg: &MsgTransfer, sequence: u64, result: &basalt_state::app::TxResult) -> Packet {
    let event = result
        .events
        .iter()
        .find(|e| e.kind == "send_packet")
        .expect("a send_packet event");
    let packet = relay::packet_from_event(event).unwrap();
    assert_eq!(packet.seq_on_a, Sequence::from(sequence));
    assert_eq!(packet.data, serde_json::to_vec(&msg.packet_data).unwrap());
    assert_eq!(packet.timeout_height_on_b, msg.timeout_height_on_b);
    assert_eq!(packet.timeout_timestamp_on_b, msg.timeout_timestamp_on_b);
    assert_eq!(
        (&packet.port_id_on_b, &packet.chan_id_on_b),
        (&PortId::transfer(), &ChannelId::new(0))
    );
    packet
}

/// The acknowledgement `result` (a `RecvPacket`) wrote, from its `write_acknowledgement` event.
fn written_ack(result: &basalt_state::app::TxResult) -> Vec<u8> {
    let event = result
        .events
        .iter()
        .find(|e| e.kind == "write_acknowledgement")
        .expect("a write_acknowledgement event");
    relay::ack_from_event(event).unwrap()
}

fn channel_ready() -> (Chain, Chain) {
    let (mut a, mut b) = two_chains_with_clients();
    let conn = open_connection(&mut a, &mut b);
    open_transfer_channel(&mut a, &mut b, &conn);
    let (port, chan) = (PortId::transfer(), ChannelId::new(0));
    assert_eq!(*channel(&a, &port, &chan).state(), ChannelState::Open);
    assert_eq!(*channel(&b, &port, &chan).state(), ChannelState::Open);
    (a, b)
}

#[test]
fn native_tokens_go_to_the_other_chain_as_vouchers_and_come_back() {
    let (mut a, mut b) = channel_ready();
    let (sender, receiver) = (address(&relayer()), address(&stranger()));
    let escrow = escrow_address(&PortId::transfer(), &ChannelId::new(0));
    let sender_before = native(&a, &sender);

    // a → b: 700 native tokens escrowed on a.
    let msg = transfer(&a, &sender, &receiver, NATIVE_DENOM, 700);
    let sent = ok(a.submit(&relayer(), vec![msg.clone().to_any()]));
    let packet = sent_packet(&msg, 1, &sent);
    assert_eq!(native(&a, &sender), sender_before - 700 - FEE);
    // Golden vector: the stored packet commitment is ibc-go's `CommitPacket` — SHA-256 of timeout
    // timestamp, revision number and height (big-endian u64s) and SHA-256 of the data — computed
    // independently (Python hashlib) for this packet (data below, timeout height 0-1012, no time).
    assert_eq!(
        hex::encode(&packet.data),
        "7b2264656e6f6d223a22626173616c74222c22616d6f756e74223a22373030222c2273656e646572223a22\
         45413039443735323134303742303443373341454534384243353945424632384136454137374538222c22\
         7265636569766572223a2234323041384139303042334645423738423533434145374238433742314641\
         413143353236373044222c226d656d6f223a22227d"
    );
    let seq1 = Sequence::from(1);
    let (port, chan) = (PortId::transfer(), ChannelId::new(0));
    assert_eq!(
        hex::encode(
            a.get(CommitmentPath::new(&port, &chan, seq1).into())
                .unwrap()
        ),
        "64c06beb98a13339a1c6e5e5840af154b045e80d6e8952115c14aa1291acd8f8"
    );
    assert_eq!(native(&a, &escrow), 700);

    // b receives it: a voucher of the traced denomination is minted for the receiver.
    let received = ok(recv(&mut b, &mut a, &packet));
    let ack = written_ack(&received);
    assert_eq!(ack, br#"{"result":"AQ=="}"#);
    // Golden vectors: the acknowledgement commitment is SHA-256 of the acknowledgement (Python
    // hashlib), the receipt the single byte 1 (ibc-go's).
    assert_eq!(
        hex::encode(b.get(AckPath::new(&port, &chan, seq1).into()).unwrap()),
        "08f7557ed51826fe18d84512bf24ec75001edbaf2123a477df72a0a9f3640a7c"
    );
    assert_eq!(
        b.get(ReceiptPath::new(&port, &chan, seq1).into()),
        Some(vec![1])
    );
    let traced = format!("transfer/channel-0/{NATIVE_DENOM}");
    assert_eq!(voucher(&b, &receiver, &traced), 700);
    assert_eq!(native(&b, &receiver), BALANCE, "b's own token untouched");

    // The acknowledgement returns to a: the packet commitment is cleared, the escrow stays.
    ok(acknowledge(&mut a, &mut b, &packet, ack));
    assert_eq!(native(&a, &escrow), 700);

    // b → a: 300 of the voucher go home (burned on b, unescrowed on a).
    let back = transfer(&b, &receiver, &sender, &traced, 300);
    let sent = ok(b.submit(&stranger(), vec![back.clone().to_any()]));
    let packet = sent_packet(&back, 1, &sent);
    assert_eq!(voucher(&b, &receiver, &traced), 400);
    let sender_mid = native(&a, &sender);
    let received = ok(recv(&mut a, &mut b, &packet));
    assert_eq!(written_ack(&received), br#"{"result":"AQ=="}"#);
    assert_eq!(native(&a, &escrow), 400);
    // The relayer is also the receiver here: it got 300 and paid one fee for the RecvPacket.
    assert_eq!(native(&a, &sender), sender_mid + 300 - FEE);

    // The same packet again is refused (its receipt exists) and changes nothing but the fee.
    let again = recv(&mut a, &mut b, &packet);
    assert_ne!(again.code, CODE_OK);
    assert_eq!(native(&a, &escrow), 400);
}

#[test]
fn a_transfer_not_signed_by_its_sender_or_beyond_the_balance_fails_and_pays_only_its_fee() {
    let (mut a, _b) = channel_ready();
    let escrow = escrow_address(&PortId::transfer(), &ChannelId::new(0));
    let (relayer_addr, stranger_addr) = (address(&relayer()), address(&stranger()));

    // The relayer signs a transfer naming the stranger as sender: ibc-rs would escrow the stranger's
    // tokens; Basalt refuses it.
    let stolen = transfer(&a, &stranger_addr, &relayer_addr, NATIVE_DENOM, 10);
    let r = a.submit(&relayer(), vec![stolen.to_any()]);
    assert_eq!(r.code, TxCode::MessageFailed.as_u32());
    assert!(
        r.log.contains("sender is not the transaction's signer"),
        "{}",
        r.log
    );
    assert_eq!(native(&a, &stranger_addr), BALANCE);

    // More than the sender holds.
    let before = native(&a, &stranger_addr);
    let greedy = transfer(&a, &stranger_addr, &relayer_addr, NATIVE_DENOM, BALANCE);
    let r = a.submit(&stranger(), vec![greedy.to_any()]);
    assert_eq!(r.code, TxCode::MessageFailed.as_u32(), "{}", r.log);
    assert_eq!(native(&a, &stranger_addr), before - FEE);
    assert_eq!(native(&a, &escrow), 0);
}

#[test]
fn a_packet_that_times_out_is_refunded_and_can_no_longer_be_received() {
    let (mut a, mut b) = channel_ready();
    let (sender, receiver) = (address(&relayer()), address(&stranger()));
    let escrow = escrow_address(&PortId::transfer(), &ChannelId::new(0));
    let mut msg = transfer(&a, &sender, &receiver, NATIVE_DENOM, 500);
    // Times out once b passes its next height.
    msg.timeout_height_on_b = TimeoutHeight::At(IbcHeight::new(0, b.latest() + 1).unwrap());
    let sent = ok(a.submit(&relayer(), vec![msg.clone().to_any()]));
    let packet = sent_packet(&msg, 1, &sent);
    assert_eq!(native(&a, &escrow), 500);
    b.block(vec![]);
    b.block(vec![]);

    // Too late for b: refused, no voucher.
    let late = recv(&mut b, &mut a, &packet);
    assert_ne!(late.code, CODE_OK);
    assert_eq!(voucher(&b, &receiver, "transfer/channel-0/basalt"), 0);

    // The timeout, proved by the receipt's absence on b, refunds the sender on a.
    let before = native(&a, &sender);
    let r = ok(time_out(&mut a, &mut b, &packet));
    assert_eq!(attribute(&r, "timeout_packet", "packet_sequence"), "1");
    assert_eq!(native(&a, &escrow), 0);
    assert_eq!(native(&a, &sender), before + 500 - FEE);

    // A second timeout of the same packet is a no-op (ibc-go's rule: a relayer's batch is not lost to
    // a race): no event, no second refund, only its fee.
    let before = native(&a, &sender);
    let again = ok(time_out(&mut a, &mut b, &packet));
    assert_no_packet_events(&again);
    assert_eq!(native(&a, &escrow), 0);
    assert_eq!(native(&a, &sender), before - FEE);
}

#[test]
fn an_error_acknowledgement_refunds_the_sender() {
    let (mut a, mut b) = channel_ready();
    let sender = address(&relayer());
    let escrow = escrow_address(&PortId::transfer(), &ChannelId::new(0));
    let mut msg = transfer(&a, &sender, &sender, NATIVE_DENOM, 250);
    // Also a time limit (far off), carried through the send_packet event to the relayer.
    msg.timeout_timestamp_on_b = TimeoutTimestamp::At(
        ibc_core::primitives::Timestamp::from_nanoseconds(1_800_000_000_000_000_000),
    );
    // Not an account on b: b acknowledges with an error and keeps nothing.
    msg.packet_data.receiver = ibc_core::primitives::Signer::from("cosmos1notbasalt".to_owned());
    let sent = ok(a.submit(&relayer(), vec![msg.clone().to_any()]));
    let packet = sent_packet(&msg, 1, &sent);
    let before = native(&a, &sender);
    let received = ok(recv(&mut b, &mut a, &packet));
    // ibc-go's deterministic error acknowledgement (ibc-rs's own would be invalid JSON here: its reason
    // quotes the receiver unescaped, and a sender's chain could never process it).
    let ack = written_ack(&received);
    assert_eq!(ack, basalt_ibc::transfer::ERROR_ACK);
    assert!(
        attribute(&received, "ics20_receive_error", "acknowledgement").contains("cosmos1notbasalt")
    );
    assert_eq!(native(&a, &escrow), 250);
    ok(acknowledge(&mut a, &mut b, &packet, ack.clone()));
    assert_eq!(native(&a, &escrow), 0);
    assert_eq!(native(&a, &sender), before + 250 - FEE);
    // The acknowledgement again: a no-op, no second refund.
    let again = ok(acknowledge(&mut a, &mut b, &packet, ack));
    assert_no_packet_events(&again);
    assert_eq!(native(&a, &sender), before + 250 - 2 * FEE);
}

/// The boundaries, as ICS-04 defines them: a packet whose timeout height is `h` can be received in a
/// block below `h` and not in block `h`; one whose timeout time is `t` can be received in a block whose
/// time is below `t` and not in one at `t`.
#[test]
fn a_packet_is_received_before_its_timeout_and_not_at_it() {
    let (mut a, mut b) = channel_ready();
    let (sender, receiver) = (address(&relayer()), address(&stranger()));
    let traced = format!("transfer/channel-0/{NATIVE_DENOM}");
    // The receiving transaction goes into b's next block, b.latest() + 1, whose time the in-process
    // chains set to 1,700,000,000,000 ms + 1,000 ms per height.
    let block_ns = |height: u64| (1_700_000_000_000 + height * 1_000) * 1_000_000;
    type Timeout = fn(u64, &dyn Fn(u64) -> u64) -> (TimeoutHeight, TimeoutTimestamp);
    let cases: [(Timeout, u128, bool); 4] = [
        (
            |next, _| {
                (
                    TimeoutHeight::At(IbcHeight::new(0, next).unwrap()),
                    TimeoutTimestamp::Never,
                )
            },
            1,
            false,
        ),
        (
            |next, _| {
                (
                    TimeoutHeight::At(IbcHeight::new(0, next + 1).unwrap()),
                    TimeoutTimestamp::Never,
                )
            },
            2,
            true,
        ),
        (
            |next, ns| {
                let at = ibc_core::primitives::Timestamp::from_nanoseconds(ns(next));
                (TimeoutHeight::Never, TimeoutTimestamp::At(at))
            },
            4,
            false,
        ),
        (
            |next, ns| {
                let at = ibc_core::primitives::Timestamp::from_nanoseconds(ns(next) + 1);
                (TimeoutHeight::Never, TimeoutTimestamp::At(at))
            },
            8,
            true,
        ),
    ];
    for (sequence, (timeout, amount, arrives)) in (1u64..).zip(cases) {
        let mut msg = transfer(&a, &sender, &receiver, NATIVE_DENOM, amount);
        (msg.timeout_height_on_b, msg.timeout_timestamp_on_b) = timeout(b.latest() + 1, &block_ns);
        let sent = ok(a.submit(&relayer(), vec![msg.clone().to_any()]));
        let packet = sent_packet(&msg, sequence, &sent);
        let r = recv(&mut b, &mut a, &packet);
        assert_eq!(r.code == CODE_OK, arrives, "packet {sequence}: {}", r.log);
    }
    assert_eq!(voucher(&b, &receiver, &traced), 2 + 8);
}

/// No packet event in `result` (a no-op packet message): only the client update and the fee.
fn assert_no_packet_events(result: &basalt_state::app::TxResult) {
    let kinds: Vec<&str> = result.events.iter().map(|e| e.kind.as_str()).collect();
    assert!(
        !kinds
            .iter()
            .any(|k| k.contains("packet") || k.contains("fungible_token")),
        "{kinds:?}"
    );
}

/// A packet ends once: acknowledged or timed out, never both. A timeout of an acknowledged packet (even
/// after its timeout passed, with the proof of its receipt offered as "absence") and an acknowledgement
/// of a timed-out packet (the destination never wrote one; a proof of its absence is offered) take no
/// effect: no refund, the escrow and vouchers stay, no packet event. As in ibc-go they are no-ops, not
/// failures (ibc-rs 0.57 emitted `timeout_packet` for the first and refunded nothing — or failed it when
/// the escrow happened to be empty).
#[test]
fn an_acknowledged_packet_cannot_time_out_and_a_timed_out_one_cannot_be_acknowledged() {
    use common::first_client;
    use common::relay::{me, update};
    let (mut a, mut b) = channel_ready();
    let (sender, receiver) = (address(&relayer()), address(&stranger()));
    let escrow = escrow_address(&PortId::transfer(), &ChannelId::new(0));
    let (port, chan) = (PortId::transfer(), ChannelId::new(0));

    // Packet 1: received in time, acknowledged; then its timeout height passes.
    let mut msg = transfer(&a, &sender, &receiver, NATIVE_DENOM, 300);
    msg.timeout_height_on_b = TimeoutHeight::At(IbcHeight::new(0, b.latest() + 4).unwrap());
    let sent = ok(a.submit(&relayer(), vec![msg.clone().to_any()]));
    let packet = sent_packet(&msg, 1, &sent);
    let received = ok(recv(&mut b, &mut a, &packet));
    ok(acknowledge(&mut a, &mut b, &packet, written_ack(&received)));
    for _ in 0..4 {
        b.block(vec![]);
    }
    let (receipt, proven) = b.proven(ReceiptPath::new(&port, &chan, Sequence::from(1)).into());
    assert!(receipt.is_some());
    let before = native(&a, &sender);
    let timeout = relay::timeout(packet.clone(), proven, &me());
    let late = ok(a.submit(&relayer(), vec![update(&a, &first_client(), &b), timeout]));
    assert_no_packet_events(&late);
    assert_eq!(native(&a, &sender), before - FEE, "no refund");
    assert_eq!(
        native(&a, &escrow),
        300,
        "the escrow still backs b's vouchers"
    );
    assert_eq!(voucher(&b, &receiver, "transfer/channel-0/basalt"), 300);

    // Packet 2: never received, timed out and refunded; then an acknowledgement of it is offered.
    let mut msg = transfer(&a, &sender, &receiver, NATIVE_DENOM, 200);
    msg.timeout_height_on_b = TimeoutHeight::At(IbcHeight::new(0, b.latest() + 1).unwrap());
    let sent = ok(a.submit(&relayer(), vec![msg.clone().to_any()]));
    let packet = sent_packet(&msg, 2, &sent);
    b.block(vec![]);
    ok(time_out(&mut a, &mut b, &packet));
    assert_eq!(native(&a, &escrow), 300);
    b.block(vec![]);
    let (ack, proven) = b.proven(AckPath::new(&port, &chan, Sequence::from(2)).into());
    assert!(ack.is_none());
    let before = native(&a, &sender);
    let success = br#"{"result":"AQ=="}"#.to_vec();
    let acknowledgement = relay::acknowledge(packet, success, proven, &me()).unwrap();
    let late = ok(a.submit(
        &relayer(),
        vec![update(&a, &first_client(), &b), acknowledgement],
    ));
    assert_no_packet_events(&late);
    assert_eq!(native(&a, &sender), before - FEE);
    assert_eq!(native(&a, &escrow), 300);
    assert_eq!(voucher(&b, &receiver, "transfer/channel-0/basalt"), 300);
}
