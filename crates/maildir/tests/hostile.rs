//! Hostile input (acceptance 6): hostile folder names, file names in `cur/` without `:2,`,
//! huge names, invalid UTF-8, a missing `tmp/`, malformed control files, random bytes: clear
//! errors, no panic.

// Integration test: failures should stop the test with their message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use mailroom_maildir::sim::SimFs;
use mailroom_maildir::{
    DeliverStep, FolderError, Fs, Keywords, Maildir, OpenError, UidList, decode_mutf7, encode_mutf7,
};

use proptest::prelude::*;

#[test]
fn hostile_folder_names_are_refused_with_a_reason() {
    let dir = mailroom_testkit::temp_dir();
    let root = Maildir::create(dir.path().join("M")).unwrap();
    let long = "n".repeat(300);
    let deep = vec!["d"; 17].join(".");
    for name in [
        "",
        "..",
        "../etc",
        "a/b",
        "/abs",
        "~root",
        "a..b",
        ".hidden",
        "trail.",
        "tmp",
        "new",
        "x.cur",
        "Tmp",
        "bell\u{7}",
        "nul\u{0}",
        "line\nbreak",
        &long,
        &deep,
    ] {
        match root.create_folder(name) {
            Err(FolderError::InvalidName { reason, .. }) => assert!(!reason.is_empty()),
            other => panic!("{name:?}: {other:?}"),
        }
    }
    // Nothing was created outside or inside.
    let entries: Vec<_> = std::fs::read_dir(dir.path().join("M")).unwrap().collect();
    assert_eq!(entries.len(), 3, "only tmp, new, cur");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    // A name whose modified UTF-7 form is too long for a directory name.
    let wide = "é".repeat(120); // 240 bytes of UTF-8, 323 of modified UTF-7
    assert!(matches!(
        root.create_folder(&wide),
        Err(FolderError::InvalidName { .. })
    ));
}

#[test]
fn odd_names_in_cur_and_new() {
    let dir = mailroom_testkit::temp_dir();
    let md = Maildir::create(dir.path().join("M")).unwrap();
    let cur = dir.path().join("M/cur");
    let new = dir.path().join("M/new");
    std::fs::write(cur.join("1700000000.noinfo.host"), b"no info").unwrap();
    std::fs::write(cur.join("1700000001.v1.host:1,experimental"), b"v1").unwrap();
    std::fs::write(cur.join("1700000002.odd.host:2,SZ9"), b"odd letters").unwrap();
    std::fs::write(cur.join(".hidden"), b"ignored").unwrap();
    std::fs::write(cur.join(":2,S"), b"empty key").unwrap();
    std::fs::write(cur.join(OsStr::from_bytes(b"bad\xff\xfeutf8:2,S")), b"x").unwrap();
    std::fs::write(new.join("x".repeat(255)), b"longest name").unwrap();
    std::fs::write(new.join("ctl\u{1}char"), b"control").unwrap();

    let scan = md.scan().unwrap();
    let mut names: Vec<&str> = scan.messages.iter().map(|m| m.file_name()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "1700000000.noinfo.host",
            "1700000001.v1.host:1,experimental",
            "1700000002.odd.host:2,SZ9",
            &"x".repeat(255),
        ]
    );
    let mut reasons: Vec<&str> = scan.skipped.iter().map(|s| s.reason).collect();
    reasons.sort_unstable();
    assert_eq!(
        reasons,
        [
            "contains a control character",
            "empty",
            "name is not valid UTF-8"
        ]
    );
    for m in &scan.messages {
        // Names without S= still have a size, from the file system.
        assert!(md.size(m).unwrap() > 0);
        if m.file_name().len() == 255 {
            // No room for an info: a clear error, and the message stays where it was.
            let e = md
                .add_flags(m, mailroom_maildir::Flags::FLAGGED)
                .unwrap_err();
            assert!(e.to_string().contains("longer than 255"), "{e}");
            continue;
        }
        // Every other one can be flagged; unknown info letters are kept, `1,` is replaced.
        let flagged = md.add_flags(m, mailroom_maildir::Flags::FLAGGED).unwrap();
        assert!(flagged.flags().contains(mailroom_maildir::Flags::FLAGGED));
        assert!(
            flagged.file_name().contains(":2,"),
            "{}",
            flagged.file_name()
        );
    }
    assert!(new.join("x".repeat(255)).exists());
    let odd = md.find("1700000002.odd.host").unwrap().unwrap();
    assert_eq!(odd.file_name(), "1700000002.odd.host:2,9FSZ");
    assert!(md.find("../escape").is_err());
    assert!(md.find("a/b").is_err());
}

#[test]
fn over_long_names_on_a_simulated_fs_are_skipped() {
    let fs = SimFs::new();
    let md = Maildir::create_with(fs.clone(), "/M").unwrap();
    let huge = format!("/M/cur/{}:2,S", "h".repeat(5000));
    fs.create_new(Path::new(&huge)).unwrap();
    let scan = md.scan().unwrap();
    assert!(scan.messages.is_empty());
    assert_eq!(scan.skipped[0].reason, "name longer than 255 bytes");
}

#[test]
fn missing_tmp_is_a_clear_error() {
    let dir = mailroom_testkit::temp_dir();
    let path = dir.path().join("M");
    let md = Maildir::create(&path).unwrap();
    std::fs::remove_dir(path.join("tmp")).unwrap();
    match Maildir::open(&path) {
        Err(OpenError::Missing { path: p }) => assert_eq!(p, path.join("tmp")),
        other => panic!("{other:?}"),
    }
    let e = Maildir::open(&path).unwrap_err().to_string();
    assert!(e.contains("tmp") && e.contains("missing"), "{e}");
    // A Maildir value opened before tmp/ vanished: the delivery says which step and path.
    let e = md.deliver(&b"x"[..]).unwrap_err();
    assert_eq!(e.step(), DeliverStep::Create);
    assert!(
        e.to_string()
            .contains(&path.join("tmp").display().to_string()),
        "{e}"
    );
    // Not a directory at all.
    std::fs::write(dir.path().join("file"), b"").unwrap();
    assert!(matches!(
        Maildir::open(dir.path().join("file")),
        Err(OpenError::NotADirectory { .. })
    ));
    assert!(matches!(
        Maildir::create(dir.path().join("file")),
        Err(OpenError::NotADirectory { .. })
    ));
}

#[test]
fn malformed_control_files_name_file_and_line() {
    let dir = mailroom_testkit::temp_dir();
    let md = Maildir::create(dir.path().join("M")).unwrap();
    std::fs::write(
        dir.path().join("M/dovecot-uidlist"),
        "3 V1 N9\n1 :a\nbanana\n",
    )
    .unwrap();
    let e = md.read_uidlist().unwrap_err().to_string();
    assert!(e.contains("dovecot-uidlist:3:"), "{e}");
    assert!(md.sync_uids().is_err());
    assert!(
        !dir.path().join("M/dovecot-uidlist.lock").exists(),
        "lock released"
    );
    std::fs::write(dir.path().join("M/dovecot-keywords"), "0 Junk\nzz Spam\n").unwrap();
    let e = md.read_keywords().unwrap_err().to_string();
    assert!(e.contains("dovecot-keywords:2:"), "{e}");
    std::fs::write(dir.path().join("M/maildirsize"), "100S\n5 1\n5 one\n").unwrap();
    let e = md.read_quota().unwrap_err().to_string();
    assert!(e.contains("maildirsize:3:"), "{e}");
}

#[test]
fn stale_uidlist_lock_is_taken_over() {
    let dir = mailroom_testkit::temp_dir();
    let md = Maildir::create(dir.path().join("M")).unwrap();
    // A lock left by a dead process (older than LOCK_STALE_AFTER) is taken over.
    let lock = dir.path().join("M/dovecot-uidlist.lock");
    std::fs::write(&lock, b"12345").unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(600);
    std::fs::File::options()
        .write(true)
        .open(&lock)
        .unwrap()
        .set_modified(old)
        .unwrap();
    md.sync_uids().unwrap();
    assert!(!lock.exists());
}

proptest! {
    #[test]
    fn random_uidlists_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = UidList::parse(&bytes, Path::new("u"));
        let _ = Keywords::parse(&bytes, Path::new("k"));
    }

    #[test]
    fn random_text_uidlists_never_panic(text in "[0-9 VNG:a-zé€\\n]{0,200}") {
        let _ = UidList::parse(text.as_bytes(), Path::new("u"));
        let _ = Keywords::parse(text.as_bytes(), Path::new("k"));
        let _ = mailroom_maildir::QuotaLimit::parse(&text);
    }

    #[test]
    fn random_header_and_quota_lines_never_panic(text in "\\PC{0,40}") {
        let _ = UidList::parse(format!("3 {text}\n1 :a\n").as_bytes(), Path::new("u"));
        let _ = mailroom_maildir::QuotaLimit::parse(&text);
    }

    #[test]
    fn mutf7_round_trips(s in "\\PC{0,40}") {
        let e = encode_mutf7(&s);
        prop_assert!(e.bytes().all(|b| (0x20..0x7f).contains(&b)));
        prop_assert_eq!(decode_mutf7(&e).unwrap(), s);
    }

    #[test]
    fn mutf7_decoder_never_panics(s in "[&A-Za-z0-9+,\\-\u{80}-\u{ff}]{0,40}") {
        let _ = decode_mutf7(&s);
    }

    #[test]
    fn random_names_in_cur_never_panic(name in "[^/\u{0}]{1,60}") {
        let fs = SimFs::new();
        let md = Maildir::create_with(fs.clone(), "/M").unwrap();
        let path = Path::new("/M/cur").join(&name);
        if fs.create_new(&path).is_ok() {
            let scan = md.scan().unwrap();
            for m in &scan.messages {
                let _ = md.size(m);
                let _ = md.add_flags(m, mailroom_maildir::Flags::SEEN);
            }
        }
    }

    #[test]
    fn random_folder_names_never_escape(name in "\\PC{0,30}") {
        let fs = SimFs::new();
        let md = Maildir::create_with(fs.clone(), "/M").unwrap();
        if let Ok(f) = md.create_folder(&name) {
            prop_assert!(f.path().starts_with("/M"));
            prop_assert_eq!(f.path().parent(), Some(Path::new("/M")));
            let listed = md.list_folders().unwrap();
            prop_assert_eq!(listed.folders.len(), 1);
            prop_assert_eq!(listed.folders[0].as_str(), name.as_str());
        }
    }
}

#[test]
fn duplicate_and_vanished_uidlist_entries_are_cleaned() {
    let dir = mailroom_testkit::temp_dir();
    let md = Maildir::create(dir.path().join("M")).unwrap();
    let d = md.deliver(&b"x"[..]).unwrap();
    std::fs::write(
        dir.path().join("M/dovecot-uidlist"),
        format!("3 V5 N9\n1 :{k}\n2 :{k}:2,S\n3 :gone.host\n", k = d.key),
    )
    .unwrap();
    let list = md.sync_uids().unwrap();
    assert_eq!(list.entries().len(), 1);
    assert_eq!(list.uid_of(d.key.as_str()), Some(1));
    assert_eq!(list.uid_validity, 5);
    assert_eq!(list.next_uid, 9);
}
