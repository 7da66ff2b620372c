//! Two Basalt chains open an IBC connection to each other (issue 16): each runs a `99-basalt` client of
//! the other, and a relayer carries the four connection handshake messages with the proofs ibc-rs checks
//! — the counterparty's connection end, its client of us and that client's consensus state of us, each
//! proved against a header the receiving chain's client has verified (and our own header, rebuilt from
//! the block store, must match what the counterparty stored). Both chains execute the real application.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use basalt_state::app::CODE_OK;
use common::relay::{
    client_height, conn_ack, conn_confirm, conn_init, conn_try, connection, ok,
    two_chains_with_clients, update,
};
use common::{first_client, relayer};
use ibc_core::connection::types::State;
use ibc_core::host::types::identifiers::ConnectionId;
use ibc_core::host::types::path::ConnectionPath;
use ibc_core::primitives::ToProto;

#[test]
fn two_chains_open_a_connection_through_the_four_step_handshake() {
    let (mut a, mut b) = two_chains_with_clients();
    let client = first_client(); // each chain's first client is of the other
    let conn = ConnectionId::new(0);

    // 1. Init on a, then the block whose header commits to the state with it.
    ok(a.submit(&relayer(), vec![conn_init(&client)]));
    assert_eq!(*connection(&a, &conn).state(), State::Init);
    a.block(vec![]);

    // 2. Try on b: its client of a is updated to a's latest header, then a's proofs checked against it.
    let try_msg = conn_try(&a, &conn, &client).to_any();
    ok(b.submit(&relayer(), vec![update(&b, &client, &a), try_msg]));
    assert_eq!(*connection(&b, &conn).state(), State::TryOpen);
    b.block(vec![]);

    // 3. Ack on a.
    let ack = conn_ack(&b, &conn, &client);
    ok(a.submit(&relayer(), vec![update(&a, &client, &b), ack]));
    assert_eq!(*connection(&a, &conn).state(), State::Open);
    a.block(vec![]);

    // 4. Confirm on b.
    let confirm = conn_confirm(&a, &conn);
    ok(b.submit(&relayer(), vec![update(&b, &client, &a), confirm]));
    let (on_a, on_b) = (connection(&a, &conn), connection(&b, &conn));
    assert!(on_a.is_open() && on_b.is_open());
    assert_eq!(on_a.counterparty().connection_id(), Some(&conn));
    assert_eq!(on_b.counterparty().connection_id(), Some(&conn));
}

#[test]
fn a_try_with_a_proof_of_another_state_fails_and_stores_nothing() {
    let (mut a, mut b) = two_chains_with_clients();
    let client = first_client();
    let conn = ConnectionId::new(0);
    ok(a.submit(&relayer(), vec![conn_init(&client)]));
    a.block(vec![]);
    let before = client_height(&b, &client);
    // The proof of a's client state in place of the connection's: another key and value.
    let mut try_msg = conn_try(&a, &conn, &client);
    try_msg.proof_conn_end_on_a = try_msg.proof_client_state_of_b_on_a.clone();
    let r = b.submit(&relayer(), vec![update(&b, &client, &a), try_msg.to_any()]);
    assert_ne!(r.code, CODE_OK);
    assert!(
        r.log.contains("message 1") && r.log.contains("verif"),
        "{}",
        r.log
    );
    assert_eq!(b.get(ConnectionPath::new(&conn).into()), None);
    // The update in the same transaction is gone too.
    assert_eq!(client_height(&b, &client), before);
}
