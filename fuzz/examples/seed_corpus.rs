//! Writes the seed corpus of every fuzz target: real encodings of each message kind, so the fuzzer starts
//! from valid inputs (deep in the decoders) rather than from random bytes. Run from `fuzz/`:
//! `cargo run --example seed_corpus`; the files are committed under `corpus/<target>/`.

use std::fs;
use std::path::Path;

use basalt_consensus::engine::ConsensusMessage;
use basalt_consensus::types::{
    encode, Block, BlockId, ChainId, Commit, CommitSig, DuplicateVoteEvidence, Hash, Header,
    PrivateKey, Proposal, ProposalMessage, SignedProposal, SignedVote, Tx, ValidatorSet, Vote,
};
use basalt_consensus::{Height, Round, ValidatorIndex, VoteType};
use basalt_bank_tx::{TransferBody, TRANSFER_GAS};
use basalt_p2p::{SyncRequest, SyncResponse};

type Failure = Box<dyn std::error::Error>;

fn main() -> Result<(), Failure> {
    let keys: Vec<PrivateKey> = (1..=4u8).map(|i| PrivateKey::from_seed(&[i; 32])).collect();
    let set = ValidatorSet::new(keys.iter().map(|k| (k.public_key(), 10)).collect())?;
    // The set orders validators by its own rule: sign with the key at each index.
    let ordered: Vec<&PrivateKey> = set
        .validators()
        .iter()
        .filter_map(|v| keys.iter().find(|k| k.public_key() == v.public_key))
        .collect();
    let chain = ChainId::new("basalt-fuzz")?;
    let sign_vote = |index: usize, vote_type, height, round, block_id| SignedVote {
        vote: Vote {
            vote_type,
            height: Height(height),
            round: Round(round),
            block_id,
            validator_index: ValidatorIndex(index as u32),
        },
        signature: ordered[index].sign(
            &Vote {
                vote_type,
                height: Height(height),
                round: Round(round),
                block_id,
                validator_index: ValidatorIndex(index as u32),
            }
            .sign_bytes(&chain),
        ),
    };
    let block_id = |b: u8| BlockId {
        hash: Hash([b; 32]),
    };

    // A block at height 2 with transactions, evidence and the last commit.
    let a = sign_vote(1, VoteType::Prevote, 1, 0, Some(block_id(1)));
    let b = sign_vote(1, VoteType::Prevote, 1, 0, Some(block_id(2)));
    let evidence = DuplicateVoteEvidence::new(a, b)?;
    let last_commit = Commit {
        height: Height(1),
        round: Round(0),
        block_id: block_id(1),
        signatures: (0..4)
            .map(
                |i| match sign_vote(i, VoteType::Precommit, 1, 0, Some(block_id(1))) {
                    v if i < 3 => CommitSig::ForBlock(v.signature),
                    v => CommitSig::Nil(v.signature),
                },
            )
            .collect(),
    };
    let txs = vec![Tx::new(b"transfer".to_vec())?, Tx::new(vec![0xAB; 100])?];
    let (data_hash, evidence_hash, last_commit_hash) =
        Block::content_hashes(&txs, std::slice::from_ref(&evidence), Some(&last_commit));
    let header = Header {
        chain_id: chain.clone(),
        height: Height(2),
        time_ms: 1_700_000_000_000,
        last_block_id: Some(block_id(1)),
        last_commit_hash,
        data_hash,
        validators_hash: set.hash(),
        next_validators_hash: set.hash(),
        app_hash: Hash([3; 32]),
        last_results_hash: Hash([4; 32]),
        evidence_hash,
        proposer_address: ordered[0].public_key().address(),
    };
    let block = Block::new(
        header,
        txs.clone(),
        vec![evidence.clone()],
        Some(last_commit),
    )?;
    let proposal = Proposal::new(Height(2), Round(1), Some(Round(0)), block.id())?;
    let proposal_message = ProposalMessage {
        signed: SignedProposal {
            signature: ordered[0].sign(&proposal.sign_bytes(&chain)),
            proposal,
        },
        block: block.clone(),
    };
    let commit = Commit {
        height: Height(2),
        round: Round(1),
        block_id: block.id(),
        signatures: (0..4)
            .map(|i| {
                CommitSig::ForBlock(
                    sign_vote(i, VoteType::Precommit, 2, 1, Some(block.id())).signature,
                )
            })
            .collect(),
    };

    let messages = [
        ConsensusMessage::Vote(sign_vote(0, VoteType::Prevote, 2, 0, Some(block.id()))),
        ConsensusMessage::Vote(sign_vote(2, VoteType::Precommit, 2, 3, None)),
        ConsensusMessage::Proposal(proposal_message.clone()),
        ConsensusMessage::Decision {
            block: block.clone(),
            commit: commit.clone(),
        },
        ConsensusMessage::Status {
            height: Height(2),
            round: Round(1),
        },
        ConsensusMessage::Evidence(evidence.clone()),
    ];
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let write = |target: &str, name: &str, bytes: &[u8]| -> Result<(), Failure> {
        let dir = root.join(target);
        fs::create_dir_all(&dir)?;
        fs::write(dir.join(name), bytes)?;
        Ok(())
    };
    for (i, message) in messages.iter().enumerate() {
        let bytes = message.to_bytes();
        write("consensus_message", &format!("message-{i}"), &bytes)?;
        let mut enveloped = (i as u64).to_le_bytes().to_vec();
        enveloped.extend_from_slice(&bytes);
        write("gossip_envelope", &format!("consensus-{i}"), &enveloped)?;
    }
    write(
        "evidence",
        "evidence",
        &ConsensusMessage::Evidence(evidence).to_bytes(),
    )?;
    let mut batch = 7u64.to_le_bytes().to_vec();
    batch.extend_from_slice(&encode(&txs));
    write("gossip_envelope", "txs", &batch)?;

    let requests = [
        SyncRequest::Status,
        SyncRequest::Blocks { from: 2, count: 20 },
        SyncRequest::Proposal {
            height: 2,
            round: 1,
        },
    ];
    for (i, request) in requests.iter().enumerate() {
        write(
            "sync_codec",
            &format!("request-{i}"),
            &borsh::to_vec(request)?,
        )?;
    }
    let responses = [
        SyncResponse::Status { base: 1, latest: 2 },
        SyncResponse::Blocks(vec![(block, commit)]),
        SyncResponse::Proposal(Some(proposal_message)),
        SyncResponse::Error("pruned".to_owned()),
    ];
    for (i, response) in responses.iter().enumerate() {
        write(
            "sync_codec",
            &format!("response-{i}"),
            &borsh::to_vec(response)?,
        )?;
    }
    let transfer = TransferBody {
        chain_id: chain.clone(),
        from: keys[0].public_key(),
        to: keys[1].public_key().address(),
        amount: 1_000,
        fee: 10,
        nonce: 7,
        gas_limit: TRANSFER_GAS,
    }
    .sign(&keys[0]);
    write("bank_tx", "transfer", &transfer.to_tx_bytes())?;
    let update = basalt_bank_tx::validator::ValidatorTxBody {
        chain_id: ChainId::new("basalt-1")?,
        from: keys[0].public_key(),
        nonce: 0,
        fee: 10,
        gas_limit: 100_000,
        changes: vec![(keys[1].public_key(), 10)],
    }
    .sign(&keys[0]);
    write("validator_tx", "update", &update.to_bytes())?;
    let requests = [
        r#"{"jsonrpc":"2.0","id":1,"method":"block","params":{"height":"5"}}"#,
        r#"{"jsonrpc":"2.0","id":"a","method":"abci_query","params":["/store/bank/key","0A1B",null,true]}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"broadcast_tx_sync","params":{"tx":"AAECAw=="}}"#,
        r#"{"jsonrpc":"2.0","id":3,"method":"tx","params":{"hash":"3q2+7w==","prove":"false"}}"#,
        r#"{"jsonrpc":"2.0","id":4,"method":"tx_search","params":{"query":"tx.height>=1","page":"1","per_page":"30","order_by":"asc"}}"#,
        r#"height=5&prove=true&data=0x0a1b&hash="abc"&tx=0xdeadbeef"#,
    ];
    for (i, request) in requests.iter().enumerate() {
        write("jsonrpc_params", &format!("request-{i}"), request.as_bytes())?;
    }
    let queries = [
        "tm.event='Tx' AND transfer.sender='5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A'",
        "tx.height>=1 AND tx.height<=10000",
        "tx.hash='0A0B0C0D0E0F101112131415161718191A1B1C1D1E1F20212223242526272829'",
        "tm.event='NewBlockEvents' AND block.height>5",
        "transfer.amount>100 AND transfer.memo CONTAINS 'abc' AND tx.fee_payer EXISTS",
    ];
    for (i, query) in queries.iter().enumerate() {
        write("event_query", &format!("query-{i}"), query.as_bytes())?;
    }
    Ok(())
}
