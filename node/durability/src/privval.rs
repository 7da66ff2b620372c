//! The validator signer with double-sign protection backed by `data/priv_validator_state.json`.
//!
//! Same contract as CometBFT's `FilePV` (and as the simulation's in-memory model in
//! `tests/src/sim/privval.rs`): the last signed (height, round, step) and its sign bytes are written
//! durably (file and directory fsynced) *before* a signature is returned; the `*_alongside` variants hand
//! it meanwhile to a closure for the caller's own writes that must also precede sending (the WAL), which
//! run while the state file is being written. A request for an earlier
//! (height, round, step) is refused; for the same one the stored signature is returned if the sign bytes
//! are identical (a re-send after a crash) and the request is refused otherwise; a later one is signed.
//!
//! File format (CometBFT's): `{"height":"12","round":0,"step":2,"signature":"<base64>","signbytes":"<HEX>"}`
//! with step 0 = nothing signed, 1 = propose, 2 = prevote, 3 = precommit; `signature` and `signbytes` are
//! omitted when nothing was signed.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use basalt_consensus::types::{
    Address, ChainId, PrivateKey, Proposal, PublicKey, Signature, SignedProposal, SignedVote, Vote,
};
use basalt_consensus::VoteType;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::fsutil::{self, FsError};

/// Largest state file accepted (a state holds one vote's or proposal's sign bytes: well under 1 KiB).
pub const MAX_STATE_FILE_BYTES: u64 = 64 * 1024;

/// Step of a signed message, ordered as CometBFT's `stepPropose < stepPrevote < stepPrecommit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SignStep {
    /// A proposal.
    Propose = 1,
    /// A prevote.
    Prevote = 2,
    /// A precommit.
    Precommit = 3,
}

impl SignStep {
    /// The step of a vote type.
    pub fn of_vote(vote_type: VoteType) -> SignStep {
        match vote_type {
            VoteType::Prevote => SignStep::Prevote,
            VoteType::Precommit => SignStep::Precommit,
        }
    }
}

/// A (height, round, step) position; `step` 0 means nothing was signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hrs {
    /// Height.
    pub height: u64,
    /// Round.
    pub round: u32,
    /// Step (0 none, 1 propose, 2 prevote, 3 precommit).
    pub step: u8,
}

impl fmt::Display for Hrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "height {} round {} step {}",
            self.height, self.round, self.step
        )
    }
}

/// The last signature made: what `priv_validator_state.json` holds.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct LastSignState {
    /// Height of the last signature (0: nothing signed).
    pub height: u64,
    /// Its round.
    pub round: u32,
    /// Its step (0 none, 1 propose, 2 prevote, 3 precommit).
    pub step: u8,
    /// The signature, if any.
    pub signature: Option<Signature>,
    /// Its sign bytes (empty if none).
    pub sign_bytes: Vec<u8>,
}

impl LastSignState {
    /// The (height, round, step) position.
    pub fn hrs(&self) -> Hrs {
        Hrs {
            height: self.height,
            round: self.round,
            step: self.step,
        }
    }
}

impl Hrs {
    /// The position of a vote.
    pub fn of_vote(vote: &Vote) -> Hrs {
        Hrs {
            height: vote.height.0,
            round: vote.round.0,
            step: SignStep::of_vote(vote.vote_type) as u8,
        }
    }

    /// The position of a proposal.
    pub fn of_proposal(proposal: &Proposal) -> Hrs {
        Hrs {
            height: proposal.height().0,
            round: proposal.round().0,
            step: SignStep::Propose as u8,
        }
    }
}

/// Why the double-sign rule refuses a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignRefusal {
    /// The request is for an earlier (height, round, step) than already signed.
    #[error("refusing to sign {requested}: already signed {last}")]
    Regression {
        /// Requested position.
        requested: Hrs,
        /// Last signed position.
        last: Hrs,
    },
    /// Same (height, round, step) as the last signature but different sign bytes: a double sign.
    #[error("refusing to double-sign at {hrs}: different sign bytes already signed there")]
    Conflict {
        /// The position.
        hrs: Hrs,
    },
}

/// What the double-sign rule allows for a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignPermit {
    /// The very request last signed: release the same signature again (a WAL replay re-sends it).
    Repeat(Signature),
    /// A later position: sign it, and make [`LastSignState::after_signing`] durable before release.
    New,
}

impl LastSignState {
    /// The double-sign rule, pure (no key, no disk; the simulation runs this same code): a position
    /// before the last signed one is refused; the last one itself is allowed again only with identical
    /// sign bytes (its signature is returned); any later one may be signed.
    pub fn permit(&self, hrs: Hrs, sign_bytes: &[u8]) -> Result<SignPermit, SignRefusal> {
        let last = self.hrs();
        if hrs < last {
            return Err(SignRefusal::Regression {
                requested: hrs,
                last,
            });
        }
        if hrs == last {
            return match self.signature {
                Some(signature) if self.sign_bytes == sign_bytes => {
                    Ok(SignPermit::Repeat(signature))
                }
                _ => Err(SignRefusal::Conflict { hrs }),
            };
        }
        Ok(SignPermit::New)
    }

    /// The state after signing `sign_bytes` at `hrs` with `signature`.
    pub fn after_signing(hrs: Hrs, signature: Signature, sign_bytes: Vec<u8>) -> LastSignState {
        LastSignState {
            height: hrs.height,
            round: hrs.round,
            step: hrs.step,
            signature: Some(signature),
            sign_bytes,
        }
    }
}

/// Why the signer refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum PrivvalError {
    /// The double-sign rule refused the request.
    #[error(transparent)]
    Refused(#[from] SignRefusal),
    /// The state file does not exist (`basalt init` writes it).
    #[error(
        "signer state file {path} does not exist (run `basalt init`, or restore it from a backup)"
    )]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// The state file could not be read.
    #[error("cannot read signer state file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The state file's content is invalid.
    #[error("signer state file {path} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: StateFileError,
    },
    /// Persisting the new state failed; the signature was not released.
    #[error("cannot persist signer state {path} (signature withheld): {source}")]
    Persist {
        /// The file.
        path: PathBuf,
        /// The file-system error.
        #[source]
        source: FsError,
    },
    /// The state file's directory could not be created.
    #[error("cannot create directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// A validator's key with its durable last-signed state.
pub struct PrivValidator {
    key: PrivateKey,
    state: LastSignState,
    state_path: PathBuf,
    /// False after a failed write of `state`: the next request rewrites it before anything is released.
    durable: bool,
    last_fsync: Option<Duration>,
}

impl fmt::Debug for PrivValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivValidator")
            .field("address", &self.address())
            .field("state", &self.state)
            .field("state_path", &self.state_path)
            .finish_non_exhaustive()
    }
}

impl PrivValidator {
    /// Loads the signer's state from `state_path`. A missing file is an error (`basalt init` writes it;
    /// starting from nothing could double-sign), as is a corrupt one; both name the file.
    pub fn load(key: PrivateKey, state_path: &Path) -> Result<PrivValidator, PrivvalError> {
        let state = read_state(state_path)?;
        Ok(PrivValidator {
            key,
            state,
            state_path: state_path.to_path_buf(),
            durable: true,
            last_fsync: None,
        })
    }

    /// The validator's address.
    pub fn address(&self) -> Address {
        self.key.public_key().address()
    }

    /// The validator's public key.
    pub fn public_key(&self) -> PublicKey {
        self.key.public_key()
    }

    /// The last signature made (as persisted).
    pub fn last_signed(&self) -> &LastSignState {
        &self.state
    }

    /// How long the last durable state write took (for the metrics); `None` before the first.
    pub fn last_fsync(&self) -> Option<Duration> {
        self.last_fsync
    }

    /// The state file.
    pub fn state_path(&self) -> &Path {
        &self.state_path
    }

    /// Signs a vote unless that could double-sign; the new state is durable before the signature returns.
    pub fn sign_vote(
        &mut self,
        chain_id: &ChainId,
        vote: Vote,
    ) -> Result<SignedVote, PrivvalError> {
        self.sign_vote_alongside(chain_id, vote, |_| ())
            .map(|(signed, ())| signed)
    }

    /// [`PrivValidator::sign_vote`], running `alongside` with the signed vote on this thread while the
    /// new state is written durably on another, and returning once both are done.
    ///
    /// Why: a validator must make both its signer state and its own signed message durable before the
    /// message leaves the process (the WAL write in `alongside`). The two writes are independent, so doing
    /// them at the same time halves the fsync latency on the path of every vote. On a signer error
    /// `alongside` does not run.
    pub fn sign_vote_alongside<R>(
        &mut self,
        chain_id: &ChainId,
        vote: Vote,
        alongside: impl FnOnce(&SignedVote) -> R,
    ) -> Result<(SignedVote, R), PrivvalError> {
        let hrs = Hrs::of_vote(&vote);
        let sign_bytes = vote.sign_bytes(chain_id);
        self.sign_alongside(hrs, sign_bytes, move |signature| {
            let signed = SignedVote { vote, signature };
            let result = alongside(&signed);
            (signed, result)
        })
    }

    /// Signs a proposal unless that could double-sign; the new state is durable before the signature
    /// returns.
    pub fn sign_proposal(
        &mut self,
        chain_id: &ChainId,
        proposal: Proposal,
    ) -> Result<SignedProposal, PrivvalError> {
        self.sign_proposal_alongside(chain_id, proposal, |_| ())
            .map(|(signed, ())| signed)
    }

    /// [`PrivValidator::sign_proposal`] with `alongside` run as in
    /// [`PrivValidator::sign_vote_alongside`].
    pub fn sign_proposal_alongside<R>(
        &mut self,
        chain_id: &ChainId,
        proposal: Proposal,
        alongside: impl FnOnce(&SignedProposal) -> R,
    ) -> Result<(SignedProposal, R), PrivvalError> {
        let hrs = Hrs::of_proposal(&proposal);
        let sign_bytes = proposal.sign_bytes(chain_id);
        self.sign_alongside(hrs, sign_bytes, move |signature| {
            let signed = SignedProposal {
                proposal,
                signature,
            };
            let result = alongside(&signed);
            (signed, result)
        })
    }

    /// The double-sign rule (see the module docs), then persistence concurrently with `alongside`, then
    /// release. `alongside` runs exactly once when this returns `Ok`, never when it returns `Err`.
    fn sign_alongside<T>(
        &mut self,
        hrs: Hrs,
        sign_bytes: Vec<u8>,
        alongside: impl FnOnce(Signature) -> T,
    ) -> Result<T, PrivvalError> {
        if !self.durable {
            // A previous write failed after the state moved on in memory: make it durable first, so
            // nothing signed from it (including an identical re-request) leaves before it is on disk.
            self.persist()?;
        }
        if let SignPermit::Repeat(signature) = self.state.permit(hrs, &sign_bytes)? {
            return Ok(alongside(signature));
        }
        let signature = self.key.sign(&sign_bytes);
        // The state moves on in memory even if the write fails: a conflicting request at this position
        // must be refused from now on, since the signature may already be on disk.
        self.state = LastSignState::after_signing(hrs, signature, sign_bytes);
        self.durable = false;
        let bytes = encode_state(&self.state);
        let path = self.state_path.as_path();
        let write = || {
            let started = Instant::now();
            fsutil::write_durably(path, &bytes)?;
            crate::failpoint::hit("sign.after_privval");
            Ok::<_, FsError>(started.elapsed())
        };
        let (written, result) = std::thread::scope(|scope| {
            match std::thread::Builder::new()
                .name("privval-write".into())
                .spawn_scoped(scope, write)
            {
                Ok(writer) => {
                    let result = alongside(signature);
                    let written = writer
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                    (written, result)
                }
                // No thread to be had (resource limits): the same two writes, one after the other.
                Err(_) => {
                    let written = write();
                    (written, alongside(signature))
                }
            }
        });
        let took = written.map_err(|source| PrivvalError::Persist {
            path: self.state_path.clone(),
            source,
        })?;
        self.last_fsync = Some(took);
        self.durable = true;
        Ok(result)
    }

    fn persist(&mut self) -> Result<(), PrivvalError> {
        let bytes = encode_state(&self.state);
        let started = Instant::now();
        fsutil::write_durably(&self.state_path, &bytes).map_err(|source| {
            PrivvalError::Persist {
                path: self.state_path.clone(),
                source,
            }
        })?;
        self.last_fsync = Some(started.elapsed());
        self.durable = true;
        Ok(())
    }
}

/// `basalt unsafe-reset-all`: overwrites the state with "nothing signed" (height 0). Only safe when the
/// whole chain is being restarted from scratch.
pub fn reset_state(state_path: &Path) -> Result<(), PrivvalError> {
    create_parent(state_path)?;
    write_state(state_path, &LastSignState::default())
}

/// `basalt init`: writes the "nothing signed" state if the file does not exist yet. An existing file is
/// left untouched (re-running `init` must never erase double-sign protection; use [`reset_state`]).
pub fn write_initial_state(state_path: &Path) -> Result<(), PrivvalError> {
    if state_path.exists() {
        return Ok(());
    }
    create_parent(state_path)?;
    write_state(state_path, &LastSignState::default())
}

fn create_parent(state_path: &Path) -> Result<(), PrivvalError> {
    let dir = fsutil::parent_dir(state_path);
    std::fs::create_dir_all(dir).map_err(|source| PrivvalError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })
}

fn write_state(state_path: &Path, state: &LastSignState) -> Result<(), PrivvalError> {
    fsutil::write_durably(state_path, &encode_state(state)).map_err(|source| {
        PrivvalError::Persist {
            path: state_path.to_path_buf(),
            source,
        }
    })
}

/// The JSON shape of the file (CometBFT's: height as a string, hex upper-case sign bytes).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    height: String,
    round: u32,
    step: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signature: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signbytes: Option<String>,
}

/// Serialises a state as the file's JSON.
pub fn encode_state(state: &LastSignState) -> Vec<u8> {
    let file = StateFile {
        height: state.height.to_string(),
        round: state.round,
        step: state.step,
        signature: state
            .signature
            .map(|s| base64::engine::general_purpose::STANDARD.encode(s.to_bytes())),
        signbytes: (!state.sign_bytes.is_empty()).then(|| hex::encode_upper(&state.sign_bytes)),
    };
    // Serialising a struct of strings and integers cannot fail; fall back to an empty object rather
    // than panic (load would then refuse it, naming the file).
    serde_json::to_vec_pretty(&file).unwrap_or_default()
}

/// Why a signer state file's content is not a state (the field at fault is named).
#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    /// Not the JSON of a state file.
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// `height` is not a decimal unsigned integer.
    #[error("field `height` {value:?} is not an unsigned integer: {source}")]
    Height {
        /// The field's text.
        value: String,
        /// Why it does not parse.
        source: std::num::ParseIntError,
    },
    /// `step` is none of the four steps.
    #[error("field `step` is {0} (expected 0 none, 1 propose, 2 prevote or 3 precommit)")]
    Step(u8),
    /// `signature` is not base64.
    #[error("field `signature` is not base64: {0}")]
    SignatureBase64(#[from] base64::DecodeError),
    /// `signature` does not have 64 bytes.
    #[error("field `signature` has {0} bytes (expected 64)")]
    SignatureLength(usize),
    /// `signature` is not a well-formed ed25519 signature.
    #[error("field `signature` is not a valid signature: {0}")]
    Signature(#[from] basalt_consensus::types::CryptoError),
    /// `signbytes` is not hex.
    #[error("field `signbytes` is not hex: {0}")]
    SignBytesHex(#[from] hex::FromHexError),
    /// A signature is recorded for step 0 (nothing signed).
    #[error("field `signature` is present but `step` is 0 (nothing signed)")]
    SignatureWithoutStep,
    /// Larger than any state (not read).
    #[error("{0} bytes, more than the {MAX_STATE_FILE_BYTES} a state can take")]
    TooLarge(u64),
}

/// Parses the file's JSON; the error names the field at fault.
pub fn decode_state(bytes: &[u8]) -> Result<LastSignState, StateFileError> {
    let file: StateFile = serde_json::from_slice(bytes)?;
    let height = file
        .height
        .parse::<u64>()
        .map_err(|source| StateFileError::Height {
            value: file.height.clone(),
            source,
        })?;
    if file.step > SignStep::Precommit as u8 {
        return Err(StateFileError::Step(file.step));
    }
    let signature = match &file.signature {
        None => None,
        Some(b64) => {
            let raw = base64::engine::general_purpose::STANDARD.decode(b64)?;
            let raw: [u8; 64] = raw
                .as_slice()
                .try_into()
                .map_err(|_| StateFileError::SignatureLength(raw.len()))?;
            Some(Signature::from_bytes(&raw)?)
        }
    };
    let sign_bytes = match &file.signbytes {
        None => Vec::new(),
        Some(h) => hex::decode(h)?,
    };
    if file.step == 0 && signature.is_some() {
        return Err(StateFileError::SignatureWithoutStep);
    }
    Ok(LastSignState {
        height,
        round: file.round,
        step: file.step,
        signature,
        sign_bytes,
    })
}

fn read_state(path: &Path) -> Result<LastSignState, PrivvalError> {
    let read_err = |source: io::Error| {
        if source.kind() == io::ErrorKind::NotFound {
            PrivvalError::Missing {
                path: path.to_path_buf(),
            }
        } else {
            PrivvalError::Read {
                path: path.to_path_buf(),
                source,
            }
        }
    };
    let len = std::fs::metadata(path).map_err(read_err)?.len();
    if len > MAX_STATE_FILE_BYTES {
        return Err(PrivvalError::Corrupt {
            path: path.to_path_buf(),
            reason: StateFileError::TooLarge(len),
        });
    }
    let bytes = std::fs::read(path).map_err(read_err)?;
    decode_state(&bytes).map_err(|reason| PrivvalError::Corrupt {
        path: path.to_path_buf(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::unwrap_used)]
    fn each_bad_field_of_a_state_file_is_its_own_error() {
        let signature = base64::engine::general_purpose::STANDARD
            .encode(PrivateKey::from_seed(&[1; 32]).sign(b"vote").to_bytes());
        let decode = |json: String| decode_state(json.as_bytes());
        assert!(matches!(
            decode("not json".into()),
            Err(StateFileError::Json(_))
        ));
        assert!(matches!(
            decode(r#"{"height": "x", "round": 0, "step": 0}"#.into()),
            Err(StateFileError::Height { value, .. }) if value == "x"
        ));
        assert!(matches!(
            decode(r#"{"height": "1", "round": 0, "step": 9}"#.into()),
            Err(StateFileError::Step(9))
        ));
        assert!(matches!(
            decode(r#"{"height": "1", "round": 0, "step": 2, "signature": "!!"}"#.into()),
            Err(StateFileError::SignatureBase64(_))
        ));
        assert!(matches!(
            decode(r#"{"height": "1", "round": 0, "step": 2, "signature": "AAAA"}"#.into()),
            Err(StateFileError::SignatureLength(3))
        ));
        assert!(matches!(
            decode(format!(
                r#"{{"height": "1", "round": 0, "step": 2, "signature": "{signature}", "signbytes": "zz"}}"#
            )),
            Err(StateFileError::SignBytesHex(_))
        ));
        assert!(matches!(
            decode(format!(
                r#"{{"height": "1", "round": 0, "step": 0, "signature": "{signature}"}}"#
            )),
            Err(StateFileError::SignatureWithoutStep)
        ));
        let state = decode(format!(
            r#"{{"height": "7", "round": 1, "step": 2, "signature": "{signature}", "signbytes": "AB"}}"#
        ))
        .unwrap();
        assert_eq!((state.height, state.round, state.step), (7, 1, 2));
        assert_eq!(decode_state(&encode_state(&state)).unwrap(), state);
    }

    fn hrs(height: u64, round: u32, step: SignStep) -> Hrs {
        Hrs {
            height,
            round,
            step: step as u8,
        }
    }

    #[test]
    fn the_double_sign_rule_orders_positions_and_repeats_only_identical_requests() {
        let key = PrivateKey::from_seed(&[7; 32]);
        let fresh = LastSignState::default();
        let at = hrs(5, 1, SignStep::Prevote);
        assert_eq!(fresh.permit(at, b"a"), Ok(SignPermit::New));
        let signature = key.sign(b"a");
        let state = LastSignState::after_signing(at, signature, b"a".to_vec());
        assert_eq!(state.hrs(), at);
        // The same request again: the same signature (a WAL replay re-sends it).
        assert_eq!(state.permit(at, b"a"), Ok(SignPermit::Repeat(signature)));
        // The same position, other bytes: a double sign.
        assert_eq!(
            state.permit(at, b"b"),
            Err(SignRefusal::Conflict { hrs: at })
        );
        // Earlier positions, by step, round and height: refused.
        for earlier in [
            hrs(5, 1, SignStep::Propose),
            hrs(5, 0, SignStep::Precommit),
            hrs(4, 9, SignStep::Precommit),
        ] {
            assert_eq!(
                state.permit(earlier, b"a"),
                Err(SignRefusal::Regression {
                    requested: earlier,
                    last: at
                })
            );
        }
        // Later positions may be signed.
        for later in [
            hrs(5, 1, SignStep::Precommit),
            hrs(5, 2, SignStep::Propose),
            hrs(6, 0, SignStep::Propose),
        ] {
            assert_eq!(state.permit(later, b"z"), Ok(SignPermit::New));
        }
    }
}
