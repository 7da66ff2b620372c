//! A listen address that cannot be bound is refused with the operating system's reason (libp2p's
//! transport error prints nothing itself; an operator saw "listening on 127.0.0.1:36856: " and no why).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use basalt_p2p::{NetworkConfig, NetworkError};

#[tokio::test]
async fn a_taken_port_is_refused_with_the_reason() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let result = basalt_p2p::spawn(NetworkConfig {
        node_key_seed: [3; 32],
        listen_addr: addr,
        ..NetworkConfig::default()
    })
    .await;
    match result {
        Err(NetworkError::Listen { addr: a, reason }) => {
            assert_eq!(a, addr);
            assert!(
                reason.to_lowercase().contains("in use"),
                "no reason given: {reason:?}"
            );
        }
        Err(other) => panic!("another error: {other}"),
        Ok(_) => panic!("bound a port that is taken"),
    }
}
