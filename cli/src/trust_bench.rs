//! `doorstep bench trust`: what the trust between devices costs, each figure against the same
//! work without it. Today that is the encrypted channel under phone-to-phone sessions
//! (PROTOCOL.md §9): its round trips and bytes against the batches the session carries, which
//! are what a session without the channel would send. The signed changes and the encrypted store
//! of the same work are not built yet, and their figures are not printed.

use std::time::Instant;

use doorstep_core::identity::DeploymentSigner;
use doorstep_core::sync::{PeerResponder, Session};
use doorstep_core::{DocId, OpenOptions, Result, Store, User, DAY_MS};
use rand::{rngs::StdRng, SeedableRng};

use crate::bench::{median, progress};
use crate::sample;

pub struct TrustSizes {
    /// Households of the grid both phones hold.
    households: usize,
    /// Idle sessions timed.
    sessions: usize,
}

impl TrustSizes {
    pub fn full() -> TrustSizes {
        TrustSizes { households: 300, sessions: 200 }
    }

    pub fn quick() -> TrustSizes {
        TrustSizes { households: 30, sessions: 20 }
    }
}

/// Each message of one session, as the initiator sent it and the responder answered.
struct Recorded {
    sent: Vec<Vec<u8>>,
    answers: Vec<Vec<u8>>,
}

fn session(a: &mut Store, b: &mut Store) -> Result<Recorded> {
    let mut session = Session::with_peer(a)?;
    let mut responder = PeerResponder::new(b)?;
    let mut r = Recorded { sent: Vec::new(), answers: Vec::new() };
    while let Some(msg) = session.next_message(a)? {
        let answer = responder.respond(b, &msg)?;
        session.receive(a, &answer)?;
        r.sent.push(msg);
        r.answers.push(answer);
    }
    Ok(r)
}

/// A phone of `user`, registered in the office's directory and certified by `signer`, as
/// enrolment with a server would leave it.
fn phone(
    dir: &std::path::Path,
    name: &str,
    office: &mut Store,
    signer: &DeploymentSigner,
    user: &User,
) -> Result<Store> {
    let mut p = Store::open(dir.join(format!("{name}.sqlite")), OpenOptions::default())?;
    office.enrol_device(&user.id, &p.actor_id(), Some(&p.device_public_key()?))?;
    let now = p.now();
    let cert = signer.issue(&p.device_public_key()?, &p.actor_id(), &user.id, now, now + 14 * DAY_MS)?;
    p.keep_certificate(&cert, &[signer.public(0)])?;
    Ok(p)
}

pub fn trust(sizes: &TrustSizes) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let mut office = Store::open(dir.join("office.sqlite"), OpenOptions::default())?;
    let d = sample::district(&mut office, 2, 2)?;
    let staff = sample::staff(&mut office, &d)?;
    let signer = DeploymentSigner::generate()?;
    let mut li = phone(dir, "li-na", &mut office, &signer, &staff.workers[0])?;
    let mut vol = phone(dir, "volunteer", &mut office, &signer, &staff.volunteer)?;
    let directory = office.save_document(&DocId::Directory)?;
    li.merge_document(&DocId::Directory, &directory)?;
    vol.merge_document(&DocId::Directory, &directory)?;
    progress(&format!("{} households in Li Na's grid, shared with the volunteer's phone", sizes.households));
    let mut rng = StdRng::seed_from_u64(12);
    for n in 0..sizes.households {
        sample::household(&mut li, &mut rng, &d.grids[0], d.micro_grids[0].first(), n, true)?;
    }
    session(&mut li, &mut vol)?;

    // An idle session (nothing changed): the handshake, then the hellos.
    let mut times = Vec::with_capacity(sizes.sessions);
    let mut last = None;
    for _ in 0..sizes.sessions {
        let t = Instant::now();
        let r = session(&mut li, &mut vol)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
        last = Some(r);
    }
    let r = last.expect("at least one session");
    let kind = |frame: &[u8]| frame[3];
    // Messages of the initiator that carry a batch (kinds 3 and 4): the session without the
    // channel sends exactly these, each answered once.
    let carrying = r.sent.iter().filter(|m| kind(m) >= 3).count();
    let third = r.sent.iter().find(|m| kind(m) == 3).expect("the handshake's last message");
    let msg3 = 4 + 2 + u16::from_be_bytes([third[4], third[5]]) as usize;
    let handshake_bytes = r.sent[0].len() + r.answers[0].len() + msg3;
    // A data frame's bytes beyond its batch: the header, and per Noise message its length, the
    // batch's length and the tag.
    let overhead = 4 + 2 + 4 + 16;
    println!("peer_idle_session_round_trips: {}", r.sent.len());
    println!("plain_idle_session_round_trips: {carrying} (the same batches without the channel)");
    println!("peer_handshake_round_trips: {} (added; target <= 1)", r.sent.len() - carrying);
    println!("peer_handshake_bytes: {handshake_bytes} B (its three messages; target <= 1024)");
    println!("peer_frame_overhead_bytes: {overhead} B (per message after the handshake, up to 64 KiB of batch)");
    println!("peer_idle_session_bytes: {} B", r.sent.iter().chain(&r.answers).map(Vec::len).sum::<usize>());
    println!("peer_idle_session_ms: {:.2} ms (median of {}; both phones' work)", median(times), sizes.sessions);
    Ok(())
}
