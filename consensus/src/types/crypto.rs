//! Ed25519 keys and signatures with strict decoding, ZIP-215 verification, and validator addresses.
//!
//! Strictness is enforced where bytes become values, so nothing downstream can hold a weak key or a
//! malleable signature:
//! - [`PublicKey`] rejects non-canonical encodings and small-order ("weak") points.
//! - [`Signature`] rejects a non-canonical `R` (y ≥ p), a small-order `R`, and a non-canonical `S` (S ≥ ℓ).
//!
//! Verification follows [ZIP-215](https://zips.z.cash/zip-0215) (`ed25519-zebra`), the rule CometBFT
//! adopted (ADR 079): the cofactored equation `[8][S]B = [8]R + [8][k]A`, for single signatures and for
//! batches alike, so a batch accepts exactly when every signature in it verifies alone. That agreement
//! is what makes batching safe where nodes must agree: a node batch-verifies a block's transactions minus
//! those its mempool already verified, a set that differs from node to node. Under the cofactorless
//! rules used before (dalek's `verify_strict` alone, its cofactorless batch equation with random
//! coefficients), a signature whose `R` carries a small-order component — which any key holder can make —
//! failed alone but passed a batch with probability 1/2 depending on the batch's other members, so one
//! such transaction in a byzantine proposer's block split honest nodes' app hashes. Third parties still
//! cannot malleate a signature: the challenge `k` hashes `R`, and `S` must be canonical.

use borsh::{BorshDeserialize, BorshSerialize};
use curve25519_dalek::edwards::CompressedEdwardsY;
use ed25519_zebra::{SigningKey, VerificationKey, VerificationKeyBytes};
use rand_chacha::rand_core::SeedableRng;
use std::fmt;
use std::io;

use super::hash::Hash;

/// Length of a public key in bytes.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length of a signature in bytes.
pub const SIGNATURE_LEN: usize = 64;
/// Length of an [`Address`] in bytes (as in CometBFT).
pub const ADDRESS_LEN: usize = 20;

/// Errors of key and signature handling.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The bytes are not a canonical encoding of a curve point, or the point has small order.
    #[error("invalid ed25519 public key {key_hex}: {reason}")]
    InvalidPublicKey {
        /// The offending key, hex.
        key_hex: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// The signature bytes are malformed (non-canonical or small-order `R`, non-canonical `S`).
    #[error("malformed ed25519 signature: {reason}")]
    MalformedSignature {
        /// Why it was rejected.
        reason: &'static str,
    },
    /// The signature does not verify for this key and message.
    #[error("signature verification failed for key {key_hex}")]
    VerificationFailed {
        /// The key the signature was checked against, hex.
        key_hex: String,
    },
    /// A batch contained at least one bad signature; `index` is the first one.
    #[error("batch verification failed: signature #{index} is invalid")]
    BatchFailed {
        /// Position (in the caller's batch) of the first invalid signature.
        index: usize,
    },
}

/// A validated ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerificationKey);

impl PublicKey {
    /// The only way to make a key from bytes: rejects non-canonical and small-order points.
    /// Keys that passed are remembered (bounded, see `key_cache`), so decoding the same key again is a
    /// lookup instead of a point decompression.
    pub fn from_bytes(bytes: &[u8; PUBLIC_KEY_LEN]) -> Result<PublicKey, CryptoError> {
        if let Some(key) = super::key_cache::get(bytes) {
            return Ok(PublicKey(key));
        }
        let key = Self::check(bytes)?;
        super::key_cache::insert(*bytes, key.0);
        Ok(key)
    }

    /// The checks of [`PublicKey::from_bytes`], without the memo.
    fn check(bytes: &[u8; PUBLIC_KEY_LEN]) -> Result<PublicKey, CryptoError> {
        let invalid = |reason| CryptoError::InvalidPublicKey {
            key_hex: hex::encode(bytes),
            reason,
        };
        let point = CompressedEdwardsY(*bytes)
            .decompress()
            .ok_or_else(|| invalid("not a curve point"))?;
        if point.is_small_order() {
            return Err(invalid("small-order point"));
        }
        // Decompression accepts some non-canonical y encodings; re-encoding must give the same bytes.
        if point.compress().as_bytes() != bytes || !is_canonical_y(bytes) {
            return Err(invalid("non-canonical encoding"));
        }
        let key = VerificationKey::try_from(*bytes).map_err(|_| invalid("not a curve point"))?;
        Ok(PublicKey(key))
    }

    /// The 32 key bytes.
    pub fn to_bytes(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.0.into()
    }

    /// The validator address of this key.
    pub fn address(&self) -> Address {
        Address::from_public_key(self)
    }

    /// ZIP-215 verification of one signature (the same verdict [`verify_batch`] gives it in any batch).
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), CryptoError> {
        self.0
            .verify(&ed25519_zebra::Signature::from(signature.0), message)
            .map_err(|_| CryptoError::VerificationFailed {
                key_hex: hex::encode(self.to_bytes()),
            })
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", hex::encode_upper(self.to_bytes()))
    }
}

impl BorshSerialize for PublicKey {
    fn serialize<W: io::Write>(&self, writer: &mut W) -> io::Result<()> {
        writer.write_all(&self.to_bytes())
    }
}

impl BorshDeserialize for PublicKey {
    fn deserialize_reader<R: io::Read>(reader: &mut R) -> io::Result<Self> {
        let bytes = <[u8; PUBLIC_KEY_LEN]>::deserialize_reader(reader)?;
        PublicKey::from_bytes(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

/// A structurally valid ed25519 signature (canonical, non-small-order `R`; canonical `S`).
/// Whether it verifies is a separate question answered by [`PublicKey::verify`] or [`verify_batch`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature([u8; SIGNATURE_LEN]);

impl Signature {
    /// The only way to make a signature from bytes.
    pub fn from_bytes(bytes: &[u8; SIGNATURE_LEN]) -> Result<Signature, CryptoError> {
        let mut r = [0u8; 32];
        r.copy_from_slice(&bytes[..32]);
        let mut s = [0u8; 32];
        s.copy_from_slice(&bytes[32..]);
        if !is_canonical_y(&r) {
            return Err(CryptoError::MalformedSignature {
                reason: "non-canonical R",
            });
        }
        if is_small_order_encoding(&r) {
            return Err(CryptoError::MalformedSignature {
                reason: "small-order R",
            });
        }
        if !is_canonical_scalar(&s) {
            return Err(CryptoError::MalformedSignature {
                reason: "non-canonical S",
            });
        }
        Ok(Signature(*bytes))
    }

    /// The 64 signature bytes.
    pub fn to_bytes(&self) -> [u8; SIGNATURE_LEN] {
        self.0
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({}…)", &hex::encode_upper(self.0)[..16])
    }
}

impl BorshSerialize for Signature {
    fn serialize<W: io::Write>(&self, writer: &mut W) -> io::Result<()> {
        writer.write_all(&self.0)
    }
}

impl BorshDeserialize for Signature {
    fn deserialize_reader<R: io::Read>(reader: &mut R) -> io::Result<Self> {
        let bytes = <[u8; SIGNATURE_LEN]>::deserialize_reader(reader)?;
        Signature::from_bytes(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

/// An ed25519 private key. Signing is deterministic (RFC 8032), so it is pure.
#[derive(Clone)]
pub struct PrivateKey {
    signing: SigningKey,
    /// Derived once: making the public key is a scalar multiplication.
    public: PublicKey,
}

impl PrivateKey {
    /// A key from its 32-byte seed.
    pub fn from_seed(seed: &[u8; 32]) -> PrivateKey {
        let signing = SigningKey::from_bytes(seed);
        PrivateKey {
            public: PublicKey(signing.verification_key()),
            signing,
        }
    }

    /// A fresh key from the given cryptographic RNG (the caller owns the randomness).
    pub fn generate<R: rand_core::CryptoRngCore + ?Sized>(rng: &mut R) -> PrivateKey {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        PrivateKey::from_seed(&seed)
    }

    /// The 32-byte seed (for writing `priv_validator_key.json`).
    pub fn seed(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// Signs a message (RFC 8032). An honestly made signature always passes [`Signature::from_bytes`]:
    /// its `R` is a multiple of the base point by a nonzero scalar below ℓ and its `S` is reduced.
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.signing.sign(message).to_bytes())
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        write!(f, "PrivateKey(pub={:?})", self.public_key())
    }
}

/// A validator address: the first 20 bytes of BLAKE2s-256 of the public key (CometBFT uses SHA-256; the
/// length and hex form are the same).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct Address(pub [u8; ADDRESS_LEN]);

impl Address {
    /// The address of a public key.
    pub fn from_public_key(key: &PublicKey) -> Address {
        let digest = Hash::digest(&key.to_bytes());
        let mut out = [0u8; ADDRESS_LEN];
        out.copy_from_slice(&digest.0[..ADDRESS_LEN]);
        Address(out)
    }

    /// Upper-case hex, as CometBFT prints addresses.
    pub fn to_hex_upper(&self) -> String {
        hex::encode_upper(self.0)
    }

    /// Parses 20 bytes of hex (either case).
    pub fn from_hex(s: &str) -> Result<Address, hex::FromHexError> {
        let mut out = [0u8; ADDRESS_LEN];
        hex::decode_to_slice(s, &mut out)?;
        Ok(Address(out))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex_upper())
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({})", self.to_hex_upper())
    }
}

/// Verifies many (message, signature, key) triples at once, by ZIP-215's batch equation: it accepts exactly
/// when every signature verifies alone ([`PublicKey::verify`]), whatever else is in the batch. On failure,
/// each signature is checked on its own so the error names the first bad one.
pub fn verify_batch(
    messages: &[&[u8]],
    signatures: &[Signature],
    keys: &[PublicKey],
) -> Result<(), CryptoError> {
    if messages.len() != signatures.len() || messages.len() != keys.len() {
        // A length mismatch is a caller bug; report it as a failure of the first unmatched entry.
        return Err(CryptoError::BatchFailed {
            index: messages.len().min(signatures.len()).min(keys.len()),
        });
    }
    if messages.is_empty() {
        return Ok(());
    }
    let mut batch = ed25519_zebra::batch::Verifier::new();
    for ((message, signature), key) in messages.iter().zip(signatures).zip(keys) {
        batch.queue((
            VerificationKeyBytes::from(key.to_bytes()),
            ed25519_zebra::Signature::from(signature.0),
            *message,
        ));
    }
    if batch
        .verify(batch_coefficients(messages, signatures, keys))
        .is_ok()
    {
        return Ok(());
    }
    for (index, ((message, signature), key)) in
        messages.iter().zip(signatures).zip(keys).enumerate()
    {
        if key.verify(message, signature).is_err() {
            return Err(CryptoError::BatchFailed { index });
        }
    }
    // The batch equation failed although every signature verifies alone: under ZIP-215 that happens with
    // negligible probability, so treat it as a failure rather than trust either answer.
    Err(CryptoError::BatchFailed { index: 0 })
}

/// The source of the batch equation's random coefficients, derived from everything in the batch (as
/// Fiat-Shamir does): unpredictable to whoever chose the signatures, yet no clock or OS randomness in the
/// pure core, so a simulation replays exactly. Soundness only needs the coefficients fixed after the inputs.
fn batch_coefficients(
    messages: &[&[u8]],
    signatures: &[Signature],
    keys: &[PublicKey],
) -> rand_chacha::ChaCha20Rng {
    use blake2::{Blake2s256, Digest};
    let mut hasher = Blake2s256::new();
    hasher.update(b"basalt ed25519 batch coefficients");
    for ((message, signature), key) in messages.iter().zip(signatures).zip(keys) {
        hasher.update(key.to_bytes());
        hasher.update(signature.0);
        hasher.update((message.len() as u64).to_le_bytes());
        hasher.update(message);
    }
    let seed: [u8; 32] = hasher.finalize().into();
    rand_chacha::ChaCha20Rng::from_seed(seed)
}

/// The field prime p = 2^255 - 19, little-endian.
const FIELD_PRIME: [u8; 32] = {
    let mut p = [0xffu8; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    p
};

/// The group order ℓ = 2^252 + 27742317777372353535851937790883648493, little-endian.
const GROUP_ORDER: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
];

/// `a < b` for little-endian 256-bit numbers.
fn lt_le(a: &[u8; 32], b: &[u8; 32]) -> bool {
    for i in (0..32).rev() {
        if a[i] != b[i] {
            return a[i] < b[i];
        }
    }
    false
}

/// The y coordinate (sign bit cleared) is reduced mod p.
fn is_canonical_y(encoding: &[u8; 32]) -> bool {
    let mut y = *encoding;
    y[31] &= 0x7f;
    lt_le(&y, &FIELD_PRIME)
}

/// S < ℓ.
fn is_canonical_scalar(s: &[u8; 32]) -> bool {
    lt_le(s, &GROUP_ORDER)
}

/// True if a canonical point encoding is one of the 8 small-order points. Those are exactly the points whose
/// y is 1 (identity), p-1 (order 2), 0 (order 4) or one of two order-8 values, with either sign of x.
fn is_small_order_encoding(encoding: &[u8; 32]) -> bool {
    const ORDER_8_Y: [[u8; 32]; 2] = [
        [
            0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef,
            0x98, 0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88,
            0x6d, 0x53, 0xfc, 0x05,
        ],
        [
            0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10,
            0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77,
            0x92, 0xac, 0x03, 0x7a,
        ],
    ];
    let mut y = *encoding;
    y[31] &= 0x7f;
    let mut one = [0u8; 32];
    one[0] = 1;
    let mut p_minus_one = FIELD_PRIME;
    p_minus_one[0] -= 1;
    y == one || y == p_minus_one || y == [0u8; 32] || ORDER_8_Y.contains(&y)
}

/// Signatures no honest signer makes, for tests of verification rules (feature `testing`).
#[cfg(any(test, feature = "testing"))]
pub mod testing {
    use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
    use curve25519_dalek::edwards::CompressedEdwardsY;
    use curve25519_dalek::scalar::Scalar;
    use sha2::{Digest, Sha512};

    use super::{PrivateKey, Signature, SIGNATURE_LEN};

    /// A signature by `key` on `message` whose `R` is a valid nonce commitment plus the point of order 2:
    /// only the key holder can make one (the challenge hashes `R`). It satisfies the cofactored equation
    /// `[8][s]B = [8]R + [8][k]A` but not the cofactorless one, so verifiers that mix the two (cofactorless
    /// single checks, a cofactorless batch equation with random coefficients) disagree about it.
    /// `nonce` picks the nonce, so tests can make many distinct ones.
    pub fn sign_with_torsion(key: &PrivateKey, message: &[u8], nonce: u64) -> Signature {
        let expanded = Sha512::digest(key.seed());
        let mut secret = [0u8; 32];
        secret.copy_from_slice(&expanded[..32]);
        secret[0] &= 248;
        secret[31] &= 127;
        secret[31] |= 64;
        let a = Scalar::from_bytes_mod_order(secret);
        let public = key.public_key().to_bytes();
        let r = Scalar::from_bytes_mod_order_wide(&Sha512::digest(nonce.to_le_bytes()).into());
        // y = p - 1 encodes (0, -1), the point of order 2.
        let mut order_two = super::FIELD_PRIME;
        order_two[0] -= 1;
        let torsion = CompressedEdwardsY(order_two)
            .decompress()
            .unwrap_or_else(|| unreachable!("(0, -1) is on the curve"));
        let big_r = (ED25519_BASEPOINT_POINT * r + torsion)
            .compress()
            .to_bytes();
        let mut hasher = Sha512::new();
        hasher.update(big_r);
        hasher.update(public);
        hasher.update(message);
        let k = Scalar::from_bytes_mod_order_wide(&hasher.finalize().into());
        let s = r + k * a;
        let mut bytes = [0u8; SIGNATURE_LEN];
        bytes[..32].copy_from_slice(&big_r);
        bytes[32..].copy_from_slice(s.as_bytes());
        Signature::from_bytes(&bytes)
            .unwrap_or_else(|e| unreachable!("R is canonical and not of small order: {e}"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use curve25519_dalek::edwards::CompressedEdwardsY;

    fn key(n: u8) -> PrivateKey {
        PrivateKey::from_seed(&[n; 32])
    }

    #[test]
    fn small_order_list_is_exactly_the_torsion_points() {
        // Every encoding we flag decompresses to a small-order point, for both signs of x where valid.
        let mut flagged = 0;
        for y_low in [0u8, 1] {
            let mut enc = [0u8; 32];
            enc[0] = y_low;
            for sign in [0u8, 0x80] {
                enc[31] = sign;
                assert!(is_small_order_encoding(&enc));
                if let Some(p) = CompressedEdwardsY(enc).decompress() {
                    assert!(p.is_small_order());
                    flagged += 1;
                }
            }
        }
        assert!(flagged >= 3);
        // Real signatures never have a small-order R.
        for n in 0..50u8 {
            let sig = key(n).sign(&[n]);
            assert!(Signature::from_bytes(&sig.to_bytes()).is_ok());
        }
    }

    #[test]
    fn weak_and_noncanonical_keys_are_rejected() {
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(PublicKey::from_bytes(&identity).is_err());
        // y = p + 1 encodes the identity non-canonically.
        let mut noncanonical = FIELD_PRIME;
        noncanonical[0] += 1;
        assert!(PublicKey::from_bytes(&noncanonical).is_err());
        assert!(PublicKey::from_bytes(&key(1).public_key().to_bytes()).is_ok());
    }

    #[test]
    fn remembered_keys_are_the_checked_keys_and_rejections_are_never_remembered() {
        let mut identity = [0u8; 32];
        identity[0] = 1;
        for _ in 0..3 {
            assert!(
                PublicKey::from_bytes(&identity).is_err(),
                "rejected every time"
            );
        }
        let bytes = key(42).public_key().to_bytes();
        let first = PublicKey::from_bytes(&bytes).unwrap();
        let again = PublicKey::from_bytes(&bytes).unwrap();
        assert_eq!(first, again);
        assert_eq!(again, PublicKey::check(&bytes).unwrap());
        assert_eq!(again.to_bytes(), bytes);
        // More distinct keys than two generations hold: the memo stays bounded and still answers
        // (other tests share it, so only the bound is asserted).
        for i in 0..(2 * super::super::key_cache::GENERATION as u64 + 10) {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&i.to_le_bytes());
            seed[8] = 0xa5;
            let pk = PrivateKey::from_seed(&seed).public_key();
            assert_eq!(PublicKey::from_bytes(&pk.to_bytes()).unwrap(), pk);
        }
        assert!(super::super::key_cache::len() <= 2 * super::super::key_cache::GENERATION);
        assert_eq!(PublicKey::from_bytes(&bytes).unwrap(), first);
    }

    #[test]
    fn malleated_signatures_are_rejected() {
        let sk = key(7);
        let sig = sk.sign(b"msg").to_bytes();
        // S + ℓ is the classic malleation.
        let mut s = [0u8; 32];
        s.copy_from_slice(&sig[32..]);
        let mut carry = 0u16;
        for i in 0..32 {
            let v = s[i] as u16 + GROUP_ORDER[i] as u16 + carry;
            s[i] = v as u8;
            carry = v >> 8;
        }
        let mut malleated = sig;
        malleated[32..].copy_from_slice(&s);
        assert!(Signature::from_bytes(&malleated).is_err());
        // Small-order R.
        let mut small_r = sig;
        small_r[..32].copy_from_slice(&[0u8; 32]);
        assert!(Signature::from_bytes(&small_r).is_err());
    }

    #[test]
    fn sign_verify_and_batch() {
        let keys: Vec<PrivateKey> = (0..10).map(key).collect();
        let msgs: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 40]).collect();
        let sigs: Vec<Signature> = keys.iter().zip(&msgs).map(|(k, m)| k.sign(m)).collect();
        let pks: Vec<PublicKey> = keys.iter().map(|k| k.public_key()).collect();
        let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
        assert!(verify_batch(&refs, &sigs, &pks).is_ok());
        assert!(pks[0].verify(&msgs[0], &sigs[0]).is_ok());
        assert!(pks[0].verify(&msgs[1], &sigs[0]).is_err());
        let mut bad = sigs.clone();
        bad[6] = sigs[5];
        assert_eq!(
            verify_batch(&refs, &bad, &pks),
            Err(CryptoError::BatchFailed { index: 6 })
        );
    }

    #[test]
    fn a_signature_is_valid_alone_exactly_when_it_is_valid_in_any_batch() {
        // Why: a node verifies a block's transactions in one batch, minus those whose signature it already
        // checked at admission — a set that differs from node to node. If a batch could accept what a
        // single check rejects (or the other way round), one crafted signature in a block would make the
        // nodes disagree about the block's outcome and halt the chain.
        let signer = key(9);
        let message = b"transfer".to_vec();
        let honest: Vec<PrivateKey> = (20..52).map(key).collect();
        let honest_sigs: Vec<Signature> = honest.iter().map(|k| k.sign(&message)).collect();
        for nonce in 0..8u64 {
            let crafted = testing::sign_with_torsion(&signer, &message, nonce);
            let alone = signer.public_key().verify(&message, &crafted).is_ok();
            for others in 0..honest.len() {
                let mut sigs = vec![crafted];
                sigs.extend_from_slice(&honest_sigs[..others]);
                let mut pks = vec![signer.public_key()];
                pks.extend(honest[..others].iter().map(PrivateKey::public_key));
                let refs: Vec<&[u8]> = vec![message.as_slice(); sigs.len()];
                assert_eq!(
                    verify_batch(&refs, &sigs, &pks).is_ok(),
                    alone,
                    "nonce {nonce}, batch of {}",
                    sigs.len()
                );
            }
        }
    }

    #[test]
    fn addresses_are_20_bytes_of_the_key_hash() {
        let pk = key(3).public_key();
        let addr = pk.address();
        assert_eq!(&addr.0[..], &Hash::digest(&pk.to_bytes()).0[..20]);
        assert_eq!(Address::from_hex(&addr.to_hex_upper()), Ok(addr));
    }
}
