//! Ed25519 signatures over decision traces, one per batch.
//!
//! A trace's signed content is its *signing payload*: the trace without `signature`,
//! `signature_proof`, members at their schema default and empty members, in one of two
//! formats (see `switchyard-events`): v1, its canonical JSON (JCS,
//! `RouteDecided::signing_payload`), or v2, the same members typed and length-prefixed in
//! binary (`RouteDecided::signing_payload_as(PayloadFormat::V2)`), which new traces are signed
//! with: writing v1's ~140 shortest-decimal numbers was half of a trace's own signing work.
//! `signing_key_id` is set before signing, so it is covered.
//!
//! **Batches.** Signing every trace on its own costs ~45 µs on our machines (Ed25519 hashes the
//! 5.8 KiB payload of a 21-candidate decision twice with SHA-512), more than twice the router's
//! whole budget. So the publisher signs the traces of a batch together, the way Certificate
//! Transparency signs its logs (RFC 9162 §2.1):
//!
//! - each trace is a leaf: `SHA-256(0x00 ‖ payload)`, every payload of a batch in one format;
//! - the batch's leaves form a Merkle tree: `SHA-256(0x01 ‖ left ‖ right)`, the left subtree
//!   holding the largest power of two below the batch size (RFC 9162 §2.1.1);
//! - one Ed25519 signature covers `context ‖ tree_size (u64 BE) ‖ root`, where the context
//!   names the payload format: `"switchyard decision batch v1\0"` or `"... v2\0"`, so a
//!   signature over one format never verifies as the other;
//! - every trace carries that signature and a `signature_proof`: its leaf index, the batch size,
//!   its inclusion proof (sibling hashes from the leaf up, RFC 9162 §2.1.3.1) and the payload
//!   format (`payload_format`, 1 when absent: proofs written before v2 existed).
//!
//! Verifying one trace needs only the trace and the public key: hash the payload into a leaf,
//! fold the proof into a root (RFC 9162 §2.1.3.2), rebuild the signed message, check the
//! signature. Tampering with the trace changes the leaf; with the proof, the root; either way
//! the signature fails. A batch of one has an empty proof and its root is its leaf. Traces
//! without `signature_proof` (schema v1/v2) carry a signature over the v1 payload itself and
//! still verify. The verifier takes the format from the proof, never by trying both.
//!
//! Per trace this costs the payload and one SHA-256 over it (v2: ~1.3 µs to write, SHA-NI
//! ~3 µs for 5.3 KiB) plus
//! a share of the signature: under load the publisher's batches grow and the share shrinks;
//! idle, a batch is one trace and the cost is what it was.
//!
//! The backend is `ring`, already in the build for rustls. `ed25519-dalek` 2.2 was measured
//! against it: about 5 µs faster per signature, too little to add its eight crates now that a
//! signature is paid once per batch.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use sha2::{Digest, Sha256};
use switchyard_events::{PayloadFormat, RouteDecided, SignatureProof};

/// A signing or verification failure.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The key material is not an Ed25519 PKCS#8 document.
    #[error("not an Ed25519 PKCS#8 private key: {0}")]
    BadKey(String),
    /// The trace could not be serialised.
    #[error("decision trace could not be serialised: {0}")]
    Payload(#[from] serde_json::Error),
    /// The trace is signed by a key this verifier does not have.
    #[error("trace signed by unknown key `{0}`")]
    UnknownKey(String),
    /// The signature is not valid for the trace.
    #[error("signature does not match the trace")]
    Mismatch,
    /// The batch proof is malformed or does not lead to a root of its stated size.
    #[error("batch proof is invalid: {0}")]
    BadProof(&'static str),
    /// The proof names a signing payload format this verifier does not know.
    #[error("trace signed over signing payload format {0}, which this verifier does not know")]
    UnknownFormat(i32),
}

/// The domain-separation prefix of a signed batch root whose leaves hash v1 payloads.
pub const BATCH_CONTEXT: &[u8] = b"switchyard decision batch v1\0";

/// The domain-separation prefix of a signed batch root whose leaves hash v2 payloads.
pub const BATCH_CONTEXT_V2: &[u8] = b"switchyard decision batch v2\0";

/// Returns the batch context of a payload format.
pub fn batch_context(format: PayloadFormat) -> &'static [u8] {
    match format {
        PayloadFormat::V1 => BATCH_CONTEXT,
        PayloadFormat::V2 => BATCH_CONTEXT_V2,
    }
}

/// A SHA-256 digest.
type Hash = [u8; 32];

/// Returns the leaf hash of a signing payload: `SHA-256(0x00 ‖ payload)`.
pub fn leaf_hash(payload: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(payload);
    h.finalize().into()
}

/// Returns the hash of an inner node: `SHA-256(0x01 ‖ left ‖ right)`.
fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Returns a hash in lowercase hex (what `hex::encode` gives, without its per-character
/// iterator: a batch writes `log2(size)` of these per trace).
fn hex_of(hash: &Hash) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(64);
    for b in hash {
        text.push(char::from(DIGITS[usize::from(b >> 4)]));
        text.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    text
}

/// Returns the bytes a batch signature covers: the format's context, the size and the root.
pub fn batch_message(format: PayloadFormat, tree_size: u64, root: &Hash) -> Vec<u8> {
    let context = batch_context(format);
    let mut m = Vec::with_capacity(context.len() + 8 + 32);
    m.extend_from_slice(context);
    m.extend_from_slice(&tree_size.to_be_bytes());
    m.extend_from_slice(root);
    m
}

/// Returns the root of `leaves` (RFC 9162 §2.1.1) and pushes onto each leaf's path the
/// sibling hashes on its way up, deepest first (the inclusion proofs of §2.1.3.1). Every node
/// is hashed once.
fn build_tree(leaves: &[Hash], paths: &mut [Vec<Hash>]) -> Hash {
    match leaves {
        [] => Sha256::digest([]).into(),
        [leaf] => *leaf,
        _ => {
            // The largest power of two strictly below the size: the top bit of size - 1.
            let k = 1usize << (usize::BITS - 1 - (leaves.len() - 1).leading_zeros());
            let (left_paths, right_paths) = paths.split_at_mut(k);
            let left = build_tree(&leaves[..k], left_paths);
            let right = build_tree(&leaves[k..], right_paths);
            for p in left_paths.iter_mut() {
                p.push(right);
            }
            for p in right_paths.iter_mut() {
                p.push(left);
            }
            node_hash(&left, &right)
        }
    }
}

/// Folds an inclusion proof into the root it leads to (RFC 9162 §2.1.3.2).
pub fn root_from_proof(
    leaf_index: u64,
    tree_size: u64,
    leaf: Hash,
    path: &[Hash],
) -> Result<Hash, SignError> {
    if leaf_index >= tree_size {
        return Err(SignError::BadProof("leaf index beyond the tree"));
    }
    let (mut f, mut s) = (leaf_index, tree_size - 1);
    let mut r = leaf;
    for p in path {
        if s == 0 {
            return Err(SignError::BadProof("proof longer than the tree is deep"));
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(SignError::BadProof("proof shorter than the tree is deep"));
    }
    Ok(r)
}

/// Parses one proof hash (64 lowercase or uppercase hex digits).
fn parse_hash(text: &str) -> Result<Hash, SignError> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).map_err(|_| SignError::BadProof("not a hex SHA-256"))?;
    Ok(out)
}

/// Returns the key id of a public key: `ed25519-` and the first 16 hex digits of its SHA-256.
fn key_id_of(public: &[u8]) -> String {
    let digest = Sha256::digest(public);
    format!("ed25519-{}", &hex::encode(digest)[..16])
}

/// A public key that verifies traces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// The key id traces name in `signing_key_id`.
    pub key_id: String,
    /// The 32-byte Ed25519 public key.
    pub bytes: Vec<u8>,
}

impl PublicKey {
    /// Builds a public key from its raw 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SignError> {
        if bytes.len() != 32 {
            return Err(SignError::BadKey(format!(
                "an Ed25519 public key has 32 bytes, got {}",
                bytes.len()
            )));
        }
        Ok(PublicKey {
            key_id: key_id_of(bytes),
            bytes: bytes.to_vec(),
        })
    }

    /// Returns the key as a JWK (RFC 8037).
    pub fn to_jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(&self.bytes),
            "kid": self.key_id,
            "use": "sig",
            "alg": "EdDSA",
        })
    }

    /// Parses a JWK (RFC 8037) back into a key.
    pub fn from_jwk(jwk: &serde_json::Value) -> Result<Self, SignError> {
        let x = jwk
            .get("x")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| SignError::BadKey("JWK without `x`".into()))?;
        let bytes = URL_SAFE_NO_PAD
            .decode(x)
            .map_err(|e| SignError::BadKey(e.to_string()))?;
        Self::from_bytes(&bytes)
    }

    /// Verifies a signed trace: without a proof (schema v1/v2), a signature over its v1
    /// payload; with one, over the batch root its payload in the proof's format leads to.
    pub fn verify(&self, decision: &RouteDecided) -> Result<(), SignError> {
        if decision.signing_key_id != self.key_id {
            return Err(SignError::UnknownKey(decision.signing_key_id.clone()));
        }
        let signature = STANDARD
            .decode(&decision.signature)
            .map_err(|_| SignError::Mismatch)?;
        let message = match &decision.signature_proof {
            None => decision.signing_payload()?,
            Some(proof) => {
                let format = PayloadFormat::from_number(proof.payload_format)
                    .ok_or(SignError::UnknownFormat(proof.payload_format))?;
                let payload = decision.signing_payload_as(format);
                let size = u64::try_from(proof.tree_size)
                    .map_err(|_| SignError::BadProof("negative tree size"))?;
                let index = u64::try_from(proof.leaf_index)
                    .map_err(|_| SignError::BadProof("negative leaf index"))?;
                let path = proof
                    .path
                    .iter()
                    .map(|h| parse_hash(h))
                    .collect::<Result<Vec<_>, _>>()?;
                let root = root_from_proof(index, size, leaf_hash(&payload), &path)?;
                batch_message(format, size, &root)
            }
        };
        UnparsedPublicKey::new(&ED25519, &self.bytes)
            .verify(&message, &signature)
            .map_err(|_| SignError::Mismatch)
    }
}

/// Signs decision traces with one Ed25519 key.
pub struct DecisionSigner {
    pair: Ed25519KeyPair,
    public: PublicKey,
}

impl std::fmt::Debug for DecisionSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionSigner")
            .field("key_id", &self.public.key_id)
            .finish_non_exhaustive()
    }
}

impl DecisionSigner {
    /// Generates a new key; returns the signer and the PKCS#8 document to store.
    pub fn generate() -> Result<(Self, Vec<u8>), SignError> {
        let rng = ring::rand::SystemRandom::new();
        let doc =
            Ed25519KeyPair::generate_pkcs8(&rng).map_err(|e| SignError::BadKey(e.to_string()))?;
        let bytes = doc.as_ref().to_vec();
        Ok((Self::from_pkcs8(&bytes)?, bytes))
    }

    /// Loads a key from a PKCS#8 document (as written by [`DecisionSigner::generate`] or
    /// `openssl genpkey -algorithm ed25519 -outform DER`).
    pub fn from_pkcs8(doc: &[u8]) -> Result<Self, SignError> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(doc)
            .map_err(|e| SignError::BadKey(e.to_string()))?;
        let public = PublicKey::from_bytes(pair.public_key().as_ref())?;
        Ok(DecisionSigner { pair, public })
    }

    /// Returns the public half.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// Signs raw bytes (standard base64 of the signature).
    pub fn sign_bytes(&self, payload: &[u8]) -> String {
        STANDARD.encode(self.pair.sign(payload).as_ref())
    }

    /// Signs one trace in place: a batch of one (empty proof).
    pub fn sign(&self, decision: &mut RouteDecided) -> Result<(), SignError> {
        self.sign_batch([decision])
    }

    /// Signs a batch of traces in place with one signature (see the module documentation):
    /// sets each trace's `signing_key_id`, `signature` and `signature_proof`.
    pub fn sign_batch<'a>(
        &self,
        decisions: impl IntoIterator<Item = &'a mut RouteDecided>,
    ) -> Result<(), SignError> {
        let mut batch = self.batch();
        for d in decisions {
            batch.add(d);
        }
        batch.finish()
    }

    /// Starts a batch (what [`DecisionSigner::sign_batch`] does in steps): [`Batch::add`]
    /// does each trace's own work (its payload and leaf hash) as it is added, and
    /// [`Batch::finish`] the batch's shared work (the tree, the signature, the proofs).
    /// Signed over [`PayloadFormat::CURRENT`].
    pub fn batch<'a>(&self) -> Batch<'_, 'a> {
        self.batch_as(PayloadFormat::CURRENT)
    }

    /// Starts a batch signed over payloads of a given format (v1: as traces were signed before
    /// v2 existed, which verifiers keep accepting).
    pub fn batch_as<'a>(&self, format: PayloadFormat) -> Batch<'_, 'a> {
        Batch {
            signer: self,
            format,
            decisions: Vec::new(),
            leaves: Vec::new(),
            payload: Vec::new(),
        }
    }
}

/// A batch of traces being signed with one signature (see [`DecisionSigner::batch`]).
pub struct Batch<'s, 'a> {
    signer: &'s DecisionSigner,
    format: PayloadFormat,
    decisions: Vec<&'a mut RouteDecided>,
    leaves: Vec<Hash>,
    /// One payload buffer for the whole batch: each payload is hashed and dropped.
    payload: Vec<u8>,
}

impl std::fmt::Debug for Batch<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("signer", self.signer)
            .field("format", &self.format)
            .field("traces", &self.decisions.len())
            .finish_non_exhaustive()
    }
}

impl<'a> Batch<'_, 'a> {
    /// Adds a trace: sets its `signing_key_id` (covered by the signature), writes its signing
    /// payload and hashes it into its leaf.
    pub fn add(&mut self, decision: &'a mut RouteDecided) {
        decision
            .signing_key_id
            .clone_from(&self.signer.public.key_id);
        decision.write_signing_payload_as(self.format, &mut self.payload);
        self.leaves.push(leaf_hash(&self.payload));
        self.decisions.push(decision);
    }

    /// Signs the batch: builds the tree, signs its root once, and gives every trace the
    /// signature and its inclusion proof. An empty batch signs nothing.
    pub fn finish(self) -> Result<(), SignError> {
        let Batch {
            signer,
            format,
            decisions,
            leaves,
            payload: _,
        } = self;
        if decisions.is_empty() {
            return Ok(());
        }
        let depth = usize::BITS - (leaves.len() - 1).leading_zeros();
        let mut paths = vec![Vec::with_capacity(depth as usize); leaves.len()];
        let root = build_tree(&leaves, &mut paths);
        let size = leaves.len() as u64;
        let message = batch_message(format, size, &root);
        let signature = STANDARD.encode(signer.pair.sign(&message).as_ref());
        for (index, (d, path)) in decisions.into_iter().zip(paths).enumerate() {
            d.signature.clone_from(&signature);
            d.signature_proof = Some(SignatureProof {
                leaf_index: index as i64,
                tree_size: size as i64,
                path: path.iter().map(hex_of).collect(),
                payload_format: format.number(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tree hash of RFC 9162 §2.1.1, spelled out recursively.
    fn reference_root(leaves: &[Hash]) -> Hash {
        match leaves {
            [] => Sha256::digest([]).into(),
            [leaf] => *leaf,
            _ => {
                let mut k = 1;
                while k * 2 < leaves.len() {
                    k *= 2;
                }
                node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
            }
        }
    }

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("leaf {i}").as_bytes()))
            .collect()
    }

    #[test]
    fn every_proof_of_every_size_leads_to_the_root() {
        for n in 1..=70 {
            let leaves = leaves(n);
            let mut paths = vec![Vec::new(); n];
            let root = build_tree(&leaves, &mut paths);
            assert_eq!(root, reference_root(&leaves), "size {n}");
            for (i, path) in paths.iter().enumerate() {
                let got = root_from_proof(i as u64, n as u64, leaves[i], path);
                assert_eq!(got.ok(), Some(root), "size {n}, leaf {i}");
                // Another leaf, index or size does not lead there.
                let other = leaf_hash(b"other");
                assert_ne!(
                    root_from_proof(i as u64, n as u64, other, path).ok(),
                    Some(root)
                );
                if n > 1 {
                    let j = (i + 1) % n;
                    assert_ne!(
                        root_from_proof(j as u64, n as u64, leaves[i], path).ok(),
                        Some(root),
                        "size {n}: leaf {i}'s proof must not pass as leaf {j}'s"
                    );
                }
                assert!(root_from_proof(n as u64, n as u64, leaves[i], path).is_err());
            }
        }
    }

    #[test]
    fn hashes_are_written_as_hex_encodes_them() {
        for i in 0..32u8 {
            let hash = leaf_hash(&[i; 3]);
            assert_eq!(hex_of(&hash), hex::encode(hash));
        }
        assert_eq!(hex_of(&[0xab; 32]), "ab".repeat(32));
    }

    /// RFC 9162 §2.1.3.2 rejects a proof of the wrong length.
    #[test]
    fn proofs_of_the_wrong_length_are_rejected() {
        let leaves = leaves(5);
        let mut paths = vec![Vec::new(); 5];
        build_tree(&leaves, &mut paths);
        let mut long = paths[0].clone();
        long.push([7; 32]);
        assert!(root_from_proof(0, 5, leaves[0], &long).is_err());
        let short = &paths[0][..paths[0].len() - 1];
        assert!(root_from_proof(0, 5, leaves[0], short).is_err());
    }
}
