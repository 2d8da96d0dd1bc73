//! The secure channel under a phone-to-phone session (docs/PROTOCOL.md §9).
//!
//! Two phones meet in a stairwell over Bluetooth or Wi-Fi Direct, which anyone nearby can
//! record, and anyone with a phone can answer. So before a phone offers anything, each side
//! proves that it holds the key its device certificate names, and checks the other's
//! certificate offline: signed by a deployment key this phone pinned at enrolment, valid by this
//! phone's clock. Every message after that is encrypted and authenticated, and read in order.
//!
//! The channel is the Noise Protocol Framework's `Noise_XX_25519_ChaChaPoly_SHA256`, through the
//! `snow` crate (a maintained implementation tested against the specification's vectors), not a
//! construction of our own. XX, because neither phone knows the other's key beforehand. Each
//! side makes a fresh X25519 static key for the session and sends, encrypted inside the
//! handshake, its certificate and its device key's signature over that static key
//! ([`Certificate::verify_session_key`]): Noise proves that whoever completes the handshake holds
//! the static key, the signature ties that key to the certified device. A recorded handshake
//! played again does not decrypt against the new ephemeral keys; a message altered, cut short,
//! played twice, dropped or put out of order does not decrypt under the nonce it meets.
//!
//! The handshake costs one round trip ahead of the session's hello:
//! 1. initiator → frame kind 1: Noise `e`;
//! 2. responder → kind 2: `e, ee, s, es`, its credential as the payload;
//! 3. initiator → kind 3: `s, se`, its credential, then its first batch, encrypted;
//!
//! and then batches both ways in kind 4 frames. The responder names itself (its certificate) to
//! whoever sends a first message, as XX does; the initiator names itself only to a responder
//! that proved its own certificate. Neither says more than its device and user ids.
//!
//! A frame is `D`, `N`, the version, the kind; a handshake message with a two-byte length; then
//! (kinds 3 and 4) Noise messages of at most 65,535 bytes, each with a two-byte length, carrying
//! the four-byte length of the batch and the batch ([`super::wire`]).

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use snow::{HandshakeState, TransportState};

use super::replica::Rules;
use super::wire::{Batch, MAX_MESSAGE_BYTES};
use crate::error::{Error, RefusalCode, Result};
use crate::identity::Certificate;
use crate::ids::UserId;

const NOISE: &str = "Noise_XX_25519_ChaChaPoly_SHA256";
/// Mixed into the handshake: a phone speaking another protocol or version fails it.
const PROLOGUE: &[u8] = b"doorstep peer session v1";
const MAGIC: [u8; 2] = *b"DN";
const VERSION: u8 = 1;
const HELLO: u8 = 1;
const PROOF: u8 = 2;
const PROOF_AND_DATA: u8 = 3;
const DATA: u8 = 4;
/// Noise's largest message, and its authentication tag.
const NOISE_MAX: usize = 65_535;
const TAG: usize = 16;
const CHUNK: usize = NOISE_MAX - TAG;
/// The largest frame: the largest batch, its length, and every chunk's length and tag.
pub const MAX_FRAME_BYTES: usize =
    4 + 2 + NOISE_MAX + 4 + MAX_MESSAGE_BYTES + (MAX_MESSAGE_BYTES / CHUNK + 2) * (2 + TAG);

/// Who this side is in a handshake: its certificate, and its device key's proof of the session's
/// static key. A phone's store; a test's forged identity (`crate::hooks`).
pub(crate) trait Own {
    fn own_certificate(&self) -> Result<Certificate>;
    fn prove_session_key(&self, session_key: &[u8]) -> Result<[u8; 64]>;
}

impl<R: Rules> Own for R {
    fn own_certificate(&self) -> Result<Certificate> {
        self.certificate()?.ok_or_else(no_certificate)
    }

    fn prove_session_key(&self, session_key: &[u8]) -> Result<[u8; 64]> {
        self.session_key_proof(session_key)
    }
}

/// The other phone, as its handshake proved it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ProvedPeer {
    /// Its Automerge actor id, hex.
    pub actor: String,
    pub user: UserId,
}

/// What each side sends inside the handshake: its certificate, field by field as bytes where it
/// can (a handshake stays under a kilobyte), and its proof of the session's static key.
#[derive(Serialize, Deserialize)]
struct Credential(
    String,  // certificate id
    ByteBuf, // device key, 32 bytes
    ByteBuf, // actor id, 16 bytes
    String,  // user id
    i64,     // issued at
    i64,     // expires at
    ByteBuf, // issuer's key id, 8 bytes
    ByteBuf, // issuer's signature, 64 bytes
    ByteBuf, // the device key's signature over the session's static key, 64 bytes
);

impl Credential {
    fn of(cert: &Certificate, proof: [u8; 64]) -> Result<Credential> {
        let bytes = |hex_text: &str| {
            hex::decode(hex_text)
                .map(ByteBuf::from)
                .map_err(|_| Error::protocol("this phone's certificate is not stored as hexadecimal"))
        };
        Ok(Credential(
            cert.id.clone(),
            bytes(&cert.device_key)?,
            bytes(&cert.actor)?,
            cert.user.to_string(),
            cert.issued_at,
            cert.expires_at,
            bytes(&cert.issuer)?,
            bytes(&cert.signature)?,
            ByteBuf::from(proof.to_vec()),
        ))
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(self, &mut out).expect("writing CBOR to memory cannot fail");
        out
    }

    fn decode(bytes: &[u8]) -> Result<(Certificate, [u8; 64])> {
        let bad = || Error::protocol("the other phone's credential could not be read");
        let mut reader = bytes;
        let c: Credential = ciborium::from_reader(&mut reader).map_err(|_| bad())?;
        let sizes = [(c.1.len(), 32), (c.2.len(), 16), (c.6.len(), 8), (c.7.len(), 64)];
        if !reader.is_empty() || sizes.iter().any(|(got, want)| got != want) || c.0.len() > 64 || c.3.len() > 64 {
            return Err(bad());
        }
        let proof: [u8; 64] = c.8.into_vec().try_into().map_err(|_| bad())?;
        let cert = Certificate {
            id: c.0,
            device_key: hex::encode(c.1),
            actor: hex::encode(c.2),
            user: UserId::parse(&c.3).map_err(|_| bad())?,
            issued_at: c.4,
            expires_at: c.5,
            issuer: hex::encode(c.6),
            signature: hex::encode(c.7),
        };
        Ok((cert, proof))
    }
}

enum State {
    /// Nothing exchanged yet.
    Start,
    /// Between handshake messages.
    Handshake(Box<Pending>),
    Open(Box<TransportState>),
    /// A handshake that failed: nothing more is sent or taken.
    Failed,
}

/// A handshake under way, with this side's static public key (which the state does not give
/// back, and which this side's credential signs).
struct Pending {
    hs: HandshakeState,
    public: Vec<u8>,
}

/// One side's channel for one session.
pub(crate) struct Channel {
    state: State,
}

impl Channel {
    pub fn new() -> Channel {
        Channel { state: State::Start }
    }

    /// Whether nothing was exchanged yet.
    pub fn is_fresh(&self) -> bool {
        matches!(self.state, State::Start)
    }

    /// Whether the handshake is done, so what this side sends is encrypted.
    pub fn is_open(&self) -> bool {
        matches!(self.state, State::Open(_))
    }

    /// Initiator: the handshake's first message.
    pub fn hello(&mut self) -> Result<Vec<u8>> {
        let State::Start = self.state else { return Err(Error::protocol("the handshake has begun already")) };
        let mut p = handshake(true)?;
        let mut msg = vec![0u8; NOISE_MAX];
        let n = p.hs.write_message(&[], &mut msg).map_err(noise)?;
        self.state = State::Handshake(Box::new(p));
        Ok(frame(HELLO, Some(&msg[..n]), &[]))
    }

    /// Responder: reads the initiator's first message and answers with this phone's credential.
    pub fn answer_hello(&mut self, own: &dyn Own, bytes: &[u8]) -> Result<Vec<u8>> {
        let State::Start = self.state else { return Err(Error::protocol("the handshake has begun already")) };
        self.state = State::Failed;
        let (msg, rest) = split(bytes, HELLO)?;
        if !rest.is_empty() {
            return Err(Error::protocol("the handshake's first message carries data"));
        }
        let mut p = handshake(false)?;
        let mut payload = vec![0u8; NOISE_MAX];
        if p.hs.read_message(msg, &mut payload).map_err(noise)? != 0 {
            return Err(Error::protocol("the handshake's first message carries data"));
        }
        let out = write_with_credential(&mut p, own)?;
        self.state = State::Handshake(Box::new(p));
        Ok(frame(PROOF, Some(&out), &[]))
    }

    /// Initiator: reads the responder's answer and checks who it proved to be.
    pub fn read_proof<R: Rules>(&mut self, store: &R, bytes: &[u8]) -> Result<ProvedPeer> {
        let State::Handshake(mut p) = std::mem::replace(&mut self.state, State::Failed) else {
            return Err(Error::protocol("no handshake is waiting for the other phone's proof"));
        };
        let (msg, rest) = split(bytes, PROOF)?;
        if !rest.is_empty() {
            return Err(Error::protocol("the handshake's second message carries data"));
        }
        let peer = read_credential(&mut p.hs, store, msg)?;
        self.state = State::Handshake(p);
        Ok(peer)
    }

    /// Responder: reads the initiator's last handshake message and its first batch.
    pub fn read_proof_and_open<R: Rules>(&mut self, store: &R, bytes: &[u8]) -> Result<(ProvedPeer, Vec<u8>)> {
        let State::Handshake(mut p) = std::mem::replace(&mut self.state, State::Failed) else {
            return Err(Error::protocol("no handshake is waiting for the other phone's proof"));
        };
        let (msg, rest) = split(bytes, PROOF_AND_DATA)?;
        let peer = read_credential(&mut p.hs, store, msg)?;
        let mut transport = p.hs.into_transport_mode().map_err(noise)?;
        let batch = open_chunks(&mut transport, rest)?;
        self.state = State::Open(Box::new(transport));
        Ok((peer, batch))
    }

    /// Encrypts a batch; the initiator's first also finishes the handshake with its credential.
    pub fn seal(&mut self, own: &dyn Own, batch: &[u8]) -> Result<Vec<u8>> {
        match std::mem::replace(&mut self.state, State::Failed) {
            State::Handshake(mut p) if p.hs.is_initiator() && p.hs.is_my_turn() => {
                let msg = write_with_credential(&mut p, own)?;
                let mut transport = p.hs.into_transport_mode().map_err(noise)?;
                let chunks = seal_chunks(&mut transport, batch)?;
                self.state = State::Open(Box::new(transport));
                Ok(frame(PROOF_AND_DATA, Some(&msg), &chunks))
            }
            State::Open(mut transport) => {
                let chunks = seal_chunks(&mut transport, batch)?;
                self.state = State::Open(transport);
                Ok(frame(DATA, None, &chunks))
            }
            _ => Err(Error::protocol("the channel to the other phone is not open")),
        }
    }

    /// Decrypts a batch of an open channel.
    pub fn open(&mut self, bytes: &[u8]) -> Result<Vec<u8>> {
        let State::Open(transport) = &mut self.state else {
            return Err(Error::protocol("the channel to the other phone is not open"));
        };
        let (_, chunks) = split(bytes, DATA)?;
        open_chunks(transport, chunks)
    }
}

/// What bytes that are not a frame of this channel say: the other phone's refusal sent in the
/// clear (before it had a channel to send it in), which ends the session with its code; anything
/// else (an older phone's plain batch) is refused. `None`: the bytes are a frame.
pub(crate) fn plain_refusal(bytes: &[u8]) -> Option<Error> {
    if bytes.starts_with(&MAGIC) {
        return None;
    }
    let refusal = (bytes.len() <= MAX_PLAIN_REFUSAL_BYTES).then(|| Batch::decode(bytes).ok()).flatten();
    Some(match refusal.and_then(|b| b.refused) {
        Some(r) => Error::refused(
            peer_code(&r.code),
            format!("(not authenticated) {}", super::exchange::cut_refusal(r.message)),
        ),
        None => Error::protocol(
            "the other phone's message is not in an encrypted session (it runs an older Doorstep: update it)",
        ),
    })
}

/// The largest refusal read in the clear (a code and a short text).
const MAX_PLAIN_REFUSAL_BYTES: usize = 1024;

/// A refusal code as another phone may give it: the codes of the server's own answers, which make
/// an app act (enrol again, erase), are only the server's to give.
pub(crate) fn peer_code(code: &str) -> RefusalCode {
    match RefusalCode::parse(code) {
        RefusalCode::Unauthorized | RefusalCode::Revoked | RefusalCode::BadProof => RefusalCode::Refused,
        other => other,
    }
}

fn handshake(initiator: bool) -> Result<Pending> {
    let params = NOISE.parse().expect("a pattern snow knows");
    let builder = snow::Builder::new(params);
    // A static key for this session only; the device key vouches for it.
    let keys = builder.generate_keypair().map_err(noise)?;
    let builder = builder.local_private_key(&keys.private).map_err(noise)?.prologue(PROLOGUE).map_err(noise)?;
    let hs = if initiator { builder.build_initiator() } else { builder.build_responder() }.map_err(noise)?;
    Ok(Pending { hs, public: keys.public })
}

/// Writes this side's handshake message that sends its static key, with its credential.
fn write_with_credential(p: &mut Pending, own: &dyn Own) -> Result<Vec<u8>> {
    let cert = own.own_certificate()?;
    let credential = Credential::of(&cert, own.prove_session_key(&p.public)?)?.encode();
    let mut msg = vec![0u8; NOISE_MAX];
    let n = p.hs.write_message(&credential, &mut msg).map_err(noise)?;
    msg.truncate(n);
    Ok(msg)
}

fn read_credential<R: Rules>(hs: &mut HandshakeState, store: &R, msg: &[u8]) -> Result<ProvedPeer> {
    let mut payload = vec![0u8; NOISE_MAX];
    let n = hs.read_message(msg, &mut payload).map_err(|_| undecryptable())?;
    let (cert, proof) = Credential::decode(&payload[..n])?;
    let session_key = hs.get_remote_static().ok_or_else(|| Error::protocol("the other phone sent no session key"))?;
    let trusted = store.deployment_keys()?;
    if trusted.is_empty() {
        return Err(no_certificate());
    }
    cert.verify_issuer(&trusted)?;
    // Signed by the deployment: the device it names may be named in the refusal.
    let naming = |e: Error| match e {
        Error::Refused { code, message } => {
            Error::Refused { code, message: format!("{message} (device {})", cert.actor) }
        }
        e => e,
    };
    cert.verify(&trusted, store.now()).map_err(naming)?;
    cert.verify_session_key(session_key, &proof).map_err(naming)?;
    Ok(ProvedPeer { actor: cert.actor, user: cert.user })
}

/// Whether this phone can take part in a session: it holds a certificate and pinned keys.
pub(crate) fn ready<R: Rules>(store: &R) -> Result<()> {
    if store.certificate()?.is_none() || store.deployment_keys()?.is_empty() {
        return Err(no_certificate());
    }
    Ok(())
}

fn no_certificate() -> Error {
    crate::identity::bad_certificate(
        "this phone",
        "holds no device certificate yet: sync with the server once before syncing with another phone",
    )
}

fn noise(e: snow::Error) -> Error {
    Error::protocol(format!("the encrypted session failed ({e})"))
}

fn undecryptable() -> Error {
    Error::protocol("a message of the other phone does not decrypt: altered, played again, or out of order")
}

fn frame(kind: u8, handshake: Option<&[u8]>, chunks: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + 2 + handshake.map_or(0, <[u8]>::len) + chunks.len());
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(kind);
    if let Some(msg) = handshake {
        out.extend_from_slice(&(msg.len() as u16).to_be_bytes());
        out.extend_from_slice(msg);
    }
    out.extend_from_slice(chunks);
    out
}

/// The handshake message (kinds 1 to 3) and the chunks after it of a frame of `kind`.
fn split(bytes: &[u8], kind: u8) -> Result<(&[u8], &[u8])> {
    let [m0, m1, version, got, rest @ ..] = bytes else { return Err(Error::protocol("the message is cut short")) };
    if [*m0, *m1] != MAGIC {
        return Err(Error::protocol("the message is not of a Doorstep peer session"));
    }
    if *version != VERSION {
        return Err(Error::protocol(format!(
            "the other phone speaks peer session version {version}, this one {VERSION}"
        )));
    }
    if *got != kind {
        return Err(Error::protocol(format!("a message of kind {got} came where one of kind {kind} belongs")));
    }
    // The handshake's first two messages carry keys and a credential only.
    let limit = match kind {
        HELLO => 64,
        PROOF => 4 + 2 + NOISE_MAX,
        _ => MAX_FRAME_BYTES,
    };
    if bytes.len() > limit {
        return Err(Error::protocol(format!("the message is over the limit of {limit} bytes for its kind")));
    }
    if kind == DATA {
        return Ok((&[], rest));
    }
    take_sized(rest)
}

fn take_sized(bytes: &[u8]) -> Result<(&[u8], &[u8])> {
    let cut = || Error::protocol("the message is cut short");
    let [a, b, rest @ ..] = bytes else { return Err(cut()) };
    let n = u16::from_be_bytes([*a, *b]) as usize;
    if rest.len() < n {
        return Err(cut());
    }
    Ok(rest.split_at(n))
}

fn seal_chunks(transport: &mut TransportState, batch: &[u8]) -> Result<Vec<u8>> {
    if batch.len() > MAX_MESSAGE_BYTES {
        return Err(Error::protocol(format!("a message over the limit of {MAX_MESSAGE_BYTES} bytes")));
    }
    let mut plain = Vec::with_capacity(4 + batch.len());
    plain.extend_from_slice(&(batch.len() as u32).to_be_bytes());
    plain.extend_from_slice(batch);
    let mut out = Vec::with_capacity(plain.len() + plain.len().div_ceil(CHUNK) * (2 + TAG));
    let mut sealed = vec![0u8; NOISE_MAX];
    for chunk in plain.chunks(CHUNK) {
        let n = transport.write_message(chunk, &mut sealed).map_err(noise)?;
        out.extend_from_slice(&(n as u16).to_be_bytes());
        out.extend_from_slice(&sealed[..n]);
    }
    Ok(out)
}

fn open_chunks(transport: &mut TransportState, mut bytes: &[u8]) -> Result<Vec<u8>> {
    // The frame's size (checked in `split`) bounds what this takes.
    let mut plain = Vec::with_capacity(bytes.len());
    let mut chunk = vec![0u8; NOISE_MAX];
    while !bytes.is_empty() {
        let (sealed, rest) = take_sized(bytes)?;
        bytes = rest;
        let n = transport.read_message(sealed, &mut chunk).map_err(|_| undecryptable())?;
        plain.extend_from_slice(&chunk[..n]);
    }
    let len = plain.get(..4).map(|b| u32::from_be_bytes(b.try_into().expect("four bytes")) as usize);
    match len {
        Some(len) if plain.len().checked_sub(4) == Some(len) => {
            plain.drain(..4);
            Ok(plain)
        }
        _ => Err(Error::protocol("the message is shorter than the length it gives (cut short on the way)")),
    }
}
