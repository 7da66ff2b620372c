//! In-process Basalt chains for IBC tests: `BankApp` with `IbcModule` over a real state store, blocks
//! whose headers name a fixture validator set and come with commits signed by it (so a counterparty's
//! light client verifies them), and what a relayer reads from a chain: light blocks and proofs.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod relay;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use basalt_consensus::light::fixture::{commit, seed_of, set};
use basalt_consensus::light::{LightBlock, TrustLevel};
use basalt_consensus::types::{Address, ChainId, PrivateKey, Tx, ValidatorSet};
use basalt_consensus::Height;
use basalt_ibc::client::{ClientState, ConsensusState};
use basalt_ibc::commitment::{path_key, proof_bytes};
use basalt_ibc::host::HostParams;
use basalt_ibc::module::IbcModule;
use basalt_ibc::tx::{IbcMessage, IbcTxBody};
use basalt_state::app::testkit::ChainBuilder;
use basalt_state::app::{
    results_hash, Application, BankApp, BankAppConfig, ProposalVerdict, TxResult,
};
use basalt_state::bank::Account;
use basalt_state::{StateStore, StoreConfig};
use ibc_core::client::types::msgs::MsgCreateClient;
use ibc_core::client::types::Height as IbcHeight;
use ibc_core::commitment_types::commitment::CommitmentProofBytes;
use ibc_core::host::types::identifiers::ClientId;
use ibc_core::host::types::path::Path;
use ibc_core::primitives::proto::Any;
use ibc_core::primitives::{Signer, ToProto};

pub const BALANCE: u128 = 1_000_000;
pub const FEE: u128 = 50;
pub const GAS: u64 = 5_000_000;
pub const PROPOSER: Address = Address([9; 20]);

/// The relayer's key (funded on every chain).
pub fn relayer() -> PrivateKey {
    PrivateKey::from_seed(&[200; 32])
}

/// Another funded account.
pub fn stranger() -> PrivateKey {
    PrivateKey::from_seed(&[201; 32])
}

/// The validators of every test chain.
pub fn vals() -> ValidatorSet {
    set(&[(1, 10), (2, 10), (3, 10)])
}

/// `address` as an IBC message signer.
pub fn signer(address: &Address) -> Signer {
    Signer::from(address.to_string())
}

/// An IBC transaction of `messages` signed by `key` for `chain_id`.
pub fn ibc_tx(chain_id: &ChainId, key: &PrivateKey, nonce: u64, messages: Vec<Any>) -> Tx {
    let signed = IbcTxBody {
        chain_id: chain_id.clone(),
        from: key.public_key(),
        nonce,
        fee: FEE,
        gas_limit: GAS,
        messages: messages.into_iter().map(IbcMessage::from).collect(),
    }
    .sign(key);
    Tx::new(signed.to_bytes()).unwrap()
}

/// A Basalt chain in process.
pub struct Chain {
    _dir: tempfile::TempDir,
    pub id: ChainId,
    pub app: BankApp,
    blocks: ChainBuilder,
    /// Every block's header with its signed commit, by height.
    light: BTreeMap<u64, LightBlock>,
    nonces: BTreeMap<Address, u64>,
}

impl Chain {
    /// A chain with the relayer and the stranger funded, at height 0 (no block yet).
    pub fn new(id: &str) -> Chain {
        let id = ChainId::new(id).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(StateStore::open(dir.path(), StoreConfig::default()).unwrap());
        let mut app = BankApp::new(
            store,
            BankAppConfig {
                chain_id: id.clone(),
            },
        )
        .with_module(Arc::new(IbcModule::new(HostParams {
            max_expected_time_per_block: Duration::from_secs(1),
            max_client_trusting_period: Duration::from_secs(48 * 3_600),
        })));
        let accounts: Vec<_> = [relayer(), stranger()]
            .iter()
            .map(|k| serde_json::json!({"address": k.public_key().address().to_hex_upper(), "balance": BALANCE.to_string()}))
            .collect();
        app.init_chain(1, &serde_json::json!({ "accounts": accounts }))
            .unwrap();
        Chain {
            _dir: dir,
            blocks: ChainBuilder::new(id.clone(), 1, PROPOSER).with_validators_hash(vals().hash()),
            id,
            app,
            light: BTreeMap::new(),
            nonces: BTreeMap::new(),
        }
    }

    /// Executes and commits the next block of `txs` (each must pass `check_tx`); its header is
    /// signed by the chain's validators.
    pub fn block(&mut self, txs: Vec<Tx>) -> Vec<TxResult> {
        for tx in &txs {
            let checked = self.app.check_tx(tx);
            assert!(checked.is_ok(), "{checked:?}");
        }
        let block = self
            .blocks
            .block(self.app.info().unwrap().last_app_hash, txs)
            .unwrap();
        assert_eq!(self.app.process_proposal(&block), ProposalVerdict::Accept);
        let r = self.app.finalize_block(&block).unwrap();
        self.app.commit(ChainBuilder::commit_bytes(&block)).unwrap();
        self.blocks
            .set_last_results_hash(results_hash(&r.tx_results));
        let vals = vals();
        let signers: Vec<u8> = (0..vals.len()).map(|i| seed_of(&vals, i)).collect();
        let header = block.header().clone();
        self.light.insert(
            header.height.0,
            LightBlock {
                commit: commit(&self.id, &header, &vals, &signers),
                header,
                validators: vals,
            },
        );
        r.tx_results
    }

    /// A block of one IBC transaction of `messages` signed by `key` (its next nonce); the result.
    pub fn submit(&mut self, key: &PrivateKey, messages: Vec<Any>) -> TxResult {
        let address = key.public_key().address();
        let nonce = self.nonces.entry(address).or_insert(0);
        let tx = ibc_tx(&self.id, key, *nonce, messages);
        *nonce += 1;
        self.block(vec![tx]).remove(0)
    }

    /// The latest block height (= the latest state version).
    pub fn latest(&self) -> u64 {
        self.app.info().unwrap().last_height.unwrap()
    }

    /// The value at an ICS-24 path in the latest state.
    pub fn get(&self, path: Path) -> Option<Vec<u8>> {
        self.app
            .store()
            .get(&path_key(&path), self.latest())
            .unwrap()
    }

    /// An account in the latest state.
    pub fn account(&self, key: &PrivateKey) -> Account {
        self.app
            .account(&key.public_key().address(), self.latest())
            .unwrap()
    }

    /// The light block of `height`.
    pub fn light_block(&self, height: u64) -> LightBlock {
        self.light[&height].clone()
    }

    /// What a relayer proves: the value at `path` in the state *before* the latest block, with its
    /// proof, and the proof height — the latest block, whose header's app hash is that state's root.
    pub fn prove(&self, path: Path) -> (Option<Vec<u8>>, CommitmentProofBytes, IbcHeight) {
        let (value, proven) = self.proven(path);
        (value, proven.proof, proven.height)
    }

    /// [`Chain::prove`] as the relay library takes it.
    pub fn proven(&self, path: Path) -> (Option<Vec<u8>>, basalt_ibc::relay::Proven) {
        let proof_height = self.latest();
        let (value, proof) = self
            .app
            .store()
            .get_with_proof(&path_key(&path), proof_height - 1)
            .unwrap();
        let proven = basalt_ibc::relay::Proven {
            proof: proof_bytes(proof),
            height: self.ibc_height(proof_height),
        };
        (value, proven)
    }

    /// `height` of this chain as IBC names it.
    pub fn ibc_height(&self, height: u64) -> IbcHeight {
        basalt_ibc::client::wire::ibc_height(&self.id, Height(height)).unwrap()
    }

    /// A client of this chain at `height`: `MsgCreateClient` signed by `by`.
    pub fn create_client_msg(&self, height: u64, by: &Address) -> Any {
        let latest = self.light_block(height);
        let client = ClientState::new(
            self.id.clone(),
            latest.header.height,
            TrustLevel::ONE_THIRD,
            24 * 3_600_000,
            10_000,
        )
        .unwrap();
        MsgCreateClient {
            client_state: client.to_any(),
            consensus_state: ConsensusState::of(&latest.header).to_any(),
            signer: signer(by),
        }
        .to_any()
    }

    /// Updates `client_id` (a client of this chain, trusting `trusted`) to `target`.
    pub fn update_client_msg(
        &self,
        client_id: &ClientId,
        trusted: u64,
        target: u64,
        by: &Address,
    ) -> Any {
        update_client_msg(client_id, self.light_block(target), trusted, by)
    }
}

/// Updates `client_id` to `block`, trusting its consensus state of height `trusted`.
pub fn update_client_msg(
    client_id: &ClientId,
    block: LightBlock,
    trusted: u64,
    by: &Address,
) -> Any {
    basalt_ibc::relay::update_client(client_id, block, trusted, vals(), by)
}

/// The first client a chain creates.
pub fn first_client() -> ClientId {
    basalt_ibc::client::ics02::client_type().build_client_id(0)
}
