//! Chain types: hashes, keys, blocks, votes, proposals, commits, validator sets and evidence, with their
//! canonical encoding. Every type with an invariant is built only through a checking constructor (also used
//! by its decoder), so downstream code never re-checks or forgets to.

pub mod block;
pub mod chain_id;
pub mod commit;
pub mod crypto;
pub mod encoding;
pub mod evidence;
pub mod hash;
mod key_cache;
pub mod proposal;
pub mod validator;
pub mod vote;

pub use block::{tx_hash, Block, BlockError, BlockId, Header, Tx, TxError};
pub use chain_id::{ChainId, ChainIdError};
pub use commit::{Commit, CommitError, CommitSig};
pub use crypto::{verify_batch, Address, CryptoError, PrivateKey, PublicKey, Signature};
pub use encoding::{decode, encode, DecodeError};
pub use evidence::{DuplicateVoteEvidence, EvidenceError};
pub use hash::{merkle_proof, merkle_root, Hash, MerkleProof};
pub use proposal::{Proposal, ProposalError, ProposalMessage, SignedProposal, VerifiedProposal};
pub use validator::{
    Validator, ValidatorChange, ValidatorSet, ValidatorSetError, ValidatorUpdateError,
};
pub use vote::{SignedVote, VerifiedVote, Vote, VoteError};
