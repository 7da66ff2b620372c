//! `basalt show-node-id` and `basalt show-validator`.

use super::CliError;
use crate::home::Home;
use crate::keys::{pub_key_json, NodeKey, PrivValidatorKey};

/// The node id (libp2p PeerId, base58 "12D3KooW…") of the home's node key.
pub fn node_id(home: &Home) -> Result<String, CliError> {
    Ok(NodeKey::load(&home.node_key_file())?.peer_id().to_base58())
}

/// The validator's `pub_key` object as one line of JSON (`{"type":"tendermint/PubKeyEd25519","value":…}`).
pub fn validator_pub_key(home: &Home) -> Result<String, CliError> {
    let key = PrivValidatorKey::load(&home.priv_validator_key_file())?;
    Ok(pub_key_json(&key.public_key()).to_string())
}

/// Runs `basalt show-node-id`.
pub fn run_node_id(home: &Home) -> Result<(), CliError> {
    println!("{}", node_id(home)?);
    Ok(())
}

/// Runs `basalt show-validator`.
pub fn run_validator(home: &Home) -> Result<(), CliError> {
    println!("{}", validator_pub_key(home)?);
    Ok(())
}
