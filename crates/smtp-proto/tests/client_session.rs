//! The sans-IO client session against scripted servers (transcripts on a fake clock):
//! the happy path with and without PIPELINING, the HELO fall-back, refused recipients, replies
//! after the data, timeouts, STARTTLS, AUTH, BDAT, LMTP, and the MAIL parameters.

// Tests unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod client_harness;

use std::time::Duration;

use client_harness::{App, config, envelope};
use mailroom_smtp_proto::client::{ClientError, Credentials, SendError, Stage, Status, TlsPolicy};
use mailroom_smtp_proto::{Body, EnhancedCode, Limits, ReplyCode};

const MSG: &[u8] = b"Subject: hi\r\n\r\nhello\r\n";

fn statuses(app: &App) -> Vec<(Status, Stage, u16)> {
    app.results[0]
        .recipients
        .iter()
        .map(|r| (r.status(), r.stage, r.reply.code().get()))
        .collect()
}

#[test]
fn happy_path_with_pipelining() {
    let mut app = App::new(config()).message(
        envelope(
            "a@example.com",
            &["b@example.org", "c@example.org", "d@example.org"],
        ),
        MSG,
    );
    app.run(
        "S: 220 mx.example.org ESMTP
         C: EHLO client.example
         S: 250-mx.example.org
         S: 250-PIPELINING
         S: 250-SIZE 10240000
         S: 250-8BITMIME
         S: 250 ENHANCEDSTATUSCODES
         C: MAIL FROM:<a@example.com>
         C: RCPT TO:<b@example.org>
         C: RCPT TO:<c@example.org>
         C: RCPT TO:<d@example.org>
         C: DATA
         S: 250 2.1.0 Ok
         S: 250 2.1.5 Ok
         S: 250 2.1.5 Ok
         S: 250 2.1.5 Ok
         S: 354 End data with <CR><LF>.<CR><LF>
         C: Subject: hi
         C:
         C: hello
         C: .
         S: 250 2.0.0 Ok: queued as 1234
         C: QUIT
         S: 221 2.0.0 Bye",
    );
    assert!(app.errors.is_empty(), "{:?}", app.errors);
    assert!(app.closed);
    assert_eq!(app.results.len(), 1);
    let result = &app.results[0];
    assert!(result.all_accepted());
    assert_eq!(result.data.as_ref().unwrap().text(), "Ok: queued as 1234");
    assert_eq!(
        result.recipients[0].reply.enhanced(),
        EnhancedCode::new(2, 0, 0)
    );
    assert_eq!(
        app.log,
        [
            "greeting 220",
            "hello esmtp",
            "ready",
            "rcpt 0 250",
            "rcpt 1 250",
            "rcpt 2 250",
            "data",
            "done",
            "closed Some(221)"
        ]
    );
}

#[test]
fn happy_path_without_pipelining_two_messages_on_one_connection() {
    let mut app = App::new(config())
        .message(
            envelope("a@example.com", &["b@example.org", "c@example.org"]),
            MSG,
        )
        .message(envelope("", &["b@example.org"]), b".leading dot\r\n");
    app.run(
        "S: 220 mx.example.org ESMTP
         C: EHLO client.example
         S: 250-mx.example.org
         S: 250 SIZE
         C: MAIL FROM:<a@example.com>
         S: 250 Ok
         C: RCPT TO:<b@example.org>
         S: 250 Ok
         C: RCPT TO:<c@example.org>
         S: 250 Ok
         C: DATA
         S: 354 go ahead
         C: Subject: hi
         C:
         C: hello
         C: .
         S: 250 queued
         C: MAIL FROM:<>
         S: 250 Ok
         C: RCPT TO:<b@example.org>
         S: 250 Ok
         C: DATA
         S: 354 go ahead
         C: ..leading dot
         C: .
         S: 250 queued
         C: QUIT
         S: 221 Bye",
    );
    assert!(app.errors.is_empty(), "{:?}", app.errors);
    assert_eq!(app.results.len(), 2);
    assert!(app.results.iter().all(|r| r.all_accepted()));
}

#[test]
fn ehlo_refused_falls_back_to_helo() {
    for code in ["500", "502"] {
        let mut app =
            App::new(config()).message(envelope("a@example.com", &["b@example.org"]), MSG);
        app.run(&format!(
            "S: 220 old.example.org SMTP
             C: EHLO client.example
             S: {code} 5.5.2 Error: command not recognized
             C: HELO client.example
             S: 250 old.example.org
             C: MAIL FROM:<a@example.com>
             S: 250 Ok
             C: RCPT TO:<b@example.org>
             S: 250 Ok
             C: DATA
             S: 354 go
             C: Subject: hi
             C:
             C: hello
             C: .
             S: 250 Ok
             C: QUIT
             S: 221 Bye"
        ));
        assert!(app.errors.is_empty(), "{:?}", app.errors);
        assert!(app.results[0].all_accepted());
        assert!(app.log.contains(&"hello".to_owned()));
    }
}

#[test]
fn ehlo_4xx_is_an_error_not_a_fallback() {
    let mut app = App::new(config());
    app.run(
        "S: 220 mx ESMTP
         C: EHLO client.example
         S: 454 try later
         C: QUIT",
    );
    assert!(matches!(app.errors[..], [ClientError::HelloRefused(_)]));
    assert!(app.session.is_closed());
}

#[test]
fn greeting_554_ends_the_session_with_quit() {
    let mut app = App::new(config());
    app.run(
        "S: 554 5.7.1 no SMTP service here
         C: QUIT",
    );
    match &app.errors[..] {
        [ClientError::GreetingRefused(reply)] => {
            assert_eq!(reply.code(), ReplyCode::TRANSACTION_FAILED);
        }
        other => panic!("{other:?}"),
    }
    // Nothing more is read or sent.
    assert!(app.server(b"250 ok\r\n").is_empty());
}

#[test]
fn one_refused_recipient_among_three_pipelined() {
    let mut app = App::new(config()).message(
        envelope(
            "a@example.com",
            &["b@example.org", "nobody@example.org", "d@example.org"],
        ),
        MSG,
    );
    app.run(
        "S: 220 mx ESMTP
         C: EHLO client.example
         S: 250-mx
         S: 250 PIPELINING
         C: MAIL FROM:<a@example.com>
         C: RCPT TO:<b@example.org>
         C: RCPT TO:<nobody@example.org>
         C: RCPT TO:<d@example.org>
         C: DATA
         S: 250 2.1.0 Ok
         S: 250 2.1.5 Ok
         S: 550 5.1.1 <nobody@example.org>: Recipient address rejected
         S: 250 2.1.5 Ok
         S: 354 go
         C: Subject: hi
         C:
         C: hello
         C: .
         S: 250 2.0.0 queued
         C: QUIT
         S: 221 Bye",
    );
    assert!(app.errors.is_empty(), "{:?}", app.errors);
    assert_eq!(
        statuses(&app),
        [
            (Status::Accepted, Stage::Data, 250),
            (Status::Permanent, Stage::Rcpt, 550),
            (Status::Accepted, Stage::Data, 250)
        ]
    );
}

#[test]
fn one_refused_recipient_among_three_without_pipelining() {
    let mut app = App::new(config()).message(
        envelope(
            "a@example.com",
            &["b@example.org", "busy@example.org", "d@example.org"],
        ),
        MSG,
    );
    app.run(
        "S: 220 mx ESMTP
         C: EHLO client.example
         S: 250 mx
         C: MAIL FROM:<a@example.com>
         S: 250 Ok
         C: RCPT TO:<b@example.org>
         S: 250 Ok
         C: RCPT TO:<busy@example.org>
         S: 450 4.2.1 mailbox busy
         C: RCPT TO:<d@example.org>
         S: 250 Ok
         C: DATA
         S: 354 go
         C: Subject: hi
         C:
         C: hello
         C: .
         S: 250 queued
         C: QUIT
         S: 221 Bye",
    );
    assert_eq!(
        statuses(&app),
        [
            (Status::Accepted, Stage::Data, 250),
            (Status::Temporary, Stage::Rcpt, 450),
            (Status::Accepted, Stage::Data, 250)
        ]
    );
}

#[test]
fn all_recipients_refused_sends_no_data_but_rset() {
    let mut app = App::new(config())
        .message(
            envelope("a@example.com", &["x@example.org", "y@example.org"]),
            MSG,
        )
        .message(envelope("a@example.com", &["z@example.org"]), MSG);
    app.run(
        "S: 220 mx ESMTP
         C: EHLO client.example
         S: 250 mx
         C: MAIL FROM:<a@example.com>
         S: 250 Ok
         C: RCPT TO:<x@example.org>
         S: 550 no
         C: RCPT TO:<y@example.org>
         S: 551 no
         C: RSET
         S: 250 Ok
         C: MAIL FROM:<a@example.com>
         S: 250 Ok
         C: RCPT TO:<z@example.org>
         S: 250 Ok
         C: DATA
         S: 354 go
         C: Subject: hi
         C:
         C: hello
         C: .
         S: 250 queued
         C: QUIT
         S: 221 Bye",
    );
    assert!(app.errors.is_empty(), "{:?}", app.errors);
    assert_eq!(
        statuses(&app),
        [
            (Status::Permanent, Stage::Rcpt, 550),
            (Status::Permanent, Stage::Rcpt, 551)
        ]
    );
    assert!(app.results[0].data.is_none());
    assert!(app.results[1].all_accepted());
}

#[test]
fn all_recipients_refused_pipelined_data_gets_its_554() {
    let mut app = App::new(config()).message(envelope("a@example.com", &["x@example.org"]), MSG);
    app.run(
        "S: 220 mx ESMTP
         C: EHLO client.example
         S: 250-mx
         S: 250 PIPELINING
         C: MAIL FROM:<a@example.com>
         C: RCPT TO:<x@example.org>
         C: DATA
         S: 250 Ok
         S: 550 5.1.1 unknown
         S: 554 5.5.1 Error: no valid recipients
         C: RSET
         S: 250 Ok
         C: QUIT
         S: 221 Bye",
    );
    assert!(app.errors.is_empty(), "{:?}", app.errors);
    assert_eq!(statuses(&app), [(Status::Permanent, Stage::Rcpt, 550)]);
}

#[test]
fn a_354_without_valid_recipients_gets_a_lone_dot() {
    // RFC 2920 §3.1: a (broken) server that accepts DATA anyway gets an empty message.
    let mut app = App::new(config()).message(envelope("a@example.com", &["x@example.org"]), MSG);
    app.run(
        "S: 220 mx ESMTP
         C: EHLO client.example
         S: 250-mx
         S: 250 PIPELINING
         C: MAIL FROM:<a@example.com>
         C: RCPT TO:<x@example.org>
         C: DATA
         S: 250 Ok
         S: 550 unknown
         S: 354 go
         C: .
         S: 554 no recipients
         C: RSET
         S: 250 Ok
         C: QUIT
         S: 221 Bye",
    );
    assert!(app.errors.is_empty(), "{:?}", app.errors);
    assert_eq!(statuses(&app), [(Status::Permanent, Stage::Rcpt, 550)]);
}

#[test]
fn mail_refused_pipelined_and_not() {
    let mut app = App::new(config()).message(envelope("spam@example.com", &["x@example.org"]), MSG);
    app.run(
        "S: 220 mx ESMTP
         C: EHLO client.example
         S: 250 mx
         C: MAIL FROM:<spam@example.com>
         S: 553 5.7.1 sender rejected
         C: QUIT
         S: 221 Bye",
    );
    assert_eq!(statuses(&app), [(Status::Permanent, Stage::Mail, 553)]);

    let mut app = App::new(config()).message(
        envelope("spam@example.com", &["x@example.org", "y@example.org"]),
        MSG,
    );
    app.run(
        "S: 220 mx ESMTP
         C: EHLO client.example
         S: 250-mx
         S: 250 PIPELINING
         C: MAIL FROM:<spam@example.com>
         C: RCPT TO:<x@example.org>
         C: RCPT TO:<y@example.org>
         C: DATA
         S: 451 4.3.0 try later
         S: 503 5.5.1 need MAIL
         S: 503 5.5.1 need MAIL
         S: 503 5.5.1 need MAIL
         C: RSET
         S: 250 Ok
         C: QUIT
         S: 221 Bye",
    );
    assert!(app.errors.is_empty(), "{:?}", app.errors);
    assert_eq!(
        statuses(&app),
        [
            (Status::Temporary, Stage::Mail, 451),
            (Status::Temporary, Stage::Mail, 451)
        ]
    );
}

#[test]
fn temporary_and_permanent_failure_after_the_data() {
    for (code, status) in [
        ("451 4.3.0 queue full", Status::Temporary),
        ("554 5.7.1 spam", Status::Permanent),
    ] {
        let mut app = App::new(config())
            .message(
                envelope("a@example.com", &["b@example.org", "c@example.org"]),
                MSG,
            )
            .message(envelope("a@example.com", &["b@example.org"]), MSG);
        app.run(&format!(
            "S: 220 mx ESMTP
             C: EHLO client.example
             S: 250-mx
             S: 250 PIPELINING
             C: MAIL FROM:<a@example.com>
             C: RCPT TO:<b@example.org>
             C: RCPT TO:<c@example.org>
             C: DATA
             S: 250 Ok
             S: 250 Ok
             S: 250 Ok
             S: 354 go
             C: Subject: hi
             C:
             C: hello
             C: .
             S: {code}
             C: RSET
             S: 250 Ok
             C: MAIL FROM:<a@example.com>
             C: RCPT TO:<b@example.org>
             C: DATA
             S: 250 Ok
             S: 250 Ok
             S: 354 go
             C: Subject: hi
             C:
             C: hello
             C: .
             S: 250 queued
             C: QUIT
             S: 221 Bye"
        ));
        assert!(app.errors.is_empty(), "{:?}", app.errors);
        let code: u16 = code[..3].parse().unwrap();
        assert_eq!(
            statuses(&app),
            [(status, Stage::Data, code), (status, Stage::Data, code)]
        );
        assert!(app.results[1].all_accepted());
    }
}

#[test]
fn service_closing_421_mid_transaction_defers_the_rest() {
    let mut app = App::new(config()).message(
        envelope("a@example.com", &["b@example.org", "c@example.org"]),
        MSG,
    );
    app.run(
        "S: 220 mx ESMTP
         C: EHLO client.example
         S: 250 mx
         C: MAIL FROM:<a@example.com>
         S: 250 Ok
         C: RCPT TO:<b@example.org>
         S: 550 unknown
         C: RCPT TO:<c@example.org>
         S: 421 4.3.2 shutting down",
    );
    assert!(matches!(app.errors[..], [ClientError::ServiceClosing(_)]));
    assert_eq!(
        statuses(&app),
        [
            (Status::Permanent, Stage::Rcpt, 550),
            (Status::Temporary, Stage::Rcpt, 421)
        ]
    );
}

fn ready_app() -> App {
    let mut app = App::new(config()).message(envelope("a@example.com", &["b@example.org"]), MSG);
    app.run(
        "S: 220 mx ESMTP
         C: EHLO client.example
         S: 250 mx
         C: MAIL FROM:<a@example.com>",
    );
    app
}

#[test]
fn timeout_waiting_for_the_greeting_is_five_minutes() {
    let mut app = App::new(config());
    app.advance(Duration::from_secs(299));
    assert!(app.errors.is_empty());
    app.advance(Duration::from_secs(1));
    assert_eq!(
        app.errors,
        [ClientError::Timeout {
            waiting_for: "the greeting"
        }]
    );
    assert!(app.session.is_closed());
    assert_eq!(app.session.poll_timeout(), None);
}

#[test]
fn timeouts_per_command_follow_rfc_5321() {
    // MAIL: 5 minutes.
    let mut app = ready_app();
    app.advance(Duration::from_secs(299));
    assert!(app.errors.is_empty());
    app.advance(Duration::from_secs(1));
    assert_eq!(
        app.errors,
        [ClientError::Timeout {
            waiting_for: "the reply to MAIL"
        }]
    );

    // DATA initiation: 2 minutes; DATA termination: 10 minutes.
    let mut app = ready_app();
    app.run(
        "S: 250 Ok
         C: RCPT TO:<b@example.org>
         T: 200
         S: 250 Ok
         C: DATA
         T: 119",
    );
    assert!(
        app.errors.is_empty(),
        "the RCPT timer restarts at each command"
    );
    app.advance(Duration::from_secs(1));
    assert_eq!(
        app.errors,
        [ClientError::Timeout {
            waiting_for: "the reply to DATA"
        }]
    );

    let mut app = ready_app();
    app.run(
        "S: 250 Ok
         C: RCPT TO:<b@example.org>
         S: 250 Ok
         C: DATA
         S: 354 go
         C: Subject: hi
         C:
         C: hello
         C: .
         T: 599",
    );
    assert!(app.errors.is_empty());
    app.advance(Duration::from_secs(1));
    assert_eq!(
        app.errors,
        [ClientError::Timeout {
            waiting_for: "the reply after the message content"
        }]
    );
}

#[test]
fn data_block_timeout_when_the_application_stalls() {
    let mut app = ready_app();
    // The application never gets its content to the session: drop it.
    app.run(
        "S: 250 Ok
         C: RCPT TO:<b@example.org>
         S: 250 Ok
         C: DATA",
    );
    app.session.handle_input(b"354 go\r\n");
    let event = std::iter::from_fn(|| app.session.poll_event()).last();
    assert!(matches!(
        event,
        Some(mailroom_smtp_proto::client::Event::DataReady(_))
    ));
    assert_eq!(app.session.poll_transmit(app.now), None);
    app.advance(Duration::from_secs(179));
    assert!(app.errors.is_empty());
    app.advance(Duration::from_secs(1));
    assert_eq!(
        app.errors,
        [ClientError::Timeout {
            waiting_for: "the application to send content"
        }]
    );
}

#[test]
fn starttls_with_injected_bytes_after_220_is_an_error() {
    // The acceptance point "STARTTLS\r\nMAIL FROM:<x>\r\n in one write never executes the MAIL
    // after the handshake", client side: a server (or a man in the middle) that sends
    // anything after its 220 before the handshake would have it read as a reply inside TLS
    // (CVE-2011-0411). The client refuses the connection instead.
    for injected in [
        &b"220 2.0.0 Ready to start TLS\r\n250 2.1.0 injected\r\n"[..],
        b"220 2.0.0 Ready to start TLS\r\n2",
    ] {
        let mut app = App::new(config());
        app.run(
            "S: 220 mx ESMTP
             C: EHLO client.example
             S: 250-mx
             S: 250-PIPELINING
             S: 250 STARTTLS
             C: STARTTLS",
        );
        assert!(app.server(injected).is_empty(), "nothing more is sent");
        assert!(
            matches!(app.errors[..], [ClientError::StartTlsInjection { .. }]),
            "{:?}",
            app.log
        );
        assert!(app.tls.is_none(), "no handshake after injected bytes");
        assert!(app.session.is_closed());
    }

    // The bytes arrive in a later read, still before the handshake: the same error.
    let mut app = App::new(config());
    app.run(
        "S: 220 mx ESMTP
         C: EHLO client.example
         S: 250-mx
         S: 250 STARTTLS
         C: STARTTLS
         S: 220 go ahead",
    );
    assert!(app.tls.is_some());
    app.server(b"250 injected\r\n");
    assert!(matches!(
        app.errors[..],
        [ClientError::StartTlsInjection { octets: 14 }]
    ));
}

#[test]
fn starttls_then_ehlo_again_with_the_old_extensions_forgotten() {
    let mut app = App::new(config()).message(envelope("a@example.com", &["b@example.org"]), MSG);
    app.run(
        "S: 220 mx ESMTP
         C: EHLO client.example
         S: 250-mx
         S: 250-PIPELINING
         S: 250-mx
         S: 250 STARTTLS
         C: STARTTLS
         S: 220 2.0.0 Ready to start TLS
         TLS
         C: EHLO client.example
         S: 250-mx
         S: 250 SIZE 1000
         C: MAIL FROM:<a@example.com>
         S: 250 Ok
         C: RCPT TO:<b@example.org>
         S: 250 Ok
         C: DATA
         S: 354 go
         C: Subject: hi
         C:
         C: hello
         C: .
         S: 250 Ok
         C: QUIT
         S: 221 Bye",
    );
    assert!(app.errors.is_empty(), "{:?}", app.errors);
    assert!(app.session.is_tls());
    // No PIPELINING after TLS: MAIL went alone.
    assert!(!app.session.extensions().pipelining);
    assert_eq!(app.session.extensions().size, Some(1000));
}

#[test]
fn starttls_policy() {
    // Required, not offered: an error (and QUIT).
    let mut cfg = config();
    cfg.tls = TlsPolicy::Required;
    let mut app = App::new(cfg.clone());
    app.run(
        "S: 220 mx ESMTP
         C: EHLO client.example
         S: 250 mx
         C: QUIT",
    );
    assert_eq!(app.errors, [ClientError::TlsNotOffered]);

    // Required, refused: an error.
    let mut app = App::new(cfg);
    app.run(
        "S: 220 mx ESMTP
         C: EHLO client.example
         S: 250-mx
         S: 250 STARTTLS
         C: STARTTLS
         S: 454 4.7.0 TLS not available
         C: QUIT",
    );
    assert!(matches!(app.errors[..], [ClientError::StartTlsRefused(_)]));

    // Opportunistic, refused: go on in plaintext.
    let mut app = App::new(config()).message(envelope("a@example.com", &["b@example.org"]), MSG);
    app.run(
        "S: 220 mx ESMTP
         C: EHLO client.example
         S: 250-mx
         S: 250 STARTTLS
         C: STARTTLS
         S: 454 4.7.0 TLS not available
         C: MAIL FROM:<a@example.com>",
    );
    assert!(app.errors.is_empty());

    // Never: no STARTTLS even when offered.
    let mut cfg = config();
    cfg.tls = TlsPolicy::Never;
    let mut app = App::new(cfg).message(envelope("a@example.com", &["b@example.org"]), MSG);
    app.run(
        "S: 220 mx ESMTP
         C: EHLO client.example
         S: 250-mx
         S: 250 STARTTLS
         C: MAIL FROM:<a@example.com>",
    );
    assert!(app.errors.is_empty());
}

#[test]
fn auth_plain_and_login_after_tls() {
    let mut cfg = config();
    cfg.credentials = Some(Credentials::new("tim", "tanstaaftanstaaf"));
    let mut app = App::new(cfg.clone()).message(envelope("a@example.com", &["b@example.org"]), MSG);
    app.run(
        "S: 220 mx ESMTP
         C: EHLO client.example
         S: 250-mx
         S: 250-mx
         S: 250 STARTTLS
         C: STARTTLS
         S: 220 go
         TLS
         C: EHLO client.example
         S: 250-mx
         S: 250 AUTH LOGIN PLAIN
         C: AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm
         S: 235 2.7.0 Authentication successful
         C: MAIL FROM:<a@example.com>",
    );
    assert!(app.errors.is_empty(), "{:?}", app.errors);
    assert!(app.session.is_authenticated());

    let mut app = App::new(cfg.clone());
    app.run(
        "S: 220 mx ESMTP
         C: EHLO client.example
         S: 250-mx
         S: 250 STARTTLS
         C: STARTTLS
         S: 220 go
         TLS
         C: EHLO client.example
         S: 250-mx
         S: 250 AUTH=LOGIN
         C: AUTH LOGIN
         S: 334 VXNlcm5hbWU6
         C: dGlt
         S: 334 UGFzc3dvcmQ6
         C: dGFuc3RhYWZ0YW5zdGFhZg==
         S: 535 5.7.8 Error: authentication failed
         C: QUIT",
    );
    assert!(matches!(app.errors[..], [ClientError::AuthFailed(_)]));

    // No TLS: the password is not sent.
    let mut app = App::new(cfg);
    app.run(
        "S: 220 mx ESMTP
         C: EHLO client.example
         S: 250-mx
         S: 250 AUTH PLAIN
         C: QUIT",
    );
    assert_eq!(app.errors, [ClientError::AuthNeedsTls]);
    // And Debug never shows it.
    let cfg_debug = format!("{:?}", app.session.config());
    assert!(!cfg_debug.contains("tanstaaf"), "{cfg_debug}");
}

#[test]
fn mail_parameters_follow_the_extensions() {
    let ehlo = "S: 220 mx ESMTP
                C: EHLO client.example
                S: 250-mx
                S: 250-SIZE 1000
                S: 250-8BITMIME
                S: 250 SMTPUTF8";
    let mut env = envelope("a@example.com", &["b@example.org"]);
    env.size = Some(500);
    env.body = Body::EightBitMime;
    let mut app = App::new(config()).message(env.clone(), MSG);
    app.run(&format!(
        "{ehlo}
         C: MAIL FROM:<a@example.com> SIZE=500 BODY=8BITMIME"
    ));
    // UTF-8 address: SMTPUTF8.
    let mut app = App::new(config()).message(envelope("jörg@example.com", &["b@example.org"]), MSG);
    app.run(&format!(
        "{ehlo}
         C: MAIL FROM:<jörg@example.com> SMTPUTF8"
    ));

    // Without the extensions: no parameters, and a UTF-8 envelope is refused.
    let mut app = App::new(config());
    app.quit = false;
    app.run(
        "S: 220 mx ESMTP
         C: EHLO client.example
         S: 250 mx",
    );
    assert!(app.session.is_ready());
    assert_eq!(
        app.session
            .send_message(envelope("jörg@example.com", &["b@example.org"])),
        Err(SendError::Smtputf8NotOffered)
    );
    let mut utf8_headers = envelope("a@example.com", &["b@example.org"]);
    utf8_headers.utf8_headers = true;
    assert_eq!(
        app.session.send_message(utf8_headers),
        Err(SendError::Smtputf8NotOffered)
    );
    let mut binary = envelope("a@example.com", &["b@example.org"]);
    binary.body = Body::BinaryMime;
    assert_eq!(
        app.session.send_message(binary),
        Err(SendError::BinaryMimeNotOffered)
    );
    assert_eq!(app.session.poll_transmit(app.now), None, "nothing sent");
    app.session.send_message(env).unwrap();
    assert_eq!(
        &app.session.poll_transmit(app.now).unwrap()[..],
        b"MAIL FROM:<a@example.com>\r\n"
    );

    // Larger than the server's SIZE: refused before sending.
    let mut app = App::new(config());
    app.quit = false;
    app.run(ehlo);
    let mut big = envelope("a@example.com", &["b@example.org"]);
    big.size = Some(1001);
    assert_eq!(
        app.session.send_message(big),
        Err(SendError::TooLarge {
            size: 1001,
            limit: 1000
        })
    );
    assert_eq!(
        app.session.send_message(envelope("a@example.com", &[])),
        Err(SendError::NoRecipients)
    );
}

#[test]
fn bdat_when_chunking_is_preferred() {
    let mut cfg = config();
    cfg.prefer_chunking = true;
    let mut app = App::new(cfg).message(
        envelope("a@example.com", &["b@example.org"]),
        b"a\nb.\r\n.\r\nc",
    );
    app.chunk = 5;
    app.run(
        "S: 220 mx ESMTP
         C: EHLO client.example
         S: 250-mx
         S: 250 CHUNKING
         C: MAIL FROM:<a@example.com>
         S: 250 Ok
         C: RCPT TO:<b@example.org>",
    );
    // No dot-stuffing; a bare LF becomes CRLF; a CR at the end of a piece waits for the
    // next; without PIPELINING one chunk at a time.
    assert_eq!(app.server(b"250 Ok\r\n"), b"BDAT 5\r\na\r\nb.");
    assert_eq!(
        app.server(b"250 2.0.0 5 octets\r\n"),
        b"BDAT 6\r\n\r\n.\r\nc"
    );
    assert_eq!(app.server(b"250 2.0.0 6 octets\r\n"), b"BDAT 0 LAST\r\n");
    assert_eq!(app.server(b"250 2.0.0 queued\r\n"), b"QUIT\r\n");
    assert!(app.errors.is_empty(), "{:?}", app.errors);
    assert!(app.results[0].all_accepted());
}

#[test]
fn binarymime_goes_with_bdat_and_pipelined_chunks() {
    let mut env = envelope("a@example.com", &["b@example.org"]);
    env.body = Body::BinaryMime;
    let mut app = App::new(config()).message(env, b"\0\n\r.\r\n");
    app.chunk = 3;
    app.run(
        "S: 220 mx ESMTP
         C: EHLO client.example
         S: 250-mx
         S: 250-PIPELINING
         S: 250-BINARYMIME
         S: 250 CHUNKING
         C: MAIL FROM:<a@example.com> BODY=BINARYMIME
         C: RCPT TO:<b@example.org>",
    );
    // Both chunks and LAST in one go (PIPELINING), the octets unchanged.
    assert_eq!(
        app.server(b"250 Ok\r\n250 Ok\r\n"),
        b"BDAT 3\r\n\0\n\rBDAT 3\r\n.\r\nBDAT 0 LAST\r\n"
    );
    assert_eq!(
        app.server(b"250 Ok\r\n250 Ok\r\n250 queued\r\n"),
        b"QUIT\r\n"
    );
    assert!(app.results[0].all_accepted());
}

#[test]
fn bdat_chunk_refused_fails_the_message_and_resets() {
    let mut cfg = config();
    cfg.prefer_chunking = true;
    let mut app =
        App::new(cfg).message(envelope("a@example.com", &["b@example.org"]), b"0123456789");
    app.chunk = 5;
    app.run(
        "S: 220 mx ESMTP
         C: EHLO client.example
         S: 250-mx
         S: 250 CHUNKING
         C: MAIL FROM:<a@example.com>
         S: 250 Ok
         C: RCPT TO:<b@example.org>",
    );
    assert_eq!(app.server(b"250 Ok\r\n"), b"BDAT 5\r\n01234");
    // The rest of the content is dropped, no BDAT LAST: RSET.
    assert_eq!(app.server(b"552 5.3.4 too big\r\n"), b"RSET\r\n");
    assert_eq!(app.server(b"250 Ok\r\n"), b"QUIT\r\n");
    assert!(app.errors.is_empty(), "{:?}", app.errors);
    assert_eq!(statuses(&app), [(Status::Permanent, Stage::Data, 552)]);
}

#[test]
fn lmtp_reads_one_reply_per_accepted_recipient() {
    let mut cfg = config();
    cfg.lmtp = true;
    let mut app = App::new(cfg).message(
        envelope(
            "a@example.com",
            &["b@example.org", "nobody@example.org", "d@example.org"],
        ),
        MSG,
    );
    app.run(
        "S: 220 mda LMTP
         C: LHLO client.example
         S: 250-mda
         S: 250-PIPELINING
         S: 250 ENHANCEDSTATUSCODES
         C: MAIL FROM:<a@example.com>
         C: RCPT TO:<b@example.org>
         C: RCPT TO:<nobody@example.org>
         C: RCPT TO:<d@example.org>
         C: DATA
         S: 250 2.1.0 Ok
         S: 250 2.1.5 Ok
         S: 550 5.1.1 unknown
         S: 250 2.1.5 Ok
         S: 354 go
         C: Subject: hi
         C:
         C: hello
         C: .
         S: 250 2.0.0 <b@example.org> Saved
         S: 452 4.2.2 <d@example.org> Quota exceeded
         C: RSET
         S: 250 Ok
         C: QUIT
         S: 221 Bye",
    );
    assert!(app.errors.is_empty(), "{:?}", app.errors);
    assert_eq!(
        statuses(&app),
        [
            (Status::Accepted, Stage::Data, 250),
            (Status::Permanent, Stage::Rcpt, 550),
            (Status::Temporary, Stage::Data, 452)
        ]
    );
}

#[test]
fn lmtp_refused_lhlo_does_not_fall_back() {
    let mut cfg = config();
    cfg.lmtp = true;
    let mut app = App::new(cfg);
    app.run(
        "S: 220 mda LMTP
         C: LHLO client.example
         S: 500 what
         C: QUIT",
    );
    assert!(matches!(app.errors[..], [ClientError::HelloRefused(_)]));
}

#[test]
fn hostile_replies_are_bounded() {
    // A reply line longer than the limit.
    let mut app = App::new(config());
    let long = format!("220 {}", "x".repeat(1000));
    app.server(long.as_bytes());
    app.server(b"\r\n");
    assert!(matches!(app.errors[..], [ClientError::BadReply(_)]));

    // A reply with more lines than the limit.
    let mut cfg = config();
    cfg.limits = Limits {
        reply_lines: 10,
        ..Limits::default()
    };
    let mut app = App::new(cfg);
    app.server("220-x\r\n".repeat(11).as_bytes());
    assert!(matches!(app.errors[..], [ClientError::BadReply(_)]));

    // A reply of many long lines, one octet at a time: the buffer never holds more than one
    // reply's worth under the limits (plus one input piece), then the reply is refused.
    let mut app = App::new(config());
    let line = format!("220-{}\r\n", "x".repeat(500));
    let mut most = 0;
    'feed: for _ in 0..200 {
        for byte in line.as_bytes() {
            app.session.handle_input(std::slice::from_ref(byte));
            most = most.max(app.session.buffered());
            if app.session.is_closed() {
                break 'feed;
            }
        }
    }
    app.pump();
    assert!(matches!(app.errors[..], [ClientError::BadReply(_)]));
    let limits = Limits::default();
    assert!(
        most <= limits.reply_line * limits.reply_lines + 4096,
        "{most}"
    );
    assert_eq!(app.session.buffered(), 0);

    // A megabyte without a line end: an error, and the session stops buffering.
    let mut app = App::new(config());
    app.server(&vec![b'2'; 1 << 20]);
    assert!(matches!(app.errors[..], [ClientError::BadReply(_)]));

    // A reply nobody asked for: the session ends, without QUIT.
    let mut app = App::new(config());
    app.quit = false;
    app.run(
        "S: 220 mx ESMTP
         C: EHLO client.example
         S: 250 mx
         S: 250 Ok",
    );
    assert!(matches!(app.errors[..], [ClientError::UnexpectedReply(_)]));
}

/// Plays the server's flights (each sent after the client's previous write), the flight
/// holding octet `split` of the whole script in two reads, or every flight one octet at a
/// time when `split` is `None`.
fn play(flights: &[&[u8]], split: Option<usize>) -> (Vec<String>, Vec<u8>) {
    let mut app = App::new(config()).message(
        envelope("a@example.com", &["b@example.org", "c@example.org"]),
        MSG,
    );
    let mut wire = Vec::new();
    let mut offset = 0;
    for flight in flights {
        match split {
            Some(at) if (offset..offset + flight.len()).contains(&at) => {
                wire.extend(app.server(&flight[..at - offset]));
                wire.extend(app.server(&flight[at - offset..]));
            }
            Some(_) => wire.extend(app.server(flight)),
            None => {
                for byte in flight.iter() {
                    wire.extend(app.server(std::slice::from_ref(byte)));
                }
            }
        }
        offset += flight.len();
    }
    (app.log, wire)
}

#[test]
fn replies_split_at_every_byte_give_the_same_events() {
    let flights: [&[u8]; 5] = [
        b"220 mx ESMTP\r\n",
        b"250-mx\r\n250-PIPELINING\r\n250 8BITMIME\r\n",
        b"250 Ok\r\n250 Ok\r\n550-no\r\n550 such user\r\n354 go\r\n",
        b"250 queued\r\n",
        b"221 Bye\r\n",
    ];
    let whole = play(&flights, Some(usize::MAX));
    assert!(whole.0.contains(&"done".to_owned()), "{:?}", whole.0);
    assert!(whole.0.last().unwrap().starts_with("closed"));
    let total: usize = flights.iter().map(|f| f.len()).sum();
    for split in 0..total {
        assert_eq!(play(&flights, Some(split)), whole, "split at {split}");
    }
    assert_eq!(play(&flights, None), whole, "one octet at a time");
}

#[test]
fn rset_on_request_and_quit_only_when_ready() {
    let mut app = App::new(config());
    app.quit = false;
    app.run(
        "S: 220 mx ESMTP
         C: EHLO client.example
         S: 250 mx",
    );
    app.session.rset().unwrap();
    assert_eq!(app.session.quit(), Err(SendError::NotReady("QUIT")));
    app.run(
        "C: RSET
         S: 250 2.0.0 Ok",
    );
    assert!(app.log.contains(&"reset".to_owned()));
    app.session.quit().unwrap();
    app.run(
        "C: QUIT
         S: 221 Bye",
    );
    assert!(app.closed);
    // EOF after QUIT without a 221 is a clean end as well.
    let mut app = App::new(config());
    app.run(
        "S: 220 mx ESMTP
         C: EHLO client.example
         S: 250 mx
         C: QUIT",
    );
    app.session.handle_eof();
    app.pump();
    assert!(app.closed && app.errors.is_empty());
    // EOF in the middle is an error.
    let mut app = ready_app();
    app.session.handle_eof();
    app.pump();
    assert_eq!(app.errors, [ClientError::ConnectionClosed]);
}

#[test]
fn service_closing_421_while_the_content_is_written() {
    let mut app = ready_app();
    app.run(
        "S: 250 Ok
         C: RCPT TO:<b@example.org>
         S: 250 Ok
         C: DATA",
    );
    // The application holds the permit (it is still reading its content) when the 421 comes.
    app.session.handle_input(b"354 go\r\n");
    let permit = match std::iter::from_fn(|| app.session.poll_event()).last() {
        Some(mailroom_smtp_proto::client::Event::DataReady(permit)) => permit,
        other => panic!("{other:?}"),
    };
    app.session.send_data(&permit, b"partial").unwrap();
    app.session.poll_transmit(app.now).unwrap();
    app.session
        .handle_input(b"421 4.4.2 mx Error: timeout exceeded\r\n");
    app.pump();
    assert!(matches!(app.errors[..], [ClientError::ServiceClosing(_)]));
    assert_eq!(statuses(&app), [(Status::Temporary, Stage::Data, 421)]);
    assert_eq!(
        app.session.finish_data(permit),
        Err(SendError::NotReady("the end of content"))
    );
    assert_eq!(app.session.poll_transmit(app.now), None);
}

#[test]
fn lmtp_with_bdat_reads_one_reply_per_recipient_after_last() {
    let mut cfg = config();
    cfg.lmtp = true;
    cfg.prefer_chunking = true;
    let mut app = App::new(cfg).message(
        envelope("a@example.com", &["b@example.org", "c@example.org"]),
        b"hi\r\n",
    );
    app.chunk = 100;
    app.run(
        "S: 220 mda LMTP
         C: LHLO client.example
         S: 250-mda
         S: 250-PIPELINING
         S: 250 CHUNKING
         C: MAIL FROM:<a@example.com>
         C: RCPT TO:<b@example.org>
         C: RCPT TO:<c@example.org>",
    );
    assert_eq!(
        app.server(b"250 Ok\r\n250 Ok\r\n250 Ok\r\n"),
        b"BDAT 4\r\nhi\r\nBDAT 0 LAST\r\n"
    );
    assert!(
        app.server(b"250 4 octets\r\n250 2.0.0 b saved\r\n")
            .is_empty()
    );
    assert_eq!(app.server(b"550 5.2.0 c failed\r\n"), b"RSET\r\n");
    assert_eq!(app.server(b"250 Ok\r\n"), b"QUIT\r\n");
    assert_eq!(
        statuses(&app),
        [
            (Status::Accepted, Stage::Data, 250),
            (Status::Permanent, Stage::Data, 550)
        ]
    );
}

#[test]
fn dsn_and_requiretls_parameters_only_where_offered() {
    use mailroom_smtp_proto::{Notify, Ret};
    let mut env = envelope("a@example.com", &["b@example.org"]);
    env.params.ret = Some(Ret::Hdrs);
    env.recipients[0].params.notify = Some(Notify::NEVER);
    // Without DSN the parameters would get a 555: they are left out.
    let mut app = App::new(config()).message(env.clone(), MSG);
    app.run(
        "S: 220 mx ESMTP
         C: EHLO client.example
         S: 250 mx
         C: MAIL FROM:<a@example.com>
         S: 250 Ok
         C: RCPT TO:<b@example.org>",
    );
    let mut app = App::new(config()).message(env, MSG);
    app.run(
        "S: 220 mx ESMTP
         C: EHLO client.example
         S: 250-mx
         S: 250 DSN
         C: MAIL FROM:<a@example.com> RET=HDRS
         S: 250 Ok
         C: RCPT TO:<b@example.org> NOTIFY=NEVER",
    );
    // RFC 8689: REQUIRETLS only over TLS to a server that offers it.
    let mut app = App::new(config());
    app.quit = false;
    app.run(
        "S: 220 mx ESMTP
         C: EHLO client.example
         S: 250-mx
         S: 250 REQUIRETLS",
    );
    let mut env = envelope("a@example.com", &["b@example.org"]);
    env.params.requiretls = true;
    assert_eq!(
        app.session.send_message(env),
        Err(SendError::RequireTlsNotOffered)
    );
}
