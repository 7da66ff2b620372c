//! The file-backed signer against the simulation's in-memory model, its file format, and its crash cases.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::fs;
use std::path::{Path, PathBuf};

use basalt_consensus::types::{BlockId, ChainId, Hash, PrivateKey, Proposal, Signature, Vote};
use basalt_consensus::{Height, Round, ValidatorIndex, VoteType};
use basalt_durability::privval::{
    reset_state, write_initial_state, LastSignState, PrivValidator, PrivvalError, SignRefusal,
    SignStep,
};
use base64::Engine as _;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};

/// The simulation's model (`tests/src/sim/privval.rs`), copied: `basalt-tests` depends on this crate,
/// so this crate cannot depend on it.
mod model {
    use super::*;

    #[derive(Clone, Debug, PartialEq, Eq, Default)]
    pub struct LastSigned {
        pub hrs: Option<(Height, Round, SignStep)>,
        pub sign_bytes: Vec<u8>,
        pub signature: Option<Signature>,
    }

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum SignError {
        Regression,
        Conflict,
    }

    pub fn sign(
        key: &PrivateKey,
        state: &mut LastSigned,
        hrs: (Height, Round, SignStep),
        sign_bytes: Vec<u8>,
    ) -> Result<Signature, SignError> {
        if let Some(last) = state.hrs {
            if hrs < last {
                return Err(SignError::Regression);
            }
            if hrs == last {
                return match state.signature {
                    Some(signature) if state.sign_bytes == sign_bytes => Ok(signature),
                    _ => Err(SignError::Conflict),
                };
            }
        }
        let signature = key.sign(&sign_bytes);
        *state = LastSigned {
            hrs: Some(hrs),
            sign_bytes,
            signature: Some(signature),
        };
        Ok(signature)
    }
}

fn chain() -> ChainId {
    ChainId::new("basalt-test").unwrap()
}

fn key() -> PrivateKey {
    PrivateKey::from_seed(&[7; 32])
}

fn block(choice: u8) -> Option<BlockId> {
    (choice > 0).then_some(BlockId {
        hash: Hash([choice; 32]),
    })
}

fn vote(vote_type: VoteType, height: u64, round: u32, choice: u8) -> Vote {
    Vote {
        vote_type,
        height: Height(height),
        round: Round(round),
        block_id: block(choice),
        validator_index: ValidatorIndex(0),
    }
}

fn proposal(height: u64, round: u32, choice: u8) -> Proposal {
    let block_id = BlockId {
        hash: Hash([choice; 32]),
    };
    Proposal::new(Height(height), Round(round), None, block_id).unwrap()
}

fn fresh(dir: &Path) -> (PathBuf, PrivValidator) {
    let path = dir.join("data").join("priv_validator_state.json");
    write_initial_state(&path).unwrap();
    let pv = PrivValidator::load(key(), &path).unwrap();
    (path, pv)
}

/// One signing request of the property test.
#[derive(Clone, Debug)]
enum Request {
    Vote {
        vote_type: VoteType,
        height: u64,
        round: u32,
        choice: u8,
    },
    Proposal {
        height: u64,
        round: u32,
        choice: u8,
    },
}

fn request() -> impl Strategy<Value = Request> {
    // Few heights, rounds and blocks, so repeats, conflicts and regressions are all frequent.
    let vote =
        (any::<bool>(), 1u64..4, 0u32..3, 0u8..3).prop_map(|(pre, height, round, choice)| {
            Request::Vote {
                vote_type: if pre {
                    VoteType::Prevote
                } else {
                    VoteType::Precommit
                },
                height,
                round,
                choice,
            }
        });
    let prop = (1u64..4, 0u32..3, 1u8..3).prop_map(|(height, round, choice)| Request::Proposal {
        height,
        round,
        choice,
    });
    prop_oneof![3 => vote, 1 => prop]
}

type Outcome = Result<Signature, &'static str>;

fn real(pv: &mut PrivValidator, request: &Request) -> Outcome {
    let result = match request {
        Request::Vote {
            vote_type,
            height,
            round,
            choice,
        } => pv
            .sign_vote(&chain(), vote(*vote_type, *height, *round, *choice))
            .map(|s| s.signature),
        Request::Proposal {
            height,
            round,
            choice,
        } => pv
            .sign_proposal(&chain(), proposal(*height, *round, *choice))
            .map(|s| s.signature),
    };
    result.map_err(|e| match e {
        PrivvalError::Refused(SignRefusal::Regression { .. }) => "regression",
        PrivvalError::Refused(SignRefusal::Conflict { .. }) => "conflict",
        other => panic!("unexpected error {other}"),
    })
}

fn modelled(state: &mut model::LastSigned, request: &Request) -> Outcome {
    let (hrs, bytes) = match request {
        Request::Vote {
            vote_type,
            height,
            round,
            choice,
        } => {
            let v = vote(*vote_type, *height, *round, *choice);
            let step = match vote_type {
                VoteType::Prevote => SignStep::Prevote,
                VoteType::Precommit => SignStep::Precommit,
            };
            ((v.height, v.round, step), v.sign_bytes(&chain()))
        }
        Request::Proposal {
            height,
            round,
            choice,
        } => {
            let p = proposal(*height, *round, *choice);
            (
                (p.height(), p.round(), SignStep::Propose),
                p.sign_bytes(&chain()),
            )
        }
    };
    model::sign(&key(), state, hrs, bytes).map_err(|e| match e {
        model::SignError::Regression => "regression",
        model::SignError::Conflict => "conflict",
    })
}

fn as_model(state: &LastSignState) -> model::LastSigned {
    if state.step == 0 {
        return model::LastSigned::default();
    }
    let step = match state.step {
        1 => SignStep::Propose,
        2 => SignStep::Prevote,
        _ => SignStep::Precommit,
    };
    model::LastSigned {
        hrs: Some((Height(state.height), Round(state.round), step)),
        sign_bytes: state.sign_bytes.clone(),
        signature: state.signature,
    }
}

#[test]
fn matches_the_simulation_model_with_and_without_reloads() {
    let config = Config {
        cases: 64,
        rng_seed: RngSeed::Fixed(0xBA5A17),
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    runner
        .run(&prop::collection::vec(request(), 1..40), |requests| {
            let dir = tempfile::tempdir().unwrap();
            let (path, mut kept) = fresh(dir.path());
            let mut state = model::LastSigned::default();
            let mut signed = 0;
            for request in &requests {
                let expected = modelled(&mut state, request);
                let got = real(&mut kept, request);
                prop_assert_eq!(&got, &expected, "long-lived signer, request {:?}", request);
                // A signer reloaded from disk holds exactly the model's state...
                let mut reloaded = PrivValidator::load(key(), &path).unwrap();
                prop_assert_eq!(as_model(reloaded.last_signed()), state.clone());
                // ...and decides a repeat of the request as the model does (identical or refused).
                let mut probe = state.clone();
                prop_assert_eq!(real(&mut reloaded, request), modelled(&mut probe, request));
                signed += usize::from(got.is_ok());
            }
            prop_assert!(signed > 0);
            Ok(())
        })
        .unwrap();
}

#[test]
fn file_format_is_cometbft_shaped() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut pv) = fresh(dir.path());
    let initial: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(
        initial,
        serde_json::json!({"height": "0", "round": 0, "step": 0})
    );

    let v = vote(VoteType::Prevote, 12, 1, 1);
    let signed = pv.sign_vote(&chain(), v.clone()).unwrap();
    let file: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(file["height"], "12");
    assert_eq!(file["round"], 1);
    assert_eq!(file["step"], 2);
    let sig = base64::engine::general_purpose::STANDARD
        .decode(file["signature"].as_str().unwrap())
        .unwrap();
    assert_eq!(sig, signed.signature.to_bytes());
    let hex_bytes = file["signbytes"].as_str().unwrap();
    assert_eq!(hex_bytes, hex::encode_upper(v.sign_bytes(&chain())));
    assert_eq!(key().sign(&v.sign_bytes(&chain())), signed.signature);
    assert!(pv.last_fsync().is_some());

    let p = pv.sign_proposal(&chain(), proposal(13, 0, 1)).unwrap();
    assert_eq!(p.signature, key().sign(&p.proposal.sign_bytes(&chain())));
    let file: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(
        (file["height"].as_str(), file["step"].as_u64()),
        (Some("13"), Some(1))
    );
}

#[test]
fn missing_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("priv_validator_state.json");
    let err = PrivValidator::load(key(), &path).unwrap_err();
    assert!(matches!(err, PrivvalError::Missing { .. }), "{err}");
    assert!(
        err.to_string().contains("priv_validator_state.json"),
        "{err}"
    );
}

#[test]
fn corrupt_or_truncated_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut pv) = fresh(dir.path());
    pv.sign_vote(&chain(), vote(VoteType::Precommit, 5, 0, 1))
        .unwrap();
    let good = fs::read(&path).unwrap();
    let mut cases: Vec<Vec<u8>> = (0..good.len() - 1).map(|n| good[..n].to_vec()).collect();
    let text = String::from_utf8(good.clone()).unwrap();
    cases.push(text.replace("\"step\": 3", "\"step\": 9").into_bytes());
    cases.push(text.replace("\"5\"", "\"-5\"").into_bytes());
    cases.push(
        text.replace("\"signbytes\": \"", "\"signbytes\": \"ZZ")
            .into_bytes(),
    );
    cases.push(
        text.replace("\"signature\": \"", "\"signature\": \"!!")
            .into_bytes(),
    );
    cases.push(b"\0\0\0\0".to_vec());
    for (i, bytes) in cases.iter().enumerate() {
        assert_ne!(bytes, &good, "case {i} is not corrupt");
        fs::write(&path, bytes).unwrap();
        let err = PrivValidator::load(key(), &path).unwrap_err();
        assert!(
            matches!(err, PrivvalError::Corrupt { .. }),
            "case {i}: {err}"
        );
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "case {i}: {err}"
        );
    }
}

#[test]
fn crash_after_the_state_write_re_request_gets_the_same_signature() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut pv) = fresh(dir.path());
    let v = vote(VoteType::Prevote, 3, 0, 1);
    // The process dies before the signature is used: only the state file survives.
    let _lost = pv.sign_vote(&chain(), v.clone()).unwrap();
    drop(pv);
    let mut pv = PrivValidator::load(key(), &path).unwrap();
    let again = pv.sign_vote(&chain(), v.clone()).unwrap();
    assert_eq!(again.signature, key().sign(&v.sign_bytes(&chain())));
    let conflicting = pv
        .sign_vote(&chain(), vote(VoteType::Prevote, 3, 0, 2))
        .unwrap_err();
    assert!(
        matches!(
            conflicting,
            PrivvalError::Refused(SignRefusal::Conflict { .. })
        ),
        "{conflicting}"
    );
    let nil = pv
        .sign_vote(&chain(), vote(VoteType::Prevote, 3, 0, 0))
        .unwrap_err();
    assert!(
        matches!(nil, PrivvalError::Refused(SignRefusal::Conflict { .. })),
        "{nil}"
    );
    let earlier = pv.sign_proposal(&chain(), proposal(3, 0, 1)).unwrap_err();
    assert!(
        matches!(
            earlier,
            PrivvalError::Refused(SignRefusal::Regression { .. })
        ),
        "{earlier}"
    );
}

#[test]
fn failed_state_write_withholds_the_signature_until_it_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut pv) = fresh(dir.path());
    let data = path.parent().unwrap().to_path_buf();
    fs::remove_dir_all(&data).unwrap();
    let v = vote(VoteType::Prevote, 4, 0, 1);
    let err = pv.sign_vote(&chain(), v.clone()).unwrap_err();
    assert!(matches!(err, PrivvalError::Persist { .. }), "{err}");
    assert!(
        err.to_string().contains("priv_validator_state.json"),
        "{err}"
    );
    // Still not durable: the identical request must not release the signature either.
    assert!(matches!(
        pv.sign_vote(&chain(), v.clone()).unwrap_err(),
        PrivvalError::Persist { .. }
    ));
    fs::create_dir_all(&data).unwrap();
    // Once the disk works again, a conflicting request is refused (the state moved on)...
    assert!(matches!(
        pv.sign_vote(&chain(), vote(VoteType::Prevote, 4, 0, 2))
            .unwrap_err(),
        PrivvalError::Refused(SignRefusal::Conflict { .. })
    ));
    // ...and the file now holds the pending state, so the identical request gets its signature.
    let reloaded = PrivValidator::load(key(), &path).unwrap();
    assert_eq!(reloaded.last_signed().height, 4);
    let signed = pv.sign_vote(&chain(), v.clone()).unwrap();
    assert_eq!(signed.signature, key().sign(&v.sign_bytes(&chain())));
}

#[test]
fn alongside_runs_with_the_signature_and_only_when_signing_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut pv) = fresh(dir.path());
    let v = vote(VoteType::Prevote, 5, 0, 1);
    let (signed, seen) = pv
        .sign_vote_alongside(&chain(), v.clone(), |signed| signed.signature)
        .unwrap();
    assert_eq!(seen, signed.signature);
    assert_eq!(signed.signature, key().sign(&v.sign_bytes(&chain())));
    // Durable when it returns: a reload sees the new position.
    assert_eq!(
        PrivValidator::load(key(), &path)
            .unwrap()
            .last_signed()
            .height,
        5
    );
    // Refused requests never reach the closure.
    let mut ran = false;
    let err = pv
        .sign_vote_alongside(&chain(), vote(VoteType::Prevote, 5, 0, 2), |_| ran = true)
        .unwrap_err();
    assert!(
        matches!(err, PrivvalError::Refused(SignRefusal::Conflict { .. })),
        "{err}"
    );
    let err = pv
        .sign_proposal_alongside(&chain(), proposal(5, 0, 1), |_| ran = true)
        .unwrap_err();
    assert!(
        matches!(err, PrivvalError::Refused(SignRefusal::Regression { .. })),
        "{err}"
    );
    assert!(!ran);
    // The identical re-request runs it with the same signature (a re-send after a crash).
    let (_, again) = pv
        .sign_vote_alongside(&chain(), v, |signed| signed.signature)
        .unwrap();
    assert_eq!(again, signed.signature);
    let (signed, seen) = pv
        .sign_proposal_alongside(&chain(), proposal(6, 0, 1), |signed| signed.signature)
        .unwrap();
    assert_eq!(seen, signed.signature);
    assert_eq!(
        PrivValidator::load(key(), &path)
            .unwrap()
            .last_signed()
            .height,
        6
    );
}

#[test]
fn alongside_result_is_withheld_when_the_state_write_fails() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut pv) = fresh(dir.path());
    fs::remove_dir_all(path.parent().unwrap()).unwrap();
    let err = pv
        .sign_vote_alongside(&chain(), vote(VoteType::Prevote, 7, 0, 1), |_| ())
        .unwrap_err();
    assert!(matches!(err, PrivvalError::Persist { .. }), "{err}");
}

#[test]
fn init_never_overwrites_and_reset_does() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut pv) = fresh(dir.path());
    pv.sign_vote(&chain(), vote(VoteType::Precommit, 9, 2, 1))
        .unwrap();
    write_initial_state(&path).unwrap();
    assert_eq!(
        PrivValidator::load(key(), &path)
            .unwrap()
            .last_signed()
            .height,
        9
    );
    reset_state(&path).unwrap();
    assert_eq!(
        PrivValidator::load(key(), &path).unwrap().last_signed(),
        &LastSignState::default()
    );
}

#[test]
fn reads_a_cometbft_written_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("priv_validator_state.json");
    let v = vote(VoteType::Precommit, 12, 0, 1);
    let bytes = v.sign_bytes(&chain());
    let sig = key().sign(&bytes);
    let json = format!(
        "{{\n  \"height\": \"12\",\n  \"round\": 0,\n  \"step\": 3,\n  \"signature\": \"{}\",\n  \"signbytes\": \"{}\"\n}}",
        base64::engine::general_purpose::STANDARD.encode(sig.to_bytes()),
        hex::encode_upper(&bytes)
    );
    fs::write(&path, json).unwrap();
    let mut pv = PrivValidator::load(key(), &path).unwrap();
    assert_eq!(pv.last_signed().step, 3);
    assert_eq!(pv.sign_vote(&chain(), v).unwrap().signature, sig);
}
