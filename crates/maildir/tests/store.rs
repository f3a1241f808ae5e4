//! The store on the real file system: delivery, scan, open, sizes, flags, expunge, `tmp/`
//! cleaning, folders, UIDs, keywords, quota.

// Integration test: failures should stop the test with their message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::time::{Duration, SystemTime};

use mailroom_maildir::{
    Batch, DeliverError, Flags, FolderError, Maildir, NameEncoding, QuotaLimit, Subdir,
};

fn read_all(md: &Maildir, m: &mailroom_maildir::Message) -> Vec<u8> {
    let mut v = Vec::new();
    md.open_message(m).unwrap().read_to_end(&mut v).unwrap();
    v
}

#[test]
fn deliver_scan_open_flag_expunge() {
    let dir = mailroom_testkit::temp_dir();
    let md = Maildir::create(dir.path().join("M")).unwrap();
    let d = md.deliver(&b"Subject: a\r\n\r\nbody\r\n"[..]).unwrap();
    assert!(d.path.starts_with(dir.path().join("M/new")));
    assert!(d.key.as_str().ends_with(",S=20"), "{}", d.key);
    assert!(
        d.key
            .as_str()
            .contains(&format!("P{}Q", std::process::id()))
    );
    assert!(
        std::fs::read_dir(dir.path().join("M/tmp"))
            .unwrap()
            .next()
            .is_none()
    );

    let scan = md.scan().unwrap();
    assert_eq!(scan.messages.len(), 1);
    let m = &scan.messages[0];
    assert_eq!(m.subdir(), Subdir::New);
    assert_eq!(m.size(), Some(20));
    assert_eq!(md.size(m).unwrap(), 20);
    assert_eq!(read_all(&md, m), b"Subject: a\r\n\r\nbody\r\n");

    let m = md.move_to_cur(m).unwrap();
    assert_eq!(m.subdir(), Subdir::Cur);
    assert_eq!(m.file_name(), format!("{}:2,", d.key));
    let m = md.add_flags(&m, Flags::SEEN | Flags::REPLIED).unwrap();
    assert_eq!(m.file_name(), format!("{}:2,RS", d.key));
    let m = md.remove_flags(&m, Flags::REPLIED).unwrap();
    assert_eq!(m.file_name(), format!("{}:2,S", d.key));
    // A stale Message (old name) still opens: found again by key.
    let stale = scan.messages[0].clone();
    assert_eq!(read_all(&md, &stale), b"Subject: a\r\n\r\nbody\r\n");
    let found = md.find(d.key.as_str()).unwrap().unwrap();
    assert_eq!(found.flags(), Flags::SEEN);
    let mut text = String::new();
    md.open_key(d.key.as_str())
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert!(text.starts_with("Subject: a"));

    md.expunge(&stale).unwrap();
    assert!(md.scan().unwrap().messages.is_empty());
    assert!(matches!(
        md.expunge(&stale),
        Err(mailroom_maildir::ReadError::NotFound { .. })
    ));
}

#[test]
fn large_message_streams_and_limit_is_enforced() {
    let dir = mailroom_testkit::temp_dir();
    let mut md = Maildir::create(dir.path().join("M")).unwrap();
    let big = vec![b'x'; 3 * 1024 * 1024 + 17];
    let d = md.deliver(&big[..]).unwrap();
    assert_eq!(d.size, big.len() as u64);
    assert_eq!(std::fs::read(&d.path).unwrap(), big);
    md.set_max_message_size(Some(1000));
    let e = md.deliver(&big[..]).unwrap_err();
    assert!(matches!(e, DeliverError::TooLarge { limit: 1000 }), "{e}");
    assert!(e.is_permanent());
    assert_eq!(md.scan().unwrap().messages.len(), 1);
    assert!(
        std::fs::read_dir(dir.path().join("M/tmp"))
            .unwrap()
            .next()
            .is_none()
    );
}

#[test]
fn batch_many_messages_and_one_to_many() {
    let dir = mailroom_testkit::temp_dir();
    let a = Maildir::create(dir.path().join("a")).unwrap();
    let b = Maildir::create(dir.path().join("b")).unwrap();
    let mut batch = Batch::new();
    for i in 0..40 {
        batch.add(&a, format!("message {i}\r\n").as_bytes());
    }
    let many = batch.add_to_many(&[&a, &b], &b"to both\r\n"[..]);
    assert_eq!(many, vec![40, 41]);
    let results = batch.commit();
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(a.scan().unwrap().messages.len(), 41);
    let sb = b.scan().unwrap();
    assert_eq!(sb.messages.len(), 1);
    assert_eq!(read_all(&b, &sb.messages[0]), b"to both\r\n");
    // Dropping an uncommitted batch removes its temporary files.
    let mut batch = Batch::new();
    batch.add(&a, &b"never"[..]);
    drop(batch);
    assert!(
        std::fs::read_dir(dir.path().join("a/tmp"))
            .unwrap()
            .next()
            .is_none()
    );
    assert_eq!(a.scan().unwrap().messages.len(), 41);
}

#[test]
fn clean_tmp_removes_only_old_files() {
    let dir = mailroom_testkit::temp_dir();
    let md = Maildir::create(dir.path().join("M")).unwrap();
    std::fs::write(dir.path().join("M/tmp/leftover"), b"partial").unwrap();
    assert_eq!(md.clean_tmp(SystemTime::now()).unwrap(), 0);
    let later = SystemTime::now() + Duration::from_secs(37 * 3600);
    assert_eq!(md.clean_tmp(later).unwrap(), 1);
    assert!(
        std::fs::read_dir(dir.path().join("M/tmp"))
            .unwrap()
            .next()
            .is_none()
    );
}

#[test]
fn folders_in_modified_utf7_and_utf8() {
    let dir = mailroom_testkit::temp_dir();
    let root = Maildir::create(dir.path().join("M")).unwrap();
    let sent = root.create_folder("Sent").unwrap();
    sent.deliver(&b"x"[..]).unwrap();
    root.create_folder("Archive.2025").unwrap();
    root.create_folder("Entwürfe").unwrap();
    assert!(dir.path().join("M/.Entw&APw-rfe/cur").is_dir());
    assert!(dir.path().join("M/.Sent/maildirfolder").is_file());
    assert!(matches!(
        root.create_folder("Sent"),
        Err(FolderError::Exists { .. })
    ));
    let names: Vec<String> = root
        .list_folders()
        .unwrap()
        .folders
        .iter()
        .map(|f| f.to_string())
        .collect();
    assert_eq!(names, ["Archive.2025", "Entwürfe", "Sent"]);

    root.create_folder("Archive.2025.Q1").unwrap();
    root.rename_folder("Archive", "Old").unwrap_err(); // `.Archive` itself does not exist
    root.rename_folder("Archive.2025", "Old").unwrap();
    let names: Vec<String> = root
        .list_folders()
        .unwrap()
        .folders
        .iter()
        .map(|f| f.to_string())
        .collect();
    assert_eq!(names, ["Entwürfe", "Old", "Old.Q1", "Sent"]);
    root.delete_folder("Sent").unwrap();
    assert!(matches!(
        root.folder("Sent"),
        Err(FolderError::NotFound { .. })
    ));

    let mut utf8 = Maildir::create(dir.path().join("U")).unwrap();
    utf8.set_folder_encoding(NameEncoding::Utf8);
    utf8.create_folder("Entwürfe").unwrap();
    assert!(dir.path().join("U/.Entwürfe/cur").is_dir());
    assert_eq!(utf8.list_folders().unwrap().folders[0].as_str(), "Entwürfe");
}

#[test]
fn uids_are_stable_and_new_messages_get_higher_ones() {
    let dir = mailroom_testkit::temp_dir();
    let md = Maildir::create(dir.path().join("M")).unwrap();
    let a = md.deliver(&b"a"[..]).unwrap();
    let b = md.deliver(&b"b"[..]).unwrap();
    let list = md.sync_uids().unwrap();
    let (ua, ub) = (
        list.uid_of(a.key.as_str()).unwrap(),
        list.uid_of(b.key.as_str()).unwrap(),
    );
    assert_eq!((ua, ub), (1, 2));
    assert_eq!(list.next_uid, 3);
    let text = std::fs::read_to_string(dir.path().join("M/dovecot-uidlist")).unwrap();
    assert!(
        text.starts_with(&format!("3 V{} N3 G", list.uid_validity)),
        "{text}"
    );
    assert!(!dir.path().join("M/dovecot-uidlist.lock").exists());

    // Flag changes keep the UID; an expunged UID is never reused.
    let m = md.find(a.key.as_str()).unwrap().unwrap();
    md.add_flags(&m, Flags::SEEN).unwrap();
    md.expunge(&md.find(b.key.as_str()).unwrap().unwrap())
        .unwrap();
    let c = md.deliver(&b"c"[..]).unwrap();
    let list2 = md.sync_uids().unwrap();
    assert_eq!(list2.uid_validity, list.uid_validity);
    assert_eq!(list2.uid_of(a.key.as_str()), Some(1));
    assert_eq!(list2.uid_of(b.key.as_str()), None);
    assert_eq!(list2.uid_of(c.key.as_str()), Some(3));
}

#[test]
fn keywords_get_letters() {
    let dir = mailroom_testkit::temp_dir();
    let md = Maildir::create(dir.path().join("M")).unwrap();
    let junk = md.keyword_flag("Junk").unwrap();
    let fwd = md.keyword_flag("$Forwarded").unwrap();
    assert_eq!(junk, Flags::keyword(0).unwrap());
    assert_eq!(fwd, Flags::keyword(1).unwrap());
    assert_eq!(md.keyword_flag("junk").unwrap(), junk);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("M/dovecot-keywords")).unwrap(),
        "0 Junk\n1 $Forwarded\n"
    );
    md.deliver(&b"x"[..]).unwrap();
    let m = md.scan().unwrap().messages.remove(0);
    let m = md.add_flags(&m, junk | Flags::SEEN).unwrap();
    assert!(m.file_name().ends_with(":2,Sa"));
    let kw = md.read_keywords().unwrap();
    assert_eq!(kw.names_in(m.flags()), ["Junk"]);
    assert!(md.keyword_flag("bad keyword").is_err());
}

#[test]
fn quota_counts_and_refuses_over_quota() {
    let dir = mailroom_testkit::temp_dir();
    let mut md = Maildir::create(dir.path().join("M")).unwrap();
    md.set_quota_enforced(true);
    md.deliver(&[b'x'; 100][..]).unwrap();
    let q = md
        .set_quota_limit(QuotaLimit {
            bytes: Some(250),
            messages: Some(10),
        })
        .unwrap();
    assert_eq!((q.bytes, q.messages), (100, 1));
    md.deliver(&[b'y'; 100][..]).unwrap();
    let q = md.read_quota().unwrap().unwrap();
    assert_eq!((q.bytes, q.messages), (200, 2));
    let e = md.deliver(&[b'z'; 100][..]).unwrap_err();
    assert!(e.is_over_quota(), "{e}");
    assert!(e.to_string().contains("over quota"));
    assert_eq!(md.scan().unwrap().messages.len(), 2);
    let m = md.scan().unwrap().messages.remove(0);
    md.expunge(&m).unwrap();
    let q = md.read_quota().unwrap().unwrap();
    assert_eq!((q.bytes, q.messages), (100, 1));
    md.deliver(&[b'z'; 100][..]).unwrap();
    // Folders count towards the root's quota.
    let sent = md.create_folder("Sent").unwrap();
    sent.deliver(&[b's'; 10][..]).unwrap();
    let q = md.recalculate_quota().unwrap().unwrap();
    assert_eq!((q.bytes, q.messages), (210, 3));
    assert!(sent.deliver(&[b's'; 100][..]).unwrap_err().is_over_quota());
}

#[test]
fn one_recipient_over_quota_in_a_batch_fails_alone() {
    let dir = mailroom_testkit::temp_dir();
    let mut full = Maildir::create(dir.path().join("full")).unwrap();
    full.set_quota_enforced(true);
    full.set_quota_limit(QuotaLimit {
        bytes: Some(10),
        messages: None,
    })
    .unwrap();
    let ok = Maildir::create(dir.path().join("ok")).unwrap();
    let mut batch = Batch::new();
    let idx = batch.add_to_many(&[&full, &ok], &b"a message of more than ten bytes\r\n"[..]);
    let results = batch.commit();
    assert!(results[idx[0]].as_ref().unwrap_err().is_over_quota());
    assert!(results[idx[1]].is_ok());
    assert!(full.scan().unwrap().messages.is_empty());
    assert_eq!(ok.scan().unwrap().messages.len(), 1);
    assert!(
        std::fs::read_dir(dir.path().join("full/tmp"))
            .unwrap()
            .next()
            .is_none()
    );
}
