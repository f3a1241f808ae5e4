//! Differential tests against a private Postfix instance (acceptance 1 second half, and 2).
//!
//! The instance gets the same `mydestination`, `virtual_alias_maps`, `transport_maps`,
//! `relayhost` (and virtual, relay and relocated settings) as our [`Params`]; every transport
//! it may pick is a `discard(8)` service with its own `syslog_name`, so `maillog_file` shows
//! for each final recipient the transport (`postfix/t-smtp/discard`), the next hop (discard
//! logs it as its reason: `status=sent (nexthop)`), the final recipient (`to=`) and the
//! original one (`orig_to=`). Nothing leaves the machine.
//!
//! Needs root and Postfix; skipped otherwise (a failure with MAILROOM_REQUIRE_PEERS=1).

// Test code: a failed set-up step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use mailroom_rewrite::canonical::cleanup_recipient;
use mailroom_rewrite::expand::{Delivery, FsIncludes, local_alias};
use mailroom_rewrite::params::Params;
use mailroom_rewrite::resolve::resolve;
use mailroom_smtp_proto::ForwardPath;
use mailroom_testkit::postfix::Postfix;

const TRANSPORTS: &[&str] = &[
    "t-default",
    "t-relay",
    "t-local",
    "t-virtual",
    "t-smtp",
    "t-lmtp",
    "t-mbox",
];

const VIRTUAL: &str = "\
alias1@alias.example.test     user1@remote.example.net
list@alias.example.test       a@example.com, b@sub.example.com, c@relay.example.test
nested@alias.example.test     list@alias.example.test, d@hop.example.net
info@vmail.example.test       box1@vmail.example.test
fwd@mail.example.test         outside@relay.example.test
localuser                     lu@vmail.example.test
plus+tag@alias.example.test   tagged@remote.example.net
plus@alias.example.test       untagged@remote.example.net
@catch.example.test           catchall@vmail.example.test
self@alias.example.test       self@remote.example.net, copy@remote.example.net
dup@alias.example.test        a@example.com, a@example.com, A@EXAMPLE.COM
";

const TRANSPORT: &str = "\
special@example.com        t-lmtp:[lmtp.example.test]:24
example.com                t-smtp:
.example.com               t-smtp:[sub-mx.example.test]
hop.example.net            :[hop.example.test]
lmtp.example.org           t-lmtp:inet:127.0.0.1:24
relay.example.test         t-relay:[relay-gw.example.test]
";

const RELOCATED: &str = "\
moved@mail.example.test     new@elsewhere.example
@oldcorp.example            the new company, https://newcorp.example/
";

const VMAILBOX: &str = "\
box1@vmail.example.test    vmail.example.test/box1/
lu@vmail.example.test      vmail.example.test/lu/
catchall@vmail.example.test vmail.example.test/catchall/
user@vmail.example.test    vmail.example.test/user/
";

/// The main.cf settings under test, given to Postfix and to our `Params::from_main_cf`.
fn settings() -> Vec<(&'static str, &'static str)> {
    vec![
        ("myhostname", "mail.example.test"),
        ("mydomain", "example.test"),
        (
            "mydestination",
            "$myhostname, localhost.$mydomain, localhost, local.example.test",
        ),
        ("recipient_delimiter", "+"),
        ("virtual_alias_maps", "texthash:{conf}/virtual"),
        (
            "virtual_alias_domains",
            "alias.example.test, catch.example.test",
        ),
        ("virtual_mailbox_domains", "vmail.example.test"),
        ("virtual_mailbox_maps", "texthash:{conf}/vmailbox"),
        ("relay_domains", "relay.example.test, relay2.example.test"),
        ("transport_maps", "texthash:{conf}/transport"),
        ("relayhost", "[smarthost.example.test]:2525"),
        ("default_transport", "t-default"),
        ("relay_transport", "t-relay"),
        ("local_transport", "t-local:$myhostname"),
        ("virtual_transport", "t-virtual"),
        ("relocated_maps", "texthash:{conf}/relocated"),
        ("local_recipient_maps", ""),
        ("alias_maps", ""),
        // Route every address, even those smtpd would refuse, so each one shows its route.
        ("smtpd_reject_unlisted_recipient", "no"),
    ]
}

fn recipients() -> Vec<String> {
    let mut out = Vec::new();
    let locals = [
        "joe",
        "Joe.Smith",
        "joe+ext",
        "localuser",
        "localuser+x",
        "info",
        "postmaster",
    ];
    let domains = [
        "mail.example.test",
        "localhost",
        "local.example.test",
        "vmail.example.test",
        "relay.example.test",
        "sub.relay.example.test",
        "relay2.example.test",
        "example.com",
        "deep.sub.example.com",
        "hop.example.net",
        "lmtp.example.org",
        "remote.example.net",
        "Example.COM",
        "catch.example.test",
    ];
    for l in locals {
        for d in domains {
            if (d == "vmail.example.test" && !["info", "localuser"].contains(&l))
                || d == "catch.example.test" && l == "localuser+x"
            {
                continue;
            }
            out.push(format!("{l}@{d}"));
        }
    }
    for a in [
        "alias1@alias.example.test",
        "list@alias.example.test",
        "nested@alias.example.test",
        "fwd@mail.example.test",
        "plus+tag@alias.example.test",
        "plus+other@alias.example.test",
        "self@alias.example.test",
        "dup@alias.example.test",
        "special@example.com",
        "special+x@example.com",
        "user@vmail.example.test",
        "box1@vmail.example.test",
        "anything@catch.example.test",
        "fwd+x@mail.example.test",
        "joe@[127.0.0.1]",
        "unknownuser@alias.example.test",
        "moved@mail.example.test",
        "moved+x@mail.example.test",
        "anyone@oldcorp.example",
    ] {
        out.push(a.to_string());
    }
    out
}

/// `orig -> {(final, transport, nexthop)}` from the Postfix log.
fn parse_log(log: &str, sender: &str) -> BTreeMap<String, BTreeSet<(String, String, String)>> {
    let mut out: BTreeMap<String, BTreeSet<(String, String, String)>> = BTreeMap::new();
    for line in log.lines() {
        let transport = if let Some(svc_at) = line.find("postfix/t-") {
            let svc = &line[svc_at + "postfix/".len()..];
            &svc[..svc.find('/').unwrap()]
        } else if line.contains("postfix/error[") {
            "error"
        } else {
            continue;
        };
        if transport == "t-mbox" {
            continue;
        }
        let Some(to_at) = line.find(" to=<") else {
            continue;
        };
        let rest = &line[to_at + 5..];
        let to = &rest[..rest.find('>').unwrap()];
        let orig = rest
            .find("orig_to=<")
            .map(|i| &rest[i + 9..i + 9 + rest[i + 9..].find('>').unwrap()])
            .unwrap_or(to);
        let text = &line[line.rfind('(').unwrap() + 1..line.rfind(')').unwrap()];
        if orig.eq_ignore_ascii_case(sender) {
            continue;
        }
        out.entry(orig.to_lowercase()).or_default().insert((
            to.to_lowercase(),
            transport.to_string(),
            text.to_lowercase(),
        ));
    }
    out
}

fn builder() -> mailroom_testkit::postfix::PostfixBuilder {
    let mut b = Postfix::builder();
    for t in TRANSPORTS {
        b = b.master_cf(&format!(
            "{t} unix - - n - - discard -o syslog_name=postfix/{t}"
        ));
    }
    b
}

#[test]
fn routing_matches_postfix() {
    let mut b = builder()
        .table("virtual", VIRTUAL)
        .table("transport", TRANSPORT)
        .table("vmailbox", VMAILBOX)
        .table("relocated", RELOCATED);
    for (k, v) in settings() {
        b = b.main_cf(k, v);
    }
    let Some(postfix) = b.start() else {
        return;
    };
    let conf = postfix.conf_dir();
    let main_cf: String = settings()
        .iter()
        .map(|(k, v)| {
            format!(
                "{k} = {}\n",
                v.replace("{conf}", &conf.display().to_string())
            )
        })
        .collect();
    let params = Params::from_main_cf(Path::new("main.cf"), &main_cf, "unused").unwrap();

    let sender = "sender@remote.example.net";
    let rcpts = recipients();
    let refs: Vec<&str> = rcpts.iter().map(String::as_str).collect();
    for chunk in refs.chunks(50) {
        postfix
            .send(sender, chunk, b"Subject: routing\r\n\r\nbody\r\n")
            .unwrap();
    }
    let distinct: BTreeSet<String> = rcpts.iter().map(|r| r.to_lowercase()).collect();
    let start = std::time::Instant::now();
    let theirs = loop {
        postfix.wait_for_empty_queue(Duration::from_secs(60));
        let theirs = parse_log(&postfix.log(), sender);
        if theirs.len() >= distinct.len() || start.elapsed() > Duration::from_secs(30) {
            break theirs;
        }
        std::thread::sleep(Duration::from_millis(100));
    };

    let mut compared = 0;
    for rcpt in &rcpts {
        let path = ForwardPath::Mailbox(rcpt.parse().unwrap());
        let mut ours = BTreeSet::new();
        for fin in cleanup_recipient(&params, &path).unwrap() {
            let r = resolve(&params, fin.clone());
            // The error transport logs its next hop (the reason) without the status code.
            let mut hop = r.nexthop.to_lowercase();
            if r.transport == "error"
                && let Some((code, text)) = hop.split_once(' ')
                && code.split('.').count() == 3
            {
                hop = text.to_string();
            }
            ours.insert((fin.to_string().to_lowercase(), r.transport, hop));
        }
        let want = theirs
            .get(&rcpt.to_lowercase())
            .cloned()
            .unwrap_or_default();
        assert_eq!(ours, want, "recipient {rcpt}\nlog:\n{}", postfix.log());
        compared += 1;
    }
    let mut by_transport: BTreeMap<&str, usize> = BTreeMap::new();
    for routes in theirs.values() {
        for (_, t, _) in routes {
            *by_transport.entry(t.as_str()).or_default() += 1;
        }
    }
    eprintln!(
        "{compared} recipients routed the same as Postfix; final routes per transport: {by_transport:?}"
    );
    assert!(compared >= 100);
}

#[test]
fn classic_aliases_expand_like_local() {
    let aliases = "postmaster: root\nroot: bob\nbob.leponge: bob\nadmins: bob, alice\n";
    let b = builder()
        .main_cf("myhostname", "mail.example.test")
        .main_cf("mydestination", "$myhostname")
        .main_cf("alias_maps", "hash:{conf}/aliases")
        .main_cf("alias_database", "hash:{conf}/aliases")
        .main_cf("local_recipient_maps", "")
        .main_cf("mailbox_transport", "t-mbox")
        .main_cf("default_transport", "t-default")
        .table("aliases", aliases);
    // postalias must build the .db before local(8) first opens it: build it before start.
    let Some(postfix) = b.start() else {
        return;
    };
    let db = postfix.conf_dir().join("aliases");
    let status = std::process::Command::new(mailroom_testkit::peer("postalias").unwrap())
        .arg(format!("hash:{}", db.display()))
        .status()
        .unwrap();
    assert!(status.success());

    let names = [
        "postmaster",
        "root",
        "bob.leponge",
        "admins",
        "bob",
        "alice",
    ];
    for n in names {
        postfix
            .send(
                "sender@remote.example.net",
                &[&format!("{n}@mail.example.test")],
                b"Subject: a\r\n\r\nb\r\n",
            )
            .unwrap();
    }
    postfix.wait_for_empty_queue(Duration::from_secs(60));
    // maillog_file is written by postlogd, a little after delivery: wait for every message
    // (admins has two deliveries, 7 lines in all).
    let parse = |log: &str| -> BTreeMap<String, BTreeSet<String>> {
        let mut theirs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for line in log
            .lines()
            .filter(|l| l.contains("postfix/t-mbox/discard["))
        {
            let Some(to_at) = line.find(" to=<") else {
                continue;
            };
            let rest = &line[to_at + 5..];
            let to = &rest[..rest.find('>').unwrap()];
            let orig = rest
                .find("orig_to=<")
                .map(|i| &rest[i + 9..i + 9 + rest[i + 9..].find('>').unwrap()])
                .unwrap_or(to);
            theirs
                .entry(orig.to_string())
                .or_default()
                .insert(to.to_string());
        }
        theirs
    };
    let start = std::time::Instant::now();
    let (log, theirs) = loop {
        let log = postfix.log();
        let theirs = parse(&log);
        let lines: usize = theirs.values().map(BTreeSet::len).sum();
        if lines >= 7 || start.elapsed() > Duration::from_secs(20) {
            break (log, theirs);
        }
        std::thread::sleep(Duration::from_millis(50));
    };

    let main_cf = format!(
        "myhostname = mail.example.test\nmydestination = $myhostname\nalias_maps = hash:{}\nlocal_recipient_maps =\n",
        db.display()
    );
    let params = Params::from_main_cf(Path::new("main.cf"), &main_cf, "unused").unwrap();
    for n in names {
        let ours: BTreeSet<String> = local_alias(&params, n, &FsIncludes)
            .unwrap()
            .into_iter()
            .map(|d| match d.delivery {
                Delivery::Mailbox(user) => format!("{user}@mail.example.test"),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        let want = theirs
            .get(&format!("{n}@mail.example.test"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(ours, want, "alias {n}\nlog:\n{log}");
    }
}

#[test]
fn recipient_checks_reply_like_smtpd() {
    let localusers = "bob x\nalice x\n";
    let relayusers = "known@relay.example.test x\n";
    let mut b = builder()
        .table("virtual", VIRTUAL)
        .table("transport", TRANSPORT)
        .table("vmailbox", VMAILBOX)
        .table("relocated", RELOCATED)
        .table("localusers", localusers)
        .table("relayusers", relayusers);
    let mut main_cf = String::new();
    for (k, v) in settings() {
        let v = match k {
            "local_recipient_maps" => "texthash:{conf}/localusers",
            "smtpd_reject_unlisted_recipient" => "yes",
            _ => v,
        };
        b = b.main_cf(k, v);
        main_cf.push_str(&format!("{k} = {v}\n"));
    }
    b = b.main_cf("relay_recipient_maps", "texthash:{conf}/relayusers");
    main_cf.push_str("relay_recipient_maps = texthash:{conf}/relayusers\n");
    let Some(postfix) = b.start() else {
        return;
    };
    let main_cf = main_cf.replace("{conf}", &postfix.conf_dir().display().to_string());
    let params = Params::from_main_cf(Path::new("main.cf"), &main_cf, "unused").unwrap();
    let addresses = [
        "bob@mail.example.test",
        "nobody@mail.example.test",
        "Alice@localhost",
        "nobody@local.example.test",
        "alias1@alias.example.test",
        "unknownuser@alias.example.test",
        "box1@vmail.example.test",
        "nobody@vmail.example.test",
        "info@vmail.example.test",
        "known@relay.example.test",
        "stranger@relay.example.test",
        "moved@mail.example.test",
        "anyone@oldcorp.example",
        "someone@remote.example.net",
        "localuser@local.example.test",
    ];
    let mut rejected = 0;
    for a in addresses {
        let theirs = match postfix.send(
            "sender@remote.example.net",
            &[a],
            b"Subject: c\r\n\r\nb\r\n",
        ) {
            Ok(()) => None,
            Err(e) => Some(
                e.strip_prefix("unexpected reply: ")
                    .unwrap_or(&e)
                    .to_string(),
            ),
        };
        let mailbox: mailroom_smtp_proto::Mailbox = a.parse().unwrap();
        let canon = mailroom_rewrite::address::canonical_mailbox(&mailbox);
        let ours = mailroom_rewrite::resolve::check_recipient(&params, &canon)
            .err()
            .map(|r| r.reply(&params, a).to_string());
        assert_eq!(ours, theirs, "recipient {a}");
        rejected += usize::from(ours.is_some());
    }
    assert!(rejected >= 6, "only {rejected} rejections compared");
}
