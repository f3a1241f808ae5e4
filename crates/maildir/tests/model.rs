//! Model test: random sequences of operations on a Maildir (on the simulated file system)
//! against a plain in-memory model; after every step the scan, the flags, the contents and the
//! UIDs agree with the model.

// Integration test: failures should stop the test with their message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::Read;

use mailroom_maildir::sim::SimFs;
use mailroom_maildir::{Flags, Maildir, Subdir};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Deliver(Vec<u8>),
    SetFlags(usize, u32),
    MoveToCur(usize),
    Expunge(usize),
    SyncUids,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => proptest::collection::vec(any::<u8>(), 0..200).prop_map(Op::Deliver),
        2 => (any::<usize>(), any::<u32>()).prop_map(|(i, f)| Op::SetFlags(i, f)),
        1 => any::<usize>().prop_map(Op::MoveToCur),
        1 => any::<usize>().prop_map(Op::Expunge),
        1 => Just(Op::SyncUids),
    ]
}

#[derive(Debug, Clone)]
struct Model {
    body: Vec<u8>,
    flags: Flags,
    in_cur: bool,
    uid: Option<u32>,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn maildir_matches_its_model(ops in proptest::collection::vec(op(), 1..40)) {
        let fs = SimFs::new();
        let md = Maildir::create_with(fs, "/M").unwrap();
        let mut model: BTreeMap<String, Model> = BTreeMap::new();
        let mut next_uid = 1;
        for op in ops {
            let keys: Vec<String> = model.keys().cloned().collect();
            let pick = |i: usize| keys.get(i % keys.len().max(1)).cloned();
            match op {
                Op::Deliver(body) => {
                    let d = md.deliver(&body[..]).unwrap();
                    prop_assert_eq!(d.size, body.len() as u64);
                    model.insert(d.key.to_string(), Model { body, flags: Flags::empty(), in_cur: false, uid: None });
                }
                Op::SetFlags(i, bits) => {
                    let Some(key) = pick(i) else { continue };
                    // Six system flags and a few keywords.
                    let mut flags = Flags::empty();
                    for (n, f) in [Flags::DRAFT, Flags::FLAGGED, Flags::PASSED, Flags::REPLIED, Flags::SEEN, Flags::TRASHED].into_iter().enumerate() {
                        if bits & (1 << n) != 0 { flags = flags.union(f); }
                    }
                    for k in 0..3u8 {
                        if bits & (1 << (6 + k)) != 0 { flags = flags.union(Flags::keyword(k).unwrap()); }
                    }
                    let m = md.find(&key).unwrap().unwrap();
                    let m = md.set_flags(&m, flags).unwrap();
                    prop_assert_eq!(m.flags(), flags);
                    let e = model.get_mut(&key).unwrap();
                    e.flags = flags;
                    e.in_cur = true;
                }
                Op::MoveToCur(i) => {
                    let Some(key) = pick(i) else { continue };
                    let m = md.find(&key).unwrap().unwrap();
                    md.move_to_cur(&m).unwrap();
                    model.get_mut(&key).unwrap().in_cur = true;
                }
                Op::Expunge(i) => {
                    let Some(key) = pick(i) else { continue };
                    let m = md.find(&key).unwrap().unwrap();
                    md.expunge(&m).unwrap();
                    model.remove(&key);
                }
                Op::SyncUids => {
                    let list = md.sync_uids().unwrap();
                    let mut fresh: Vec<&String> = model.iter().filter(|(_, m)| m.uid.is_none()).map(|(k, _)| k).collect();
                    fresh.sort();
                    let fresh: Vec<String> = fresh.into_iter().cloned().collect();
                    for key in fresh {
                        model.get_mut(&key).unwrap().uid = Some(next_uid);
                        next_uid += 1;
                    }
                    prop_assert_eq!(list.entries().len(), model.len());
                    for (key, m) in &model {
                        prop_assert_eq!(list.uid_of(key), m.uid);
                    }
                    prop_assert_eq!(list.next_uid, next_uid);
                }
            }
            // The Maildir agrees with the model.
            let scan = md.scan().unwrap();
            prop_assert!(scan.skipped.is_empty());
            prop_assert_eq!(scan.messages.len(), model.len());
            for msg in &scan.messages {
                let m = &model[msg.key().as_str()];
                prop_assert_eq!(msg.flags(), m.flags);
                prop_assert_eq!(msg.subdir() == Subdir::Cur, m.in_cur);
                prop_assert_eq!(msg.size(), Some(m.body.len() as u64));
                let mut body = Vec::new();
                md.open_message(msg).unwrap().read_to_end(&mut body).unwrap();
                prop_assert_eq!(&body, &m.body);
            }
        }
    }
}
