//! The IMAP server (src/server/imap/) against Python's imaplib: every command of issue 10, two
//! sessions on one mailbox (IDLE, concurrent STORE and EXPUNGE), hostile input. The server runs
//! in-process on 127.0.0.1; Python is started by the test.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use mailroom::server::imap::{ImapConfig, StaticUsers, serve};

struct Ports {
    /// STARTTLS offered, no plaintext authentication before it.
    starttls: u16,
    /// Implicit TLS (the port-993 role).
    tls: u16,
    /// No TLS at all, plaintext authentication allowed (for raw hostile input).
    plain: u16,
}

fn tls_config() -> Arc<rustls::ServerConfig> {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert = certified.cert.der().clone();
    let key =
        rustls::pki_types::PrivateKeyDer::try_from(certified.signing_key.serialize_der()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap(),
    )
}

/// Starts the three listeners for user `alice` (password `secret`) whose Maildir is
/// `dir/alice/Maildir`.
fn start(dir: &Path) -> Ports {
    let users = Arc::new(StaticUsers::new().with_user(
        "alice",
        "secret",
        dir.join("alice").join("Maildir"),
    ));
    let tls = tls_config();
    let mut strict = ImapConfig::new(users.clone(), Some(tls));
    strict.auth_failure_delay = Duration::from_millis(200);
    strict.idle_poll = Duration::from_millis(200);
    let mut open = ImapConfig::new(users, None);
    open.disable_plaintext_auth = false;
    open.auth_failure_delay = Duration::from_millis(200);
    open.idle_poll = Duration::from_millis(200);
    open.hub = strict.hub.clone();
    let (strict, open) = (Arc::new(strict), Arc::new(open));
    let bind = || std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (a, b, c) = (bind(), bind(), bind());
    let ports = Ports {
        starttls: a.local_addr().unwrap().port(),
        tls: b.local_addr().unwrap().port(),
        plain: c.local_addr().unwrap().port(),
    };
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            for l in [&a, &b, &c] {
                l.set_nonblocking(true).unwrap();
            }
            let a = tokio::net::TcpListener::from_std(a).unwrap();
            let b = tokio::net::TcpListener::from_std(b).unwrap();
            let c = tokio::net::TcpListener::from_std(c).unwrap();
            let _ = tokio::join!(
                serve(a, strict.clone(), false),
                serve(b, strict, true),
                serve(c, open, false)
            );
        });
    });
    for p in [ports.starttls, ports.tls, ports.plain] {
        mailroom_testkit::wait_for_port(
            SocketAddr::from(([127, 0, 0, 1], p)),
            Duration::from_secs(5),
        );
    }
    ports
}

fn run_python(script: &str, args: &[String]) {
    let Some(python) = mailroom_testkit::peer("python3") else {
        return;
    };
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("ALL OK"),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
}

const COMMON: &str = r#"
import imaplib, ssl, socket, sys, time, re, os
imaplib.Commands.setdefault('ID', ('NONAUTH', 'AUTH', 'SELECTED'))
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
def ok(r, what):
    typ, data = r
    assert typ == 'OK', (what, typ, data)
    return data
def sec(d):
    # A section comes as a literal (a tuple) or, when short and plain, a quoted string.
    if isinstance(d[0], tuple):
        return d[0][1]
    m = re.search(rb'(?:\] |> )"((?:[^"\\]|\\.)*)"', d[0])
    assert m, d
    return m.group(1).replace(b'\\"', b'"').replace(b'\\\\', b'\\')
def no(f, what):
    try:
        typ, data = f()
    except imaplib.IMAP4.error as e:
        return str(e)
    assert typ != 'OK', (what, typ, data)
    return data
"#;

const EVERY_COMMAND: &str = r#"
starttls_port, tls_port, plain_port, root = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]

# --- not authenticated: CAPABILITY, no plaintext LOGIN before TLS, STARTTLS ---
M = imaplib.IMAP4('127.0.0.1', starttls_port)
caps = M.capabilities
assert 'STARTTLS' in caps and 'LOGINDISABLED' in caps, caps
no(lambda: M.login('alice', 'secret'), 'login before TLS')
M.starttls(ssl_context=ctx)
caps = ok(M.capability(), 'capability')[0].decode()
assert 'AUTH=PLAIN' in caps and 'STARTTLS' not in caps and 'IDLE' in caps, caps
t0 = time.time()
no(lambda: M.login('alice', 'wrong'), 'bad password')
assert time.time() - t0 >= 0.15, 'failure delay'
ok(M.login('alice', 'secret'), 'login')
data = ok(M.xatom('ID', '("name" "imaplib")'), 'id')
assert b'mailroom' in M.untagged_responses.get('ID', [b''])[0], M.untagged_responses
ns = ok(M.namespace(), 'namespace')
assert b'(("" "."))' in ns[0], ns

# --- LIST / LSUB with SPECIAL-USE, LIST-STATUS ---
lst = b'\n'.join(ok(M.list(), 'list'))
for name, attr in [('Sent', 'Sent'), ('Drafts', 'Drafts'), ('Trash', 'Trash'), ('Junk', 'Junk'), ('Archive', 'Archive')]:
    assert re.search(rb'\(.*\\' + attr.encode() + rb'.*\) "\." "?' + name.encode(), lst), (name, lst)
assert b'INBOX' in lst
delim = ok(M.list('""', '""'), 'list delimiter')
assert b'"."' in delim[0], delim
typ, data = M._simple_command('LIST', '(SPECIAL-USE)', '""', '"*"')
assert typ == 'OK'
special = M.untagged_responses.pop('LIST', [])
assert len(special) == 5, special
typ, data = M._simple_command('LIST', '""', '"*"', 'RETURN', '(STATUS (MESSAGES UIDNEXT))')
assert typ == 'OK', data
st = M.untagged_responses.pop('STATUS', [])
assert any(b'INBOX' in s and b'MESSAGES 0' in s for s in st), st
M.untagged_responses.pop('LIST', None)
lsub = b'\n'.join(ok(M.lsub(), 'lsub'))
assert b'Sent' in lsub, lsub

# --- CREATE / RENAME / DELETE / SUBSCRIBE / STATUS ---
ok(M.create('Work'), 'create')
ok(M.create('Work.Projects'), 'create child')
no(lambda: M.create('Work'), 'create existing')
ok(M.rename('Work.Projects', 'Work.Done'), 'rename')
no(lambda: M.rename('Nope', 'Other'), 'rename missing')
ok(M.subscribe('Work'), 'subscribe')
assert b'Work' in b'\n'.join(ok(M.lsub('""', 'Work'), 'lsub work'))
ok(M.unsubscribe('Work'), 'unsubscribe')
assert not any(x and b'Work' in x for x in ok(M.lsub('""', 'Work'), 'lsub work 2'))
ok(M.delete('Work.Done'), 'delete')
no(lambda: M.delete('Work.Done'), 'delete missing')
no(lambda: M.delete('INBOX'), 'delete inbox')
st = ok(M.status('INBOX', '(MESSAGES UIDNEXT UIDVALIDITY UNSEEN)'), 'status')
assert b'MESSAGES 0' in st[0] and b'UIDNEXT 1' in st[0], st

# --- APPEND with APPENDUID, durable before OK ---
msg1 = (b'From: Bob <bob@example.test>\r\nTo: alice@example.test\r\nSubject: first note\r\n'
        b'Date: Mon, 2 Feb 2026 10:00:00 +0000\r\nMessage-ID: <1@example.test>\r\n\r\nhello apples\r\n')
msg2 = (b'From: Carol <carol@example.test>\r\nTo: alice@example.test\r\nCc: dan@example.test\r\n'
        b'Subject: report\r\nDate: Tue, 3 Mar 2026 10:00:00 +0000\r\nX-Tag: blue\r\nMIME-Version: 1.0\r\n'
        b'Content-Type: multipart/mixed; boundary=BB\r\n\r\n--BB\r\nContent-Type: text/plain\r\n\r\n'
        b'see attached pears\r\n--BB\r\nContent-Type: application/octet-stream\r\n'
        b'Content-Transfer-Encoding: base64\r\n\r\nAAECAwQ=\r\n--BB--\r\n')
r = ok(M.append('INBOX', r'(\Flagged)', imaplib.Time2Internaldate(1700000000), msg1), 'append 1')
m = re.search(rb'APPENDUID (\d+) (\d+)', r[0]); assert m, r
validity = int(m.group(1)); assert int(m.group(2)) == 1
on_disk = [f for d in ('new', 'cur') for f in os.listdir(os.path.join(root, d))]
assert len(on_disk) == 1, on_disk
ok(M.append('INBOX', None, None, msg2), 'append 2')
ok(M.append('INBOX', r'(\Seen $Important)', None, b'Subject: third\r\n\r\nbody three\r\n'), 'append 3')
no(lambda: M.append('Nope', None, None, b'x\r\n'), 'append missing')

# --- SELECT / EXAMINE ---
typ, data = M.select('INBOX')
assert typ == 'OK' and data == [b'3'], data
r = M.untagged_responses
assert int(r['UIDVALIDITY'][0]) == validity and r['UIDNEXT'] == [b'4'], r
assert b'\\Seen' in r['FLAGS'][0] and b'\\*' in r['PERMANENTFLAGS'][0], r

# --- FETCH ---
d = ok(M.fetch('1:3', '(FLAGS UID RFC822.SIZE INTERNALDATE)'), 'fetch fast')
assert b'UID 1' in d[0] and b'\\Flagged' in d[0] and b'RFC822.SIZE %d' % len(msg1) in d[0], d
assert b'14-Nov-2023' in d[0], d
assert b'$Important' in d[2], d
d = ok(M.fetch('1', '(ENVELOPE)'), 'envelope')
assert b'"first note"' in d[0] and b'"Bob" NIL "bob" "example.test"' in d[0], d
d = ok(M.fetch('2', '(BODYSTRUCTURE)'), 'bodystructure')
assert b'"MIXED"' in d[0] and b'"APPLICATION" "OCTET-STREAM"' in d[0] and b'"BASE64"' in d[0], d
d = ok(M.fetch('2', '(BODY)'), 'body')
assert b'BODY (' in d[0], d
d = ok(M.fetch('2', '(BODY.PEEK[1])'), 'part 1')
assert sec(d) == b'see attached pears', d
d = ok(M.fetch('2', '(BODY.PEEK[1.MIME])'), 'part mime')
assert sec(d) == b'Content-Type: text/plain\r\n\r\n', d
d = ok(M.fetch('2', '(BINARY.PEEK[2])'), 'binary')
assert sec(d) == b'\x00\x01\x02\x03\x04', d
d = ok(M.fetch('2', '(BINARY.SIZE[2])'), 'binary size')
assert b'BINARY.SIZE[2] 5' in d[0], d
d = ok(M.fetch('1', '(BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])'), 'header fields')
assert sec(d) == b'From: Bob <bob@example.test>\r\nSubject: first note\r\n\r\n', d
d = ok(M.fetch('1', '(BODY.PEEK[HEADER.FIELDS.NOT (SUBJECT FROM DATE MESSAGE-ID)])'), 'header fields not')
assert sec(d) == b'To: alice@example.test\r\n\r\n', d
d = ok(M.fetch('1', '(BODY.PEEK[TEXT]<0.5>)'), 'partial')
assert sec(d) == b'hello' and b'<0>' in (d[0][0] if isinstance(d[0], tuple) else d[0]), d
d = ok(M.fetch('1', '(BODY.PEEK[]<6.100>)'), 'partial 2')
assert sec(d) == msg1[6:106], d
d = ok(M.fetch('1', '(BODY.PEEK[HEADER])'), 'header')
assert sec(d) == msg1[:msg1.index(b'\r\n\r\n') + 4], d
d = ok(M.fetch('1', '(RFC822.HEADER)'), 'rfc822.header')
d = ok(M.fetch('1', '(FLAGS)'), 'flags before')
assert b'\\Seen' not in d[0], d
d = ok(M.fetch('1', '(BODY[])'), 'body sets seen')
assert sec(d) == msg1, d
d = ok(M.fetch('1', '(FLAGS)'), 'flags after')
assert b'\\Seen' in d[0], d
d = ok(M.uid('FETCH', '2:*', '(FLAGS)'), 'uid fetch')
assert b'UID 2' in d[0] and b'UID 3' in d[1], d
d = ok(M.fetch('1', 'FAST'), 'macro fast')
assert b'RFC822.SIZE' in d[0]
no(lambda: M.fetch('9', '(FLAGS)'), 'fetch beyond the last')

# --- STORE ---
d = ok(M.store('2', '+FLAGS', r'(\Answered $Custom)'), 'store +')
assert b'\\Answered' in d[0] and b'$Custom' in d[0], d
d = ok(M.store('2', '-FLAGS', r'(\Answered)'), 'store -')
assert b'\\Answered' not in d[0] and b'$Custom' in d[0], d
d = ok(M.store('3', '+FLAGS.SILENT', r'(\Deleted)'), 'store silent')
assert d == [None], d
d = ok(M.uid('STORE', '1', 'FLAGS', r'(\Seen \Draft)'), 'uid store replace')
assert b'\\Draft' in d[0] and b'\\Flagged' not in d[0] and b'UID 1' in d[0], d

# --- SEARCH: every key ---
def s(*crit):
    return ok(M.search(None, *crit), crit)[0].split()
assert s('ALL') == [b'1', b'2', b'3']
assert s('SEEN') == [b'1', b'3'] and s('UNSEEN') == [b'2']
assert s('DELETED') == [b'3'] and s('UNDELETED') == [b'1', b'2']
assert s('DRAFT') == [b'1'] and s('UNDRAFT') == [b'2', b'3']
assert s('FLAGGED') == [] and s('UNFLAGGED') == [b'1', b'2', b'3']
assert s('ANSWERED') == [] and s('UNANSWERED') == [b'1', b'2', b'3']
assert s('KEYWORD', '$Custom') == [b'2'] and s('UNKEYWORD', '$Custom') == [b'1', b'3']
assert s('NEW') == [] and s('OLD') == [b'1', b'2', b'3'] and s('RECENT') == []
assert s('FROM', 'carol') == [b'2'] and s('TO', 'alice') == [b'1', b'2']
assert s('CC', 'dan') == [b'2'] and s('BCC', 'dan') == []
assert s('SUBJECT', 'NOTE') == [b'1']
assert s('HEADER', 'X-Tag', 'blue') == [b'2'] and s('HEADER', 'X-Tag', '""') == [b'2']
assert s('BODY', 'pears') == [b'2'] and s('BODY', 'X-Tag') == []
assert s('TEXT', 'apples') == [b'1'] and s('TEXT', 'x-tag') == [b'2']
assert s('LARGER', '200') == [b'2'] and s('SMALLER', '40') == [b'3']
assert s('SENTON', '3-Mar-2026') == [b'2'] and s('SENTBEFORE', '3-Mar-2026') == [b'1']
assert s('SENTSINCE', '3-Mar-2026') == [b'2']
assert s('BEFORE', '1-Jan-2024') == [b'1'] and s('ON', '14-Nov-2023') == [b'1']
assert s('SINCE', '1-Jan-2024') == [b'2', b'3']
assert s('UID', '2:*') == [b'2', b'3'] and s('2:3') == [b'2', b'3']
assert s('NOT', 'SEEN') == [b'2'] and s('OR', 'DRAFT', 'DELETED') == [b'1', b'3']
assert s('(SEEN', 'UNDELETED)') == [b'1']
assert ok(M.uid('SEARCH', None, 'FROM', 'bob'), 'uid search')[0].split() == [b'1']
typ, data = M._simple_command('SEARCH', 'RETURN', '(MIN MAX COUNT)', 'ALL')
assert typ == 'OK' and b'MIN 1 MAX 3 COUNT 3' in M.untagged_responses.pop('ESEARCH')[0], data

# --- COPY / MOVE with COPYUID ---
r = ok(M.copy('1:2', 'Archive'), 'copy')
assert M.untagged_responses.get('COPYUID') or True
typ, data = M._simple_command('COPY', '1', 'Trash')
assert typ == 'OK' and b'COPYUID' in data[0], data
st = ok(M.status('Archive', '(MESSAGES)'), 'status archive')
assert b'MESSAGES 2' in st[0], st
typ, data = M._simple_command('UID', 'MOVE', '2', 'Junk')
assert typ == 'OK', data
moved = M.untagged_responses.pop('OK', [])
assert any(b'COPYUID' in x for x in moved), moved
assert M.untagged_responses.pop('EXPUNGE') == [b'2']
assert b'MESSAGES 1' in ok(M.status('Junk', '(MESSAGES)'), 'junk')[0]
no(lambda: M.copy('1', 'Nope'), 'copy to missing')

# --- EXPUNGE / UID EXPUNGE ---
# Now: 1 = msg1 (uid 1), 2 = third (uid 3, \Deleted).
d = ok(M.expunge(), 'expunge')
assert d == [b'2'], d
ok(M.store('1', '+FLAGS', r'(\Deleted)'), 'delete 1')
ok(M.append('INBOX', r'(\Deleted)', None, b'Subject: four\r\n\r\n4\r\n'), 'append 4')
ok(M.noop(), 'noop')
typ, data = M.uid('EXPUNGE', '4')
assert typ == 'OK', data
d = ok(M.search(None, 'ALL'), 'after uid expunge')[0].split()
assert d == [b'1'], d
st = ok(M.status('INBOX', '(MESSAGES UIDNEXT)'), 'status after')
assert b'MESSAGES 1' in st[0] and b'UIDNEXT 5' in st[0], st

# --- UNSELECT, EXAMINE (read-only), CLOSE ---
ok(M.unselect(), 'unselect')
typ, data = M.select('INBOX', readonly=True)
assert typ == 'OK'
no(lambda: M.store('1', '+FLAGS', r'(\Seen)'), 'store read-only')
ok(M.close(), 'close read-only keeps deleted')
assert ok(M.status('INBOX', '(MESSAGES)'), 's')[0].find(b'MESSAGES 1') >= 0
ok(M.select('INBOX'), 'select again')
ok(M.close(), 'close expunges')
assert b'MESSAGES 0' in ok(M.status('INBOX', '(MESSAGES)'), 's')[0]
no(lambda: M.fetch('1', '(FLAGS)'), 'fetch after close')
M.logout()

# --- implicit TLS and AUTHENTICATE PLAIN ---
S = imaplib.IMAP4_SSL('127.0.0.1', tls_port, ssl_context=ctx)
assert 'STARTTLS' not in S.capabilities and 'AUTH=PLAIN' in S.capabilities
ok(S.authenticate('PLAIN', lambda _: b'\x00alice\x00secret'), 'authenticate plain')
# (after APPEND: imaplib wraps APPEND literals in `UTF8 (...)` inside the literal once enabled)
ok(S.enable('UTF8=ACCEPT'), 'enable')
assert b'UTF8=ACCEPT' in S.untagged_responses.pop('ENABLED', [b''])[0]
ok(S.select('Archive'), 'select archive')
S.logout()

# --- UIDs are never reused ---
P = imaplib.IMAP4('127.0.0.1', plain_port)
ok(P.login('alice', 'secret'), 'plain login allowed by configuration')
r = ok(P.append('INBOX', None, None, b'Subject: five\r\n\r\n5\r\n'), 'append 5')
assert b'APPENDUID %d 5]' % validity in r[0], r
P.logout()
print("ALL OK")
"#;

#[test]
fn python_imaplib_covers_every_command() {
    let dir = mailroom_testkit::temp_dir();
    let ports = start(dir.path());
    let root = dir.path().join("alice").join("Maildir");
    let script = format!("{COMMON}{EVERY_COMMAND}");
    run_python(
        &script,
        &[
            ports.starttls.to_string(),
            ports.tls.to_string(),
            ports.plain.to_string(),
            root.display().to_string(),
        ],
    );
}

const TWO_SESSIONS: &str = r#"
import threading
port, root = int(sys.argv[1]), sys.argv[2]

class Idler:
    """A raw second session that can IDLE (imaplib before 3.14 cannot)."""
    def __init__(self):
        self.s = socket.create_connection(('127.0.0.1', port), timeout=10)
        self.f = self.s.makefile('rb')
        self.f.readline()
        self.cmd(b'l LOGIN alice secret')
        self.cmd(b's SELECT INBOX')
    def cmd(self, line):
        tag = line.split()[0]
        self.s.sendall(line + b'\r\n')
        out = []
        while True:
            l = self.f.readline()
            assert l, 'connection closed'
            out.append(l)
            if l.startswith(tag + b' '):
                assert l.startswith(tag + b' OK'), out
                return out
    def idle(self):
        self.s.sendall(b'i IDLE\r\n')
        assert self.f.readline().startswith(b'+'), 'idle continuation'
    def expect(self, pattern, within=10):
        self.s.settimeout(within)
        l = self.f.readline()
        assert re.search(pattern, l), (pattern, l)
        return l
    def done(self):
        self.s.sendall(b'DONE\r\n')
        while True:
            l = self.f.readline()
            if l.startswith(b'i '):
                assert l.startswith(b'i OK'), l
                return

A = imaplib.IMAP4('127.0.0.1', port)
ok(A.login('alice', 'secret'), 'login A')
ok(A.select('INBOX'), 'select A')
B = Idler()

# New mail from another session is announced to the idler.
B.idle()
ok(A.append('INBOX', None, None, b'Subject: one\r\n\r\n1\r\n'), 'append')
B.expect(rb'^\* 1 EXISTS')
# New mail delivered into the Maildir by another process (as LMTP does): found by polling.
name = '%d.M1P1Q1.external,S=20' % int(time.time())
with open(os.path.join(root, 'tmp', name), 'wb') as f:
    f.write(b'Subject: two\r\n\r\n2\r\n')
os.rename(os.path.join(root, 'tmp', name), os.path.join(root, 'new', name))
B.expect(rb'^\* 2 EXISTS')
# Another session's flag change.
ok(A.noop(), 'noop A')
ok(A.store('1', '+FLAGS', r'(\Flagged)'), 'store A')
B.expect(rb'^\* 1 FETCH \(UID 1 FLAGS \(\\Flagged\)\)')
# Another session's expunge (EXPUNGE decrements the count: no EXISTS follows).
ok(A.store('1', '+FLAGS', r'(\Deleted)'), 'delete A')
B.expect(rb'^\* 1 FETCH')
ok(A.expunge(), 'expunge A')
B.expect(rb'^\* 1 EXPUNGE')
B.done()
out = b''.join(B.cmd(b'f UID FETCH 1:* (UID)'))
assert b'UID 2' in out and b'UID 1 ' not in out, out

# Concurrent STORE on one message from both sessions: no update lost.
ok(A.noop(), 'noop A')
for k in range(10):
    kw_a, kw_b = b'$a%d' % k, b'$b%d' % k
    t = threading.Thread(target=lambda: ok(A.store('1', '+FLAGS', '(%s)' % kw_a.decode()), 'A'))
    t.start()
    B.cmd(b'x STORE 1 +FLAGS (' + kw_b + b')')
    t.join()
ok(A.noop(), 'noop: learn of B\'s last change')
flags = ok(A.fetch('1', '(FLAGS)'), 'flags')[0]
for k in range(10):
    assert b'$a%d' % k in flags and b'$b%d' % k in flags, flags

# Concurrent EXPUNGE from both sessions, then new mail: UIDs never reused.
for i in range(5):
    ok(A.append('INBOX', r'(\Deleted)', None, b'Subject: d\r\n\r\nd\r\n'), 'append d')
ok(A.noop(), 'noop')
B.cmd(b'n NOOP')
t = threading.Thread(target=lambda: ok(A.expunge(), 'expunge A'))
t.start()
B.cmd(b'e EXPUNGE')
t.join()
r = ok(A.append('INBOX', None, None, b'Subject: last\r\n\r\nlast\r\n'), 'append last')
assert b'APPENDUID' in r[0] and int(re.search(rb'APPENDUID \d+ (\d+)', r[0]).group(1)) == 8, r
ok(A.noop(), 'noop')
uids = ok(A.uid('SEARCH', None, 'ALL'), 'uids')[0].split()
assert uids == [b'2', b'8'], uids
out = b''.join(B.cmd(b'z UID SEARCH ALL'))
assert b'SEARCH 2 8' in out, out
A.logout()
print("ALL OK")
"#;

#[test]
fn two_sessions_idle_and_concurrent_store_and_expunge() {
    let dir = mailroom_testkit::temp_dir();
    let ports = start(dir.path());
    let root = dir.path().join("alice").join("Maildir");
    let script = format!("{COMMON}{TWO_SESSIONS}");
    run_python(
        &script,
        &[ports.plain.to_string(), root.display().to_string()],
    );
}

const HOSTILE: &str = r#"
port, home = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(('127.0.0.1', port), timeout=10)
f = s.makefile('rb')
assert f.readline().startswith(b'* OK')
def send(line):
    s.sendall(line + b'\r\n')
def until(tag):
    out = []
    while True:
        l = f.readline()
        assert l, ('closed', out)
        out.append(l)
        if l.startswith(tag + b' '):
            return l, out
# Commands in the wrong state.
send(b'w1 SELECT INBOX'); l, _ = until(b'w1'); assert l.startswith(b'w1 BAD'), l
send(b'w2 FETCH 1 FLAGS'); l, _ = until(b'w2'); assert l.startswith(b'w2 BAD'), l
send(b'w3 LOGIN alice secret'); l, _ = until(b'w3'); assert l.startswith(b'w3 OK'), l
send(b'w4 FETCH 1 FLAGS'); l, _ = until(b'w4'); assert l.startswith(b'w4 BAD'), l
send(b'w5 EXPUNGE'); l, _ = until(b'w5'); assert l.startswith(b'w5 BAD'), l
# Mailbox names that try to leave the Maildir.
for i, name in enumerate([b'..', b'"../x"', b'"a/b"', b'"~x"', b'"/etc"', b'"Sent/../../x"',
                          b'"x/../../../y"', b'".hidden"', b'"a..b"', b'"tmp"', b'"cur"']):
    for cmd in [b'CREATE', b'SELECT', b'DELETE', b'STATUS %s (MESSAGES)']:
        tag = b'h%d' % i
        line = (cmd % name) if b'%s' in cmd else cmd + b' ' + name
        send(tag + b' ' + line); l, out = until(tag)
        assert l.startswith(tag + b' NO') or l.startswith(tag + b' BAD'), (line, l)
send(b'r1 RENAME Sent "../../escaped"'); l, _ = until(b'r1'); assert not l.startswith(b'r1 OK'), l
send(b'r2 APPEND "../x" {3+}\r\nabc'); l, _ = until(b'r2'); assert not l.startswith(b'r2 OK'), l
# A 4 GB literal announced: refused without a continuation request, connection usable.
send(b'big APPEND INBOX {4294967296}')
l = f.readline()
assert l.startswith(b'big NO') or l.startswith(b'big BAD'), l
send(b'n1 NOOP'); l, _ = until(b'n1'); assert l.startswith(b'n1 OK'), l
# A million open parentheses: BAD, nothing else.
send(b'p1 SEARCH ' + b'(' * 1000000)
l, out = until(b'p1'); assert l.startswith(b'p1 BAD'), l
send(b'p2 SEARCH ' + b'(' * 1000 + b'ALL' + b')' * 1000)
l, out = until(b'p2'); assert l.startswith(b'p2 BAD') or l.startswith(b'p2 NO'), l
send(b'n2 NOOP'); l, _ = until(b'n2'); assert l.startswith(b'n2 OK'), l
send(b'q LOGOUT'); until(b'q')
# Nothing was made outside the user's Maildir.
assert sorted(os.listdir(home)) == ['Maildir'], os.listdir(home)
parent = os.path.dirname(home)
assert sorted(os.listdir(parent)) == ['alice'], os.listdir(parent)
for dirpath, dirs, files in os.walk(os.path.join(home, 'Maildir')):
    for d in dirs:
        assert '..' not in d and d not in ('x', 'y', 'escaped', 'etc'), (dirpath, d)
print("ALL OK")
"#;

#[test]
fn hostile_input_gets_bad_or_no_and_stays_inside_the_maildir() {
    let dir = mailroom_testkit::temp_dir();
    let ports = start(dir.path());
    let home = dir.path().join("alice");
    let script = format!("{COMMON}{HOSTILE}");
    run_python(
        &script,
        &[ports.plain.to_string(), home.display().to_string()],
    );
}
