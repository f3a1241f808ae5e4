//! Acceptance 5: hostile storage. Truncated, bit-flipped and garbage entries are quarantined on
//! open with a clear log line; nothing panics and nothing of them is delivered.

// Tests unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use common::{config, content, envelope, open, read_back, start};
use mailroom_queue::sim::SimFs;
use mailroom_queue::{Fs, ManualClock, Queue, QueueId};

type Messages = Vec<(QueueId, Vec<u8>)>;

/// Eight acknowledged messages over a few segments, one with external content.
fn populated() -> (SimFs, ManualClock, Messages) {
    let fs = SimFs::new();
    let clock = ManualClock::new(start());
    let q = open(&fs, &clock);
    let mut msgs = Vec::new();
    for i in 0..8 {
        let len = if i == 3 { 3000 } else { 300 + 100 * i };
        let body = content(&format!("m{i}"), len);
        let id = q.enqueue(envelope(2, "example.net"), &body[..]).unwrap();
        msgs.push((id, body));
    }
    (fs, clock, msgs)
}

fn segments(fs: &SimFs) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs
        .read_dir(Path::new("/q/seg"))
        .unwrap()
        .into_iter()
        .map(|n| Path::new("/q/seg").join(n))
        .collect();
    v.sort();
    v
}

/// Opens with a logger that keeps the lines.
fn open_logged(fs: &SimFs, clock: &ManualClock) -> (Queue<SimFs>, Vec<String>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    let mut cfg = config(clock);
    cfg.logger = Arc::new(move |l: &str| sink.lock().unwrap().push(l.to_owned()));
    let q = Queue::open(fs.clone(), "/q", cfg).unwrap();
    let lines = lines.lock().unwrap().clone();
    (q, lines)
}

/// Every message still listed is intact and every delivery attempt sees only intact messages;
/// returns how many of `msgs` survived.
fn check_intact(q: &Queue<SimFs>, msgs: &Messages) -> usize {
    let mut survived = 0;
    for s in q.list() {
        let (_, body) = msgs
            .iter()
            .find(|(id, _)| *id == s.id)
            .unwrap_or_else(|| panic!("unknown message {} appeared", s.id));
        assert_eq!(
            &read_back(q, s.id).unwrap(),
            body,
            "damaged message {} is deliverable",
            s.id
        );
        survived += 1;
    }
    while let Some(lease) = q.take() {
        assert!(msgs.iter().any(|(id, _)| *id == lease.id()));
    }
    survived
}

/// Whether `cut` falls on a record boundary of segment `data` (or at the end of its header).
fn on_boundary(data: &[u8], cut: usize) -> bool {
    let mut pos = 32;
    while pos < cut {
        let len = u32::from_le_bytes(data[pos + 8..pos + 12].try_into().unwrap()) as usize;
        pos += 16 + len + 4;
    }
    pos == cut
}

#[test]
fn truncated_segments() {
    let (fs, _, _) = populated();
    let segs = segments(&fs);
    assert!(segs.len() >= 2, "the fixture spans segments");
    for (si, seg) in segs.iter().enumerate() {
        let original = fs.contents(seg).unwrap();
        let len = original.len();
        let step = if si + 1 == segs.len() { 1 } else { 7 };
        for cut in (0..len).step_by(step) {
            let (fs, clock, msgs) = populated();
            let mut data = fs.contents(seg).unwrap();
            data.truncate(cut);
            fs.overwrite(seg, data).unwrap();
            let (q, lines) = open_logged(&fs, &clock);
            let survived = check_intact(&q, &msgs);
            assert!(
                survived < msgs.len() || cut == 0,
                "truncation went unnoticed"
            );
            // A cut at a record boundary of the newest segment looks like a shorter log: no
            // checksum can see it. Anywhere else it is found and logged.
            if si + 1 < segs.len() || !on_boundary(&original, cut) {
                assert!(
                    !lines.is_empty(),
                    "no log line for a cut at {cut} of {}",
                    seg.display()
                );
                let r = q.recovery();
                assert!(!r.quarantined.is_empty() || !r.removed_incomplete.is_empty());
            }
            // Reopening again finds a clean queue: the damage was dealt with once.
            drop(q);
            let (q, _) = open_logged(&fs, &clock);
            assert_eq!(check_intact(&q, &msgs), survived);
        }
    }
}

#[test]
fn bit_flips_lose_at_most_the_damaged_record() {
    let (fs, _, _) = populated();
    let segs = segments(&fs);
    for seg in &segs {
        let len = fs.contents(seg).unwrap().len();
        for byte in (0..len).step_by(5) {
            let bit = byte % 8;
            let (fs, clock, msgs) = populated();
            let mut data = fs.contents(seg).unwrap();
            data[byte] ^= 1 << bit;
            fs.overwrite(seg, data).unwrap();
            let (q, lines) = open_logged(&fs, &clock);
            let survived = check_intact(&q, &msgs);
            assert!(
                survived < msgs.len(),
                "flip at {byte} of {} went unnoticed",
                seg.display()
            );
            if byte >= 32 {
                assert_eq!(
                    survived,
                    msgs.len() - 1,
                    "flip at {byte} cost more than one message"
                );
            }
            assert!(
                lines.iter().any(|l| l.contains(&*seg.to_string_lossy())),
                "log does not name the file: {lines:?}"
            );
            assert!(
                !q.recovery().quarantined.is_empty(),
                "flip at {byte} not quarantined"
            );
            assert!(!q.corrupt().unwrap().is_empty());
        }
    }
}

#[test]
fn garbage_files_are_quarantined_and_never_delivered() {
    let (fs, clock, msgs) = populated();
    let external = msgs[3].0;
    let mut seed = 7u64;
    let mut rand = || {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) as u8
    };
    let garbage: Vec<u8> = (0..5000).map(|_| rand()).collect();
    let put = |path: &str, bytes: &[u8]| {
        let mut f = fs.create_new(Path::new(path)).unwrap();
        std::io::Write::write_all(&mut f, bytes).unwrap();
    };
    put("/q/seg/0000000000000000.log", &garbage);
    put("/q/seg/notes.txt", b"hello");
    put("/q/seg/00000000000000FF.log", b"MRQ");
    put("/q/body/not-an-id", &garbage[..100]);
    put("/q/body/0000000000000001", &garbage[..300]);
    put("/q/body/0000000000000002.tmp", &garbage[..300]);
    // Damage the external content of a real message.
    let path = PathBuf::from(format!("/q/body/{external}"));
    let mut data = fs.contents(&path).unwrap();
    data[100] ^= 0x20;
    fs.overwrite(&path, data).unwrap();

    let (q, lines) = open_logged(&fs, &clock);
    for l in &lines {
        println!("log: {l}");
    }
    let r = q.recovery();
    println!("{r:#?}");
    let survivors = check_intact(&q, &msgs);
    assert_eq!(survivors, msgs.len() - 1);
    assert!(q.show(external).is_none(), "damaged content is deliverable");
    let corrupt = q.corrupt().unwrap();
    for name in [
        "0000000000000000.log",
        "notes.txt",
        "not-an-id",
        &external.to_string(),
    ] {
        assert!(
            corrupt.iter().any(|c| c == name),
            "{name} not in corrupt/: {corrupt:?}"
        );
        assert!(
            lines.iter().any(|l| l.contains(name)),
            "no log line names {name}"
        );
    }
    assert!(
        r.removed_incomplete
            .iter()
            .any(|l| l.contains("0000000000000002.tmp"))
    );
    assert!(
        r.removed_incomplete
            .iter()
            .any(|l| l.contains("00000000000000FF.log"))
    );
    // The queue works on.
    let id = q
        .enqueue(envelope(1, "example.com"), &b"a: b\r\n\r\nc"[..])
        .unwrap();
    assert_eq!(read_back(&q, id).unwrap(), b"a: b\r\n\r\nc");
}

#[test]
fn random_segments_never_panic() {
    let mut seed = 99u64;
    let mut rand = || {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        seed >> 33
    };
    let (fs, _, _) = populated();
    let real = fs.contents(&segments(&fs)[0]).unwrap();
    for round in 0..300 {
        let fs = SimFs::new();
        let clock = ManualClock::new(start());
        drop(open(&fs, &clock));
        // Start from a real segment (so headers are valid) and splice random bytes in.
        let mut data = real.clone();
        for _ in 0..(rand() % 6 + 1) {
            let at = (rand() as usize) % data.len();
            let n = (rand() as usize) % 40;
            for i in at..(at + n).min(data.len()) {
                data[i] = rand() as u8;
            }
        }
        if round % 3 == 0 {
            data.truncate((rand() as usize) % data.len());
        }
        let mut f = fs
            .create_new(Path::new("/q/seg/0000000000000001.log"))
            .unwrap();
        std::io::Write::write_all(&mut f, &data).unwrap();
        drop(f);
        let q = open(&fs, &clock);
        for s in q.list() {
            let _ = read_back(&q, s.id);
        }
    }
}
