//! Signed changes: who wrote a change is proven by a signature, not by who handed it over, so any
//! replica checks authorship offline and any phone may carry another's changes
//! (docs/PROTOCOL.md §10).
//!
//! The scheme is one signature per device and document over the hash of the latest change the
//! device wrote to it (a [`Voucher`]). An Automerge change's hash covers its bytes and the hashes
//! of the changes it depends on, and a device's every change depends on its previous one, so
//! that one signature covers every change of the device before it: a sync message carries one
//! voucher per device whose changes it carries, whatever their number. The server vouches for
//! what it holds the same way, with the deployment key over its heads, which is how history
//! written before signatures, and the server's own conversions, travel on between phones.
//!
//! A phone signs its own latest change of a document when it sends changes of it (never on the
//! write path: recording a visit costs no signature) and keeps the vouchers it received with the
//! document. A receiver checks every change it lacks before applying any ([`check`]): each must
//! be reached, through the dependencies of the changes the message carries, from a head of a
//! voucher that verifies, signed by the change's own device (or by the deployment). The device's
//! key is the one its directory entry names; a device revoked in the directory vouches for
//! nothing more, so its changes the server did not hold when it was revoked are refused
//! everywhere (the server's own voucher covers those it held).

use std::collections::{HashMap, HashSet};

use automerge::{ActorId, Change, ChangeHash};
use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::document::{genesis_hash, DocId};
use crate::error::{Error, RefusalCode, Result};
use crate::identity::DeploymentKey;

/// Vouchers one entry may carry (a document written by more devices than this over its life
/// travels whole from the server, whose one voucher covers it).
pub const MAX_VOUCHERS_PER_ENTRY: usize = 1_000;
/// Heads one voucher may sign (the server's heads of a document; a device signs one).
pub const MAX_VOUCHER_HEADS: usize = 64;

const CONTEXT: &[u8] = b"doorstep changes v1\0";
const DEPLOYMENT: &str = "deployment:";

/// A signature that covers changes of one document: a device's over its latest change there, or
/// the deployment's over the server's heads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Voucher {
    /// Who signed: a device's actor id (32 hexadecimal digits), or `deployment:<key id>`.
    pub by: String,
    /// A device: the sequence number of the change signed. The deployment: its clock (ms) when
    /// it signed. Of two vouchers of the same signer, the higher covers more.
    pub seq: u64,
    /// The change hashes signed.
    #[serde(with = "hash_list")]
    pub heads: Vec<ChangeHash>,
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
}

/// Who a voucher is from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Signer {
    Device(ActorId),
    Deployment(String),
}

impl Voucher {
    /// The bytes signed: the context, the document id, the signer, the sequence number and the
    /// hashes (docs/PROTOCOL.md §10).
    pub(crate) fn signed_bytes(doc: &DocId, by: &str, seq: u64, heads: &[ChangeHash]) -> Vec<u8> {
        let mut m = CONTEXT.to_vec();
        let doc = doc.to_string();
        for text in [doc.as_bytes(), by.as_bytes()] {
            m.extend_from_slice(&(text.len() as u32).to_be_bytes());
            m.extend_from_slice(text);
        }
        m.extend_from_slice(&seq.to_be_bytes());
        m.extend_from_slice(&(heads.len() as u32).to_be_bytes());
        for h in heads {
            m.extend_from_slice(&h.0);
        }
        m
    }

    pub(crate) fn signer(&self) -> Result<Signer> {
        if let Some(id) = self.by.strip_prefix(DEPLOYMENT) {
            return Ok(Signer::Deployment(id.to_string()));
        }
        crate::ids::ActorHex::parse(&self.by)
            .ok()
            .filter(|a| a.as_str() == self.by)
            .map(|a| Signer::Device(a.actor()))
            .ok_or_else(|| bad_signature(format!("a signature names no device or deployment key ({:.40})", self.by)))
    }

    /// The deployment's `by` for key `id`.
    pub(crate) fn deployment_signer(id: &str) -> String {
        format!("{DEPLOYMENT}{id}")
    }

    /// Checks the signature against `key`, and the voucher's shape.
    pub(crate) fn verify(&self, doc: &DocId, key: &VerifyingKey) -> Result<()> {
        if self.heads.is_empty() || self.heads.len() > MAX_VOUCHER_HEADS {
            return Err(bad_signature(format!("a signature over changes to {doc} signs no or too many heads")));
        }
        let bytes: [u8; 64] = self
            .signature
            .as_slice()
            .try_into()
            .map_err(|_| bad_signature(format!("a signature over changes to {doc} is not 64 bytes")))?;
        key.verify_strict(&Self::signed_bytes(doc, &self.by, self.seq, &self.heads), &Signature::from_bytes(&bytes))
            .map_err(|_| {
                bad_signature(format!("a signature over changes to {doc} does not verify (by {:.40})", self.by))
            })
    }
}

/// What a replica knows of a device that signs.
pub(crate) struct DeviceSigner {
    /// The user the device belongs to (what it wrote stays theirs, revoked or not).
    pub user: crate::ids::UserId,
    pub key: Option<VerifyingKey>,
    pub revoked: bool,
}

/// Where a receiver finds the keys vouchers are checked with.
pub(crate) trait SignerKeys {
    /// The directory's entry for the device writing as `actor`; `None`: no such device.
    fn device_signer(&self, actor: &ActorId) -> Result<Option<DeviceSigner>>;
    /// The deployment keys trusted to vouch for what the server holds.
    fn deployment_keys(&self) -> &[DeploymentKey];
}

/// Checks that every change of `new` (the changes of `doc` a message carries that this replica
/// lacks) is covered by a voucher of `vouchers` that verifies. Returns the vouchers that verified,
/// to keep with the document. Refuses the whole message with `bad_signature` (a voucher that does
/// not verify: forged or altered) or `unsigned_change` (a change no voucher of its device, nor the
/// deployment's, covers);
/// and `doc` alone with `revoked_author` when the uncovered change's device was revoked (an honest
/// phone meets that when it carries a lost phone's changes the server never had).
pub(crate) fn check(doc: &DocId, new: &[Change], vouchers: &[Voucher], keys: &impl SignerKeys) -> Result<Checked> {
    if vouchers.len() > MAX_VOUCHERS_PER_ENTRY {
        return Err(Error::protocol(format!("an entry carries more than {MAX_VOUCHERS_PER_ENTRY} signatures")));
    }
    let mut valid = Vec::new();
    let mut scopes = Vec::new();
    let mut revoked: HashSet<ActorId> = HashSet::new();
    for v in vouchers {
        match v.signer()? {
            Signer::Device(actor) => match keys.device_signer(&actor)? {
                Some(DeviceSigner { key: Some(key), revoked: false, .. }) => {
                    v.verify(doc, &key)?;
                    scopes.push((v, Some(actor)));
                    valid.push(v.clone());
                }
                Some(DeviceSigner { key: Some(key), revoked: true, .. }) => {
                    v.verify(doc, &key)?;
                    revoked.insert(actor);
                }
                // A device this replica's directory knows no key of yet vouches for nothing here.
                _ => {}
            },
            Signer::Deployment(id) => {
                if let Some(key) = trusted_deployment_key(keys.deployment_keys(), &id, v.seq)? {
                    v.verify(doc, &key)?;
                    scopes.push((v, None));
                    valid.push(v.clone());
                }
            }
        }
    }
    let (deployment, devices): (Vec<_>, Vec<_>) = scopes.into_iter().partition(|(_, a)| a.is_none());
    let by_deployment = coverage(new, deployment);
    let mut covered = coverage(new, devices);
    let genesis = genesis_hash(doc);
    let authors: std::collections::BTreeSet<ActorId> = new
        .iter()
        .filter(|c| c.hash() != genesis && !by_deployment.contains(&c.hash()))
        .map(|c| c.actor_id().clone())
        .collect();
    covered.extend(by_deployment);
    for c in new {
        if c.hash() == genesis || covered.contains(&c.hash()) {
            continue;
        }
        let actor = c.actor_id();
        let known = keys.device_signer(actor)?;
        if revoked.contains(actor) || known.as_ref().is_some_and(|d| d.revoked) {
            return Err(Error::refused(
                RefusalCode::RevokedAuthor,
                format!(
                    "a change to {doc} was written by device {}, which was revoked, and the server did not hold it before",
                    actor.to_hex_string()
                ),
            ));
        }
        let why = match known {
            None => "a device this replica's directory does not know",
            Some(DeviceSigner { key: None, .. }) => "a device whose key this replica's directory does not hold yet",
            Some(_) => "its device, whose signature covers no such change",
        };
        return Err(Error::refused(
            RefusalCode::UnsignedChange,
            format!(
                "a change to {doc} by device {} is not signed by {why}; the whole message was refused",
                actor.to_hex_string()
            ),
        ));
    }
    Ok(Checked { vouchers: valid, authors: authors.into_iter().collect() })
}

/// What [`check`] found of a message's changes to one document.
pub(crate) struct Checked {
    /// The vouchers that verified, to keep with the document.
    pub vouchers: Vec<Voucher>,
    /// The devices whose own signature is all that vouches for some of the changes: their
    /// users' rights to the document are checked (what the deployment vouches for, it took in
    /// under its own checks).
    pub authors: Vec<ActorId>,
}

/// Of `vouchers`, those that verify against `keys` (the others are dropped, not refused): what a
/// phone keeps of the signatures the server sends with its changes, which it does not check.
pub(crate) fn verified(doc: &DocId, vouchers: &[Voucher], keys: &impl SignerKeys) -> Vec<Voucher> {
    let key = |v: &Voucher| -> Option<VerifyingKey> {
        match v.signer().ok()? {
            Signer::Device(actor) => keys.device_signer(&actor).ok()??.key,
            Signer::Deployment(id) => trusted_deployment_key(keys.deployment_keys(), &id, v.seq).ok()?,
        }
    };
    vouchers.iter().filter(|v| key(v).is_some_and(|k| v.verify(doc, &k).is_ok())).cloned().collect()
}

/// The changes of `new` that `vouchers` cover: those reached from a voucher's heads through the
/// dependencies among `new`, of the voucher's device (`Some`) or of any (`None`, the deployment).
/// A device's voucher counts only when the change it signs has the voucher's sequence number.
pub(crate) fn coverage<'v>(
    new: &[Change],
    vouchers: impl IntoIterator<Item = (&'v Voucher, Option<ActorId>)>,
) -> HashSet<ChangeHash> {
    let by_hash: HashMap<ChangeHash, &Change> = new.iter().map(|c| (c.hash(), c)).collect();
    let mut covered = HashSet::new();
    for (v, device) in vouchers {
        let mut stack: Vec<ChangeHash> = Vec::new();
        for h in &v.heads {
            let Some(c) = by_hash.get(h) else { continue };
            if let Some(actor) = &device {
                if c.actor_id() != actor || c.seq() != v.seq {
                    continue;
                }
            }
            stack.push(*h);
        }
        let mut seen = HashSet::new();
        while let Some(h) = stack.pop() {
            if !seen.insert(h) {
                continue;
            }
            let Some(c) = by_hash.get(&h) else { continue };
            if device.as_ref().is_none_or(|a| c.actor_id() == a) {
                covered.insert(h);
            }
            stack.extend(c.deps().iter().filter(|d| by_hash.contains_key(d)));
        }
    }
    covered
}

/// The trusted deployment key with id `id`, if it was valid at `at`.
fn trusted_deployment_key(trusted: &[DeploymentKey], id: &str, at: u64) -> Result<Option<VerifyingKey>> {
    let at = i64::try_from(at).unwrap_or(i64::MAX);
    let Some(k) = trusted.iter().find(|k| k.id == id && k.valid_from <= at && k.valid_until.is_none_or(|u| at <= u))
    else {
        return Ok(None);
    };
    k.verifying_key().map(Some)
}

pub(crate) fn bad_signature(message: String) -> Error {
    Error::refused(RefusalCode::BadSignature, message)
}

mod hash_list {
    use automerge::ChangeHash;
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[ChangeHash], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|h| serde_bytes::Bytes::new(&h.0)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ChangeHash>, D::Error> {
        let raw = Vec::<serde_bytes::ByteBuf>::deserialize(d)?;
        if raw.len() > super::MAX_VOUCHER_HEADS {
            return Err(D::Error::custom("a signature signs too many heads"));
        }
        raw.into_iter()
            .map(|b| {
                <[u8; 32]>::try_from(b.as_slice())
                    .map(ChangeHash)
                    .map_err(|_| D::Error::custom("a hash is not 32 bytes"))
            })
            .collect()
    }
}
