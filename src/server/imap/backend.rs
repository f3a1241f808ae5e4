//! The mailbox backend: answers the session's commands against one user's Maildir++ tree.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use mailroom_imap_proto::session::Answer;
use mailroom_imap_proto::types::{
    AString, Address, Atom, Body, BodyExtension, Code, CommandBody, Data, Date, DateTime,
    ESearchItem, Envelope, FetchAttribute, FetchItems, FetchValue, Flag, FlagPerm, IString,
    ListData, ListMailbox, ListReturnOption, ListSelectOption, Mailbox, MailboxAttr,
    NamespaceDescr, PartSpecific, Response, SearchKey, SearchReturnOption, SectionText, SeqNumber,
    Sequence, SequenceSet, StatusAttribute, StatusKind, StatusResponse, StoreKind,
};
use mailroom_maildir::{Flags, Maildir, Message as MdMessage};

use super::{Hub, MailUser, message};

/// The folders made at first login, with their RFC 6154 attribute.
const SPECIAL: [(&str, &str); 5] = [
    ("Sent", "\\Sent"),
    ("Drafts", "\\Drafts"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
    ("Archive", "\\Archive"),
];

/// Largest message read whole into memory for FETCH and SEARCH (the framing limit of APPEND
/// is 64 MiB; a bigger file delivered by LMTP is served from the first 256 MiB).
const MAX_READ: u64 = 256 * 1024 * 1024;

#[derive(Debug, Clone)]
struct Msg {
    uid: u32,
    md: MdMessage,
}

#[derive(Debug)]
struct Selected {
    name: String,
    maildir: Maildir,
    read_only: bool,
    uid_validity: u32,
    next_uid: u32,
    msgs: Vec<Msg>,
    /// Keyword names by Maildir keyword index.
    keywords: Vec<(u8, String)>,
    /// SEARCHRES (`$`).
    saved: Vec<u32>,
    /// Modification times of `new/` and `cur/` when the view was last read, if old enough to
    /// trust (see [`Backend::sync`]).
    stamp: Option<(SystemTime, SystemTime)>,
    /// Expunges seen on disk but not yet announced (during FETCH, STORE, SEARCH).
    pending_expunge: bool,
}

/// About how many octets of responses a FETCH batch holds (see [`Backend::start`]).
pub(crate) const FETCH_BATCH_BYTES: usize = 1 << 20;

/// At most this many messages in one FETCH batch, so a batch of small items (flags, UIDs)
/// stays short too.
const FETCH_BATCH_MESSAGES: usize = 1000;

/// One step of a command's answer: untagged responses to send now, then either the tagged
/// answer (the command is complete) or, when `answer` is `None`, more to come from
/// [`Backend::resume`].
#[derive(Debug, Default)]
pub struct Step {
    /// Untagged responses to send now, before anything of the next step.
    pub data: Vec<Data>,
    /// The answer (its own untagged responses, then the tagged status); `None` while a FETCH
    /// has messages left.
    pub answer: Option<Answer>,
}

/// What each message of a FETCH needs from its file.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// Anything from the file at all (not only flags, UID, size, date).
    needs_raw: bool,
    /// The MIME structure (mail-parser), not only raw octets.
    needs_parse: bool,
    /// The header suffices.
    header_only: bool,
    /// Only ENVELOPE needs the file (served from the Hub's cache when there).
    envelope_only: bool,
    /// `\Seen` is set implicitly (BODY[] without PEEK, RFC822, RFC822.TEXT, BINARY[]).
    sets_seen: bool,
}

/// A FETCH under way: the messages it names and how far it got.
#[derive(Debug)]
struct Fetching {
    attrs: Vec<FetchAttribute>,
    plan: Plan,
    /// Sequence positions (0-based) still to answer, from `next` on.
    positions: Vec<usize>,
    next: usize,
}

/// One session's backend: the logged-in user and the selected mailbox.
#[derive(Debug)]
pub struct Backend {
    hub: Arc<Hub>,
    user: Option<(MailUser, Maildir)>,
    selected: Option<Selected>,
    /// The FETCH being answered in batches, if any.
    fetching: Option<Fetching>,
    /// Octets of responses per FETCH batch.
    batch_bytes: usize,
}

fn no(text: impl Into<String>) -> Answer {
    Answer::no(text)
}

fn flag_of(f: &Flag) -> Option<Flags> {
    match f {
        Flag::Seen => Some(Flags::SEEN),
        Flag::Answered => Some(Flags::REPLIED),
        Flag::Flagged => Some(Flags::FLAGGED),
        Flag::Deleted => Some(Flags::TRASHED),
        Flag::Draft => Some(Flags::DRAFT),
        _ => None,
    }
}

fn days_from_civil(y: i64, m: u8, d: u8) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn datetime_of(t: SystemTime) -> Option<DateTime> {
    let secs = t.duration_since(UNIX_EPOCH).ok()?.as_secs() as i64;
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    let date = Date::new(u16::try_from(y).ok()?, m, d).ok()?;
    DateTime::new(
        date,
        (s / 3600) as u8,
        (s / 60 % 60) as u8,
        (s % 60) as u8,
        0,
    )
    .ok()
}

fn time_of(dt: &DateTime) -> SystemTime {
    let date = dt.date();
    let (h, mi, s) = dt.time();
    let days = days_from_civil(i64::from(date.year()), date.month(), date.day());
    let secs = days * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(s)
        - i64::from(dt.zone_minutes()) * 60;
    UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64)
}

fn date_key(d: &Date) -> (u16, u8, u8) {
    (d.year(), d.month(), d.day())
}

impl Backend {
    /// A backend with no user yet.
    pub fn new(hub: Arc<Hub>) -> Self {
        Self {
            hub,
            user: None,
            selected: None,
            fetching: None,
            batch_bytes: FETCH_BATCH_BYTES,
        }
    }

    /// Sets about how many octets of responses one FETCH batch holds (default 1 MiB).
    pub(crate) fn set_batch_bytes(&mut self, bytes: usize) {
        self.batch_bytes = bytes.max(1);
    }

    /// The selected mailbox's directory.
    pub fn selected_path(&self) -> Option<PathBuf> {
        self.selected.as_ref().map(|s| s.maildir.path().to_owned())
    }

    /// Opens (or creates) the user's Maildir and the special-use folders.
    pub fn login(&mut self, user: MailUser) -> Answer {
        let maildir = match Maildir::open(&user.maildir) {
            Ok(m) => m,
            Err(_) => match user
                .maildir
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .map_err(|e| e.to_string())
                .and_then(|()| Maildir::create(&user.maildir).map_err(|e| e.to_string()))
            {
                Ok(m) => m,
                Err(e) => return no(format!("[SERVERBUG] cannot open the mailbox: {e}")),
            },
        };
        let existing = maildir
            .list_folders()
            .map(|l| l.folders)
            .unwrap_or_default();
        let subs_missing = !maildir.path().join("subscriptions").exists();
        for (name, _) in SPECIAL {
            if !existing.iter().any(|f| f.as_str() == name) {
                let _ = maildir.create_folder(name);
            }
        }
        self.user = Some((user, maildir));
        if subs_missing {
            let names: Vec<String> = SPECIAL.iter().map(|(n, _)| (*n).to_owned()).collect();
            let _ = self.write_subscriptions(&names);
        }
        Answer::ok("Logged in")
    }

    fn root(&self) -> Option<&Maildir> {
        self.user.as_ref().map(|(_, m)| m)
    }

    /// The Maildir of mailbox `name` (decoded), refusing names that would leave the tree.
    fn open_mailbox(&self, name: &str) -> Result<Maildir, Answer> {
        let root = self.root().ok_or_else(|| no("Not logged in"))?;
        if name.eq_ignore_ascii_case("INBOX") {
            return Maildir::open(root.path()).map_err(|e| no(format!("cannot open INBOX: {e}")));
        }
        root.folder(name).map_err(|e| match e {
            mailroom_maildir::FolderError::NotFound { .. } => {
                no("Mailbox does not exist").with_code(Code::TryCreate)
            }
            e => no(format!("[CANNOT] {e}")),
        })
    }

    fn decode_name(mailbox: &Mailbox, utf8: bool) -> Result<String, Answer> {
        let name = mailbox
            .to_unicode(utf8)
            .map_err(|e| Answer::bad(format!("invalid mailbox name: {e}")))?;
        if name.eq_ignore_ascii_case("INBOX") {
            return Ok("INBOX".into());
        }
        Ok(name)
    }

    fn subscriptions_path(&self) -> Option<PathBuf> {
        self.root().map(|r| r.path().join("subscriptions"))
    }

    fn read_subscriptions(&self) -> Vec<String> {
        let Some(p) = self.subscriptions_path() else {
            return Vec::new();
        };
        std::fs::read_to_string(p)
            .map(|s| {
                s.lines()
                    .filter(|l| !l.is_empty() && *l != "V\t2")
                    .map(|l| l.rsplit('\t').next().unwrap_or(l).to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn write_subscriptions(&self, names: &[String]) -> std::io::Result<()> {
        let Some(p) = self.subscriptions_path() else {
            return Ok(());
        };
        let tmp = p.with_extension("tmp");
        let mut text = String::new();
        for n in names {
            text.push_str(n);
            text.push('\n');
        }
        {
            let mut f = std::fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut f, text.as_bytes())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &p)?;
        if let Some(dir) = p.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    /// Untagged updates for an idling client: expunges, new messages, flag changes.
    pub fn updates(&mut self) -> Vec<Data> {
        self.sync(true)
    }

    /// Re-reads the selected mailbox; returns the untagged responses that tell the client.
    /// Without `expunges`, vanished messages stay in the view (RFC 9051 7.5.1 forbids EXPUNGE
    /// during FETCH, STORE and SEARCH by sequence number).
    fn sync(&mut self, expunges: bool) -> Vec<Data> {
        let Some(sel) = self.selected.as_mut() else {
            return Vec::new();
        };
        // Every change to a Maildir (delivery, flag change, expunge) renames or creates an
        // entry of new/ or cur/, which updates that directory's mtime. When both are as they
        // were at the last read, nothing changed and the scan is skipped (what makes one
        // command per message, as mbsync sends, cheap). A time less than two seconds old is
        // not trusted: file-system clocks tick coarsely, and a change within the same tick
        // as our read would leave the time unchanged.
        let stamp = dir_stamp(sel.maildir.path());
        if stamp.is_some() && stamp == sel.stamp && !(expunges && sel.pending_expunge) {
            return Vec::new();
        }
        sel.stamp = stamp.filter(|(a, b)| {
            let now = SystemTime::now();
            [a, b].iter().all(|t| {
                now.duration_since(**t)
                    .is_ok_and(|d| d > std::time::Duration::from_secs(2))
            })
        });
        let Ok(list) = sel.maildir.sync_uids() else {
            return Vec::new();
        };
        let Ok(scan) = sel.maildir.scan() else {
            return Vec::new();
        };
        let by_key: HashMap<&str, &MdMessage> = scan
            .messages
            .iter()
            .map(|m| (m.key().as_str(), m))
            .collect();
        let mut now: Vec<Msg> = list
            .entries()
            .iter()
            .filter_map(|e| {
                by_key.get(e.key.as_str()).map(|m| Msg {
                    uid: e.uid,
                    md: (*m).clone(),
                })
            })
            .collect();
        now.sort_by_key(|m| m.uid);
        sel.uid_validity = list.uid_validity;
        sel.next_uid = list.next_uid;
        if let Ok(kw) = sel.maildir.read_keywords() {
            sel.keywords = (0..26u8)
                .filter_map(|i| kw.name(i).map(|n| (i, n.to_owned())))
                .collect();
        }
        let mut out = Vec::new();
        let present: HashMap<u32, &Msg> = now.iter().map(|m| (m.uid, m)).collect();
        // Expunges, highest sequence number first so each number is valid when sent.
        sel.pending_expunge = !expunges && sel.msgs.iter().any(|m| !present.contains_key(&m.uid));
        if expunges {
            for i in (0..sel.msgs.len()).rev() {
                if !present.contains_key(&sel.msgs[i].uid) {
                    sel.msgs.remove(i);
                    out.push(Data::Expunge(i as u32 + 1));
                }
            }
        }
        // Flag changes.
        let kw = sel.keywords.clone();
        for (i, m) in sel.msgs.iter_mut().enumerate() {
            if let Some(n) = present.get(&m.uid) {
                if n.md.flags() != m.md.flags() {
                    out.push(Data::Fetch {
                        seq: i as u32 + 1,
                        items: vec![
                            FetchValue::Uid(m.uid),
                            FetchValue::Flags(imap_flags(n.md.flags(), &kw)),
                        ],
                    });
                }
                m.md = n.md.clone();
            }
        }
        // New messages.
        let last = sel.msgs.last().map_or(0, |m| m.uid);
        let before = sel.msgs.len();
        sel.msgs.extend(now.into_iter().filter(|m| m.uid > last));
        if sel.msgs.len() != before {
            out.push(Data::Exists(sel.msgs.len() as u32));
        }
        out
    }

    fn changed(&self) {
        if let Some(sel) = &self.selected {
            self.hub.changed(sel.maildir.path());
        }
    }

    /// Answers one command whole, FETCH included (all its responses in the answer): for
    /// callers that hold no connection. A server sends a FETCH in batches with
    /// [`Self::start`] and [`Self::resume`] instead.
    pub fn command(&mut self, command: mailroom_imap_proto::types::Command, utf8: bool) -> Answer {
        let mut data = Vec::new();
        let mut step = self.start(command, utf8);
        let mut answer = loop {
            data.append(&mut step.data);
            match step.answer {
                Some(a) => break a,
                None => step = self.resume(),
            }
        };
        if !data.is_empty() {
            let rest = std::mem::take(&mut answer.untagged);
            answer.untagged = data.into_iter().map(Response::Data).collect();
            answer.untagged.extend(rest);
        }
        answer
    }

    /// Starts answering one command. Most are answered at once (the step carries the
    /// answer); a FETCH gives its first batch of responses, about 1 MiB of them (or 1,000
    /// messages), and [`Self::resume`] gives the next ones: send each batch before asking for
    /// the next, so a session holds one batch, not the whole mailbox that `FETCH 1:* BODY[]`
    /// names. No other command may come between (the session answers one at a time).
    pub fn start(&mut self, command: mailroom_imap_proto::types::Command, utf8: bool) -> Step {
        use CommandBody as C;
        self.fetching = None;
        // RFC 9051 7.5.1: expunges may be announced during UID commands, not during FETCH,
        // STORE and SEARCH by sequence number; so UID commands first bring the view up to date.
        let is_uid = matches!(
            command.body,
            C::Fetch { uid: true, .. }
                | C::Store { uid: true, .. }
                | C::Search { uid: true, .. }
                | C::Copy { uid: true, .. }
                | C::Move { uid: true, .. }
        );
        let mut before = if is_uid { self.sync(true) } else { Vec::new() };
        if let C::Fetch { uid, set, items } = command.body {
            let mut step = match self.start_fetch(uid, &set, &items) {
                Ok(()) => self.resume(),
                Err(answer) => Step {
                    data: Vec::new(),
                    answer: Some(answer),
                },
            };
            before.append(&mut step.data);
            step.data = before;
            return step;
        }
        let mut answer = self.dispatch(command.body, utf8);
        if !before.is_empty() {
            let rest = std::mem::take(&mut answer.untagged);
            answer.untagged = before.into_iter().map(Response::Data).collect();
            answer.untagged.extend(rest);
        }
        Step {
            data: Vec::new(),
            answer: Some(answer),
        }
    }

    /// The next batch of the FETCH under way (see [`Self::start`]); with the answer when it
    /// is the last. Without a FETCH under way, answers NO.
    pub fn resume(&mut self) -> Step {
        let Some(mut fetching) = self.fetching.take() else {
            return Step {
                data: Vec::new(),
                answer: Some(no("[SERVERBUG] no FETCH under way")),
            };
        };
        // On a failure, what was built before it is sent, as Dovecot does: earlier batches
        // are on the wire already.
        let (data, failed) = self.fetch_batch(&mut fetching);
        let answer = match failed {
            Some(answer) => Some(answer),
            None if fetching.next < fetching.positions.len() => {
                self.fetching = Some(fetching);
                None
            }
            None => Some(Answer::ok("FETCH completed")),
        };
        Step { data, answer }
    }

    fn dispatch(&mut self, body: CommandBody, utf8: bool) -> Answer {
        use CommandBody as C;
        match body {
            C::Noop | C::Check => Answer::ok("NOOP completed").with_data(self.sync(true)),
            C::Id(_) => Answer::ok("ID completed")
                .with_data([Data::Id(Some(vec![(istr("name"), Some(istr("mailroom")))]))]),
            C::Namespace => Answer::ok("NAMESPACE completed").with_data([Data::Namespace([
                Some(vec![NamespaceDescr {
                    prefix: istr(""),
                    delimiter: Some('.'),
                }]),
                None,
                None,
            ])]),
            C::Select(m) => self.select(&m, false, utf8),
            C::Examine(m) => self.select(&m, true, utf8),
            C::Create(m) => self.create(&m, utf8),
            C::Delete(m) => self.delete(&m, utf8),
            C::Rename { from, to } => self.rename(&from, &to, utf8),
            C::Subscribe(m) => self.subscribe(&m, utf8, true),
            C::Unsubscribe(m) => self.subscribe(&m, utf8, false),
            C::List {
                selection,
                reference,
                patterns,
                returns,
                ..
            } => self.list(
                &selection,
                &reference,
                &patterns,
                returns.as_deref(),
                utf8,
                false,
            ),
            C::Lsub { reference, pattern } => {
                self.list(&[], &reference, &[pattern], None, utf8, true)
            }
            C::Status { mailbox, items } => match self.status(&mailbox, &items, utf8) {
                Ok(d) => Answer::ok("STATUS completed").with_data([d]),
                Err(a) => a,
            },
            C::Append {
                mailbox,
                flags,
                date,
                message,
            } => self.append(
                &mailbox,
                flags.as_deref(),
                date.as_ref(),
                message.data(),
                utf8,
            ),
            C::Close => {
                let mut a = Answer::ok("CLOSE completed");
                if let Some(sel) = &self.selected
                    && !sel.read_only
                {
                    // RFC 9051 6.4.1: CLOSE expunges silently.
                    let _ = self.expunge(None);
                }
                self.selected = None;
                a.untagged.clear();
                a
            }
            C::Unselect => {
                self.selected = None;
                Answer::ok("UNSELECT completed")
            }
            C::Expunge => self.expunge(None),
            C::UidExpunge(set) => self.expunge(Some(&set)),
            C::Search {
                uid,
                returns,
                criteria,
                ..
            } => self.search(uid, returns.as_deref(), &criteria),
            C::Store {
                uid,
                set,
                kind,
                silent,
                flags,
                ..
            } => self.store(uid, &set, kind, silent, &flags),
            C::Copy { uid, set, mailbox } => self.copy(uid, &set, &mailbox, false, utf8),
            C::Move { uid, set, mailbox } => self.copy(uid, &set, &mailbox, true, utf8),
            other => Answer::bad(format!("{} not supported here", other.name())),
        }
    }

    fn select(&mut self, mailbox: &Mailbox, read_only: bool, utf8: bool) -> Answer {
        self.selected = None;
        let name = match Self::decode_name(mailbox, utf8) {
            Ok(n) => n,
            Err(a) => return a,
        };
        let maildir = match self.open_mailbox(&name) {
            Ok(m) => m,
            Err(a) => return a,
        };
        self.selected = Some(Selected {
            name,
            maildir,
            read_only,
            uid_validity: 0,
            next_uid: 1,
            msgs: Vec::new(),
            keywords: Vec::new(),
            saved: Vec::new(),
            stamp: None,
            pending_expunge: false,
        });
        let _ = self.sync(true);
        let Some(sel) = &self.selected else {
            return no("cannot select");
        };
        let mut flags = vec![
            Flag::Answered,
            Flag::Flagged,
            Flag::Deleted,
            Flag::Seen,
            Flag::Draft,
        ];
        flags.extend(
            sel.keywords
                .iter()
                .filter_map(|(_, n)| Atom::new(n.as_str()).ok().map(Flag::Keyword)),
        );
        let mut perm: Vec<FlagPerm> = flags.iter().cloned().map(FlagPerm::Flag).collect();
        perm.push(FlagPerm::Any);
        let status =
            |code| Response::Status(StatusResponse::untagged(StatusKind::Ok, "").with_code(code));
        let mut a = if read_only {
            Answer::ok("EXAMINE completed").with_code(Code::ReadOnly)
        } else {
            Answer::ok("SELECT completed").with_code(Code::ReadWrite)
        };
        a.untagged.push(Response::Data(Data::Flags(flags)));
        a.untagged
            .push(Response::Data(Data::Exists(sel.msgs.len() as u32)));
        a.untagged.push(Response::Data(Data::Recent(0)));
        a.untagged.push(status(Code::UidValidity(sel.uid_validity)));
        a.untagged.push(status(Code::UidNext(sel.next_uid)));
        a.untagged.push(status(Code::PermanentFlags(if read_only {
            Vec::new()
        } else {
            perm
        })));
        if let Some(pos) = sel
            .msgs
            .iter()
            .position(|m| !m.md.flags().contains(Flags::SEEN))
        {
            a.untagged.push(status(Code::Unseen(pos as u32 + 1)));
        }
        a
    }

    fn create(&mut self, mailbox: &Mailbox, utf8: bool) -> Answer {
        let name = match Self::decode_name(mailbox, utf8) {
            Ok(n) => n,
            Err(a) => return a,
        };
        let name = name.trim_end_matches('.');
        let Some(root) = self.root() else {
            return no("Not logged in");
        };
        if name.eq_ignore_ascii_case("INBOX") {
            return no("[ALREADYEXISTS] INBOX exists");
        }
        // RFC 9051 6.3.4: create the superior levels too.
        let levels: Vec<&str> = name.split('.').collect();
        for i in 1..levels.len() {
            let parent = levels[..i].join(".");
            if root.folder(&parent).is_err() {
                let _ = root.create_folder(&parent);
            }
        }
        match root.create_folder(name) {
            Ok(_) => Answer::ok("CREATE completed"),
            Err(mailroom_maildir::FolderError::Exists { .. }) => {
                no("[ALREADYEXISTS] Mailbox exists")
            }
            Err(e) => no(format!("[CANNOT] {e}")),
        }
    }

    fn delete(&mut self, mailbox: &Mailbox, utf8: bool) -> Answer {
        let name = match Self::decode_name(mailbox, utf8) {
            Ok(n) => n,
            Err(a) => return a,
        };
        if name == "INBOX" {
            return no("[CANNOT] INBOX cannot be deleted");
        }
        if self.selected.as_ref().is_some_and(|s| s.name == name) {
            self.selected = None;
        }
        let Some(root) = self.root() else {
            return no("Not logged in");
        };
        match root.delete_folder(&name) {
            Ok(()) => Answer::ok("DELETE completed"),
            Err(mailroom_maildir::FolderError::NotFound { .. }) => {
                no("[NONEXISTENT] Mailbox does not exist")
            }
            Err(e) => no(format!("[CANNOT] {e}")),
        }
    }

    fn rename(&mut self, from: &Mailbox, to: &Mailbox, utf8: bool) -> Answer {
        let (from, to) = match (Self::decode_name(from, utf8), Self::decode_name(to, utf8)) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(a), _) | (_, Err(a)) => return a,
        };
        if from == "INBOX" || to == "INBOX" {
            return no("[CANNOT] renaming INBOX is not supported");
        }
        let Some(root) = self.root() else {
            return no("Not logged in");
        };
        match root.rename_folder(&from, &to) {
            Ok(()) => Answer::ok("RENAME completed"),
            Err(mailroom_maildir::FolderError::NotFound { .. }) => {
                no("[NONEXISTENT] Mailbox does not exist")
            }
            Err(mailroom_maildir::FolderError::Exists { .. }) => {
                no("[ALREADYEXISTS] Target exists")
            }
            Err(e) => no(format!("[CANNOT] {e}")),
        }
    }

    fn subscribe(&mut self, mailbox: &Mailbox, utf8: bool, on: bool) -> Answer {
        let name = match Self::decode_name(mailbox, utf8) {
            Ok(n) => n,
            Err(a) => return a,
        };
        if name != "INBOX"
            && let Err(e) = mailroom_maildir::FolderName::new(&name)
        {
            return no(format!("[CANNOT] {e}"));
        }
        let mut subs = self.read_subscriptions();
        subs.retain(|s| *s != name);
        if on {
            subs.push(name);
        }
        match self.write_subscriptions(&subs) {
            Ok(()) => Answer::ok(if on {
                "SUBSCRIBE completed"
            } else {
                "UNSUBSCRIBE completed"
            }),
            Err(e) => no(format!("[SERVERBUG] {e}")),
        }
    }

    fn all_mailboxes(&self) -> Vec<String> {
        let mut names = vec!["INBOX".to_owned()];
        if let Some(root) = self.root()
            && let Ok(list) = root.list_folders()
        {
            names.extend(list.folders.iter().map(|f| f.as_str().to_owned()));
        }
        names
    }

    fn list(
        &mut self,
        selection: &[ListSelectOption],
        reference: &Mailbox,
        patterns: &[ListMailbox],
        returns: Option<&[ListReturnOption]>,
        utf8: bool,
        lsub: bool,
    ) -> Answer {
        let reference = String::from_utf8_lossy(reference.as_bytes()).into_owned();
        // RFC 9051 6.3.9: an empty pattern asks for the delimiter.
        if patterns.len() == 1 && patterns[0].as_bytes().is_empty() {
            let d = ListData {
                attributes: vec![MailboxAttr(atom("\\Noselect"))],
                delimiter: Some('.'),
                mailbox: Mailbox::new(AString::String(istr(""))),
                extended: Vec::new(),
            };
            return Answer::ok("LIST completed").with_data([if lsub {
                Data::Lsub(d)
            } else {
                Data::List(d)
            }]);
        }
        let subs = self.read_subscriptions();
        let subscribed_only = lsub || selection.contains(&ListSelectOption::Subscribed);
        let special_only = selection.contains(&ListSelectOption::SpecialUse);
        let want_status: Vec<StatusAttribute> = returns
            .unwrap_or(&[])
            .iter()
            .find_map(|r| match r {
                ListReturnOption::Status(s) => Some(s.clone()),
                _ => None,
            })
            .unwrap_or_default();
        let all = self.all_mailboxes();
        let mut out = Vec::new();
        for name in &all {
            let matched = patterns.iter().any(|p| {
                let pat = format!(
                    "{reference}{}",
                    Mailbox::new(AString::String(
                        IString::from_bytes(p.as_bytes().to_vec()).unwrap_or_else(|_| istr(""))
                    ))
                    .to_unicode(utf8)
                    .unwrap_or_default()
                );
                wildmatch(pat.as_bytes(), name.as_bytes())
                    || (name == "INBOX" && pat.eq_ignore_ascii_case("INBOX"))
            });
            if !matched {
                continue;
            }
            let is_sub = name == "INBOX" || subs.contains(name);
            if subscribed_only && !is_sub {
                continue;
            }
            let mut attrs = Vec::new();
            let special = SPECIAL.iter().find(|(n, _)| n == name).map(|(_, a)| *a);
            if special_only && special.is_none() {
                continue;
            }
            let prefix = format!("{name}.");
            let children = all.iter().any(|n| n.starts_with(&prefix));
            attrs.push(atom(if children {
                "\\HasChildren"
            } else {
                "\\HasNoChildren"
            }));
            if !lsub && is_sub && name != "INBOX" && subs.contains(name) {
                attrs.push(atom("\\Subscribed"));
            }
            if let Some(s) = special {
                attrs.push(atom(s));
            }
            let Ok(mailbox) = Mailbox::from_unicode(name, utf8) else {
                continue;
            };
            let d = ListData {
                attributes: attrs.into_iter().map(MailboxAttr).collect(),
                delimiter: Some('.'),
                mailbox: mailbox.clone(),
                extended: Vec::new(),
            };
            out.push(if lsub { Data::Lsub(d) } else { Data::List(d) });
            if !want_status.is_empty()
                && let Ok(s) = self.status(&mailbox, &want_status, utf8)
            {
                out.push(s);
            }
        }
        Answer::ok(if lsub {
            "LSUB completed"
        } else {
            "LIST completed"
        })
        .with_data(out)
    }

    fn status(
        &mut self,
        mailbox: &Mailbox,
        items: &[StatusAttribute],
        utf8: bool,
    ) -> Result<Data, Answer> {
        let name = Self::decode_name(mailbox, utf8)?;
        let md = self.open_mailbox(&name)?;
        let list = md.sync_uids().map_err(|e| no(format!("[SERVERBUG] {e}")))?;
        let scan = md.scan().map_err(|e| no(format!("[SERVERBUG] {e}")))?;
        let mut values = Vec::new();
        for item in items {
            let v = match item {
                StatusAttribute::Messages => scan.messages.len() as u64,
                StatusAttribute::UidNext => u64::from(list.next_uid),
                StatusAttribute::UidValidity => u64::from(list.uid_validity),
                StatusAttribute::Unseen => scan
                    .messages
                    .iter()
                    .filter(|m| !m.flags().contains(Flags::SEEN))
                    .count() as u64,
                StatusAttribute::Deleted => scan
                    .messages
                    .iter()
                    .filter(|m| m.flags().contains(Flags::TRASHED))
                    .count() as u64,
                StatusAttribute::Size => scan
                    .messages
                    .iter()
                    .map(|m| m.size().or_else(|| md.size(m).ok()).unwrap_or(0))
                    .sum(),
                StatusAttribute::Recent => 0,
                StatusAttribute::HighestModSeq => continue,
            };
            values.push((*item, v));
        }
        Ok(Data::Status {
            mailbox: mailbox.clone(),
            items: values,
        })
    }

    fn to_flags(md: &Maildir, flags: &[Flag]) -> Result<Flags, Answer> {
        let mut out = Flags::empty();
        for f in flags {
            if let Some(b) = flag_of(f) {
                out = out.union(b);
            } else if let Flag::Keyword(k) = f {
                let b = md
                    .keyword_flag(k.as_str())
                    .map_err(|e| no(format!("[LIMIT] {e}")))?;
                out = out.union(b);
            }
        }
        Ok(out)
    }

    fn append(
        &mut self,
        mailbox: &Mailbox,
        flags: Option<&[Flag]>,
        date: Option<&DateTime>,
        data: &[u8],
        utf8: bool,
    ) -> Answer {
        let name = match Self::decode_name(mailbox, utf8) {
            Ok(n) => n,
            Err(a) => return a,
        };
        let md = match self.open_mailbox(&name) {
            Ok(m) => m,
            Err(a) => return a,
        };
        let f = match Self::to_flags(&md, flags.unwrap_or(&[])) {
            Ok(f) => f,
            Err(a) => return a,
        };
        let uid = match deliver(&md, data, f, date.map(time_of)) {
            Ok(u) => u,
            Err(a) => return a,
        };
        self.hub.changed(md.path());
        let validity = md
            .read_uidlist()
            .ok()
            .flatten()
            .map_or(0, |l| l.uid_validity);
        let mut a = Answer::ok("APPEND completed");
        if let Ok(uids) = SequenceSet::single(uid) {
            a = a.with_code(Code::AppendUid {
                uid_validity: validity,
                uids,
            });
        }
        if self.selected.as_ref().is_some_and(|s| s.name == name) {
            a = a.with_data(self.sync(true));
        }
        a
    }

    /// Sequence positions (0-based) of the view that `set` names.
    fn resolve(&self, uid: bool, set: &SequenceSet) -> Vec<usize> {
        let Some(sel) = &self.selected else {
            return Vec::new();
        };
        if set.is_saved() {
            return sel
                .msgs
                .iter()
                .enumerate()
                .filter(|(_, m)| sel.saved.contains(&m.uid))
                .map(|(i, _)| i)
                .collect();
        }
        if uid {
            let largest = sel.msgs.last().map_or(0, |m| m.uid);
            // Ranges are checked against the view without walking 4 billion numbers.
            sel.msgs
                .iter()
                .enumerate()
                .filter(|(_, m)| set.contains(m.uid, largest))
                .map(|(i, _)| i)
                .collect()
        } else {
            let n = sel.msgs.len() as u32;
            let mut out: Vec<usize> = Vec::new();
            for s in set.items() {
                let (a, b) = match *s {
                    Sequence::Single(a) => (a.resolve(n), a.resolve(n)),
                    Sequence::Range(a, b) => (a.resolve(n), b.resolve(n)),
                };
                let (a, b) = (a.min(b), a.max(b).min(n));
                for i in a..=b {
                    if i >= 1 {
                        out.push(i as usize - 1);
                    }
                }
            }
            out.sort_unstable();
            out.dedup();
            out
        }
    }

    fn bad_seq(&self, uid: bool, set: &SequenceSet) -> bool {
        // RFC 9051 6.4.8: a sequence number beyond the last message is an error.
        if uid || set.is_saved() {
            return false;
        }
        let n = self.selected.as_ref().map_or(0, |s| s.msgs.len() as u32);
        set.items().iter().any(|s| {
            let check = |x: SeqNumber| match x {
                SeqNumber::Value(v) => v.get() > n,
                SeqNumber::Largest => n == 0,
            };
            match *s {
                Sequence::Single(a) => check(a),
                Sequence::Range(a, b) => check(a) && check(b),
            }
        })
    }

    fn read(sel: &Selected, m: &Msg) -> Option<Vec<u8>> {
        let mut file = match sel.maildir.open_message(&m.md) {
            Ok(f) => f,
            Err(_) => sel.maildir.open_key(m.md.key().as_str()).ok()?,
        };
        // The size in the name saves the reallocations of a growing buffer.
        let hint = m.md.size().unwrap_or(0).min(MAX_READ) as usize;
        let mut data = Vec::with_capacity(hint + 1);
        file.by_ref().take(MAX_READ).read_to_end(&mut data).ok()?;
        Some(data)
    }

    /// The header and the blank line after it (all of a message without a body).
    fn read_header(sel: &Selected, m: &Msg) -> Option<Vec<u8>> {
        let mut file = match sel.maildir.open_message(&m.md) {
            Ok(f) => f,
            Err(_) => sel.maildir.open_key(m.md.key().as_str()).ok()?,
        };
        let mut data = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            let n = file.read(&mut chunk).ok()?;
            if n == 0 {
                return Some(data);
            }
            let from = data.len().saturating_sub(3);
            data.extend_from_slice(&chunk[..n]);
            let tail = &data[from..];
            let crlf = tail
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|p| from + p + 4);
            let lf = tail
                .windows(2)
                .position(|w| w == b"\n\n")
                .map(|p| from + p + 2);
            let end = match (crlf, lf) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if let Some(end) = end {
                data.truncate(end);
                return Some(data);
            }
            if data.len() as u64 > MAX_READ {
                return Some(data);
            }
        }
    }

    fn internal_date(sel: &Selected, m: &Msg) -> SystemTime {
        std::fs::metadata(sel.maildir.message_path(&m.md))
            .and_then(|md| md.modified())
            .unwrap_or(UNIX_EPOCH)
    }

    /// Checks a FETCH and resolves its messages; [`Self::resume`] answers them.
    fn start_fetch(
        &mut self,
        uid: bool,
        set: &SequenceSet,
        items: &FetchItems,
    ) -> Result<(), Answer> {
        if self.bad_seq(uid, set) {
            return Err(Answer::bad("Invalid message sequence number"));
        }
        let mut attrs: Vec<FetchAttribute> = match items {
            FetchItems::All => vec![
                FetchAttribute::Flags,
                FetchAttribute::InternalDate,
                FetchAttribute::Rfc822Size,
                FetchAttribute::Envelope,
            ],
            FetchItems::Fast => vec![
                FetchAttribute::Flags,
                FetchAttribute::InternalDate,
                FetchAttribute::Rfc822Size,
            ],
            FetchItems::Full => vec![
                FetchAttribute::Flags,
                FetchAttribute::InternalDate,
                FetchAttribute::Rfc822Size,
                FetchAttribute::Envelope,
                FetchAttribute::Body,
            ],
            FetchItems::Single(a) => vec![a.clone()],
            FetchItems::List(l) => l.clone(),
        };
        if uid && !attrs.contains(&FetchAttribute::Uid) {
            attrs.insert(0, FetchAttribute::Uid);
        }
        let positions = self.resolve(uid, set);
        let Some(sel) = self.selected.as_ref() else {
            return Err(no("No mailbox selected"));
        };
        // What each message needs: nothing from the file (flags, UID, size), its header only
        // (ENVELOPE, header sections), the raw octets (BODY[]), or the MIME structure.
        let needs_raw = attrs.iter().any(|a| !file_free(a));
        let needs_parse = attrs.iter().any(|a| !file_free(a) && !whole_raw(a));
        let header_only = attrs.iter().all(|a| file_free(a) || header_part(a));
        let envelope_only = needs_raw
            && attrs
                .iter()
                .all(|a| file_free(a) || matches!(a, FetchAttribute::Envelope));
        let sets_seen = !sel.read_only
            && attrs.iter().any(|a| {
                matches!(
                    a,
                    FetchAttribute::BodySection { peek: false, .. }
                        | FetchAttribute::Binary { peek: false, .. }
                        | FetchAttribute::Rfc822
                        | FetchAttribute::Rfc822Text
                )
            });
        self.fetching = Some(Fetching {
            attrs,
            plan: Plan {
                needs_raw,
                needs_parse,
                header_only,
                envelope_only,
                sets_seen,
            },
            positions,
            next: 0,
        });
        Ok(())
    }

    /// The responses for the next messages of `fetching`, about `batch_bytes` of them, and
    /// the answer of a failure that ends the FETCH (after the responses built before it).
    fn fetch_batch(&mut self, fetching: &mut Fetching) -> (Vec<Data>, Option<Answer>) {
        let budget = self.batch_bytes;
        let hub = self.hub.clone();
        let Some(sel) = self.selected.as_mut() else {
            return (Vec::new(), Some(no("No mailbox selected")));
        };
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut changed = false;
        let mut failed = None;
        while bytes < budget && out.len() < FETCH_BATCH_MESSAGES {
            let Some(&i) = fetching.positions.get(fetching.next) else {
                break;
            };
            fetching.next += 1;
            match Self::fetch_one(sel, &hub, &fetching.attrs, fetching.plan, i, &mut changed) {
                Ok(Some(data)) => {
                    bytes = bytes.saturating_add(wire_len(&data));
                    out.push(data);
                }
                Ok(None) => {}
                Err(answer) => {
                    failed = Some(answer);
                    break;
                }
            }
        }
        // Told per batch, not at the end: a client that goes away mid-FETCH leaves its
        // \Seen flags set, and the other sessions must learn of them.
        if changed {
            hub.changed(sel.maildir.path());
        }
        (out, failed)
    }

    /// The FETCH response for the message at position `i`, setting `\Seen` first when the
    /// plan says so (`changed` then becomes true). `None` when `i` is out of the view.
    fn fetch_one(
        sel: &mut Selected,
        hub: &Hub,
        attrs: &[FetchAttribute],
        plan: Plan,
        i: usize,
        changed: &mut bool,
    ) -> Result<Option<Data>, Answer> {
        let Plan {
            needs_raw,
            needs_parse,
            header_only,
            envelope_only,
            sets_seen,
        } = plan;
        let Some(m) = sel.msgs.get(i).cloned() else {
            return Ok(None);
        };
        let mut flags = m.md.flags();
        let mut flags_changed = false;
        if sets_seen && !flags.contains(Flags::SEEN) {
            // Compare-and-swap as in STORE, so a concurrent flag change is kept.
            for _ in 0..100 {
                let Some(current) = sel.maildir.find(m.md.key().as_str()).ok().flatten() else {
                    break;
                };
                match sel
                    .maildir
                    .set_flags_if_unchanged(&current, current.flags().union(Flags::SEEN))
                {
                    Ok(Some(new)) => {
                        flags = new.flags();
                        sel.msgs[i].md = new;
                        flags_changed = true;
                        *changed = true;
                        break;
                    }
                    Ok(None) => continue,
                    Err(_) => break,
                }
            }
        }
        let cached = if envelope_only {
            hub.envelope(sel.maildir.path(), m.md.key().as_str())
        } else {
            None
        };
        let raw = if cached.is_some() {
            None
        } else if header_only && needs_raw {
            Self::read_header(sel, &m)
        } else if needs_raw {
            Self::read(sel, &m)
        } else {
            None
        };
        let parsed = if needs_parse {
            raw.as_deref().and_then(message::parse)
        } else {
            None
        };
        let mut values = Vec::with_capacity(attrs.len());
        for a in attrs {
            let v = match a {
                FetchAttribute::Uid => FetchValue::Uid(m.uid),
                FetchAttribute::Flags => FetchValue::Flags(imap_flags(flags, &sel.keywords)),
                FetchAttribute::Rfc822Size => FetchValue::Rfc822Size(
                    m.md.size()
                        .or_else(|| sel.maildir.size(&m.md).ok())
                        .unwrap_or(0),
                ),
                FetchAttribute::InternalDate => match datetime_of(Self::internal_date(sel, &m)) {
                    Some(d) => FetchValue::InternalDate(d),
                    None => continue,
                },
                FetchAttribute::ModSeq => continue,
                FetchAttribute::Envelope => {
                    let envelope = match (&cached, &parsed) {
                        (Some(e), _) => e.clone(),
                        (None, Some(p)) => {
                            let e = Arc::new(message::envelope(p));
                            hub.keep_envelope(sel.maildir.path(), m.md.key().as_str(), e.clone());
                            e
                        }
                        (None, None) => Arc::default(),
                    };
                    FetchValue::Envelope(Box::new(Envelope::clone(&envelope)))
                }
                FetchAttribute::Body | FetchAttribute::BodyStructure => {
                    let body = match &parsed {
                        Some(p) => message::body_structure(p),
                        None => continue,
                    };
                    if matches!(a, FetchAttribute::Body) {
                        FetchValue::Body(Box::new(body))
                    } else {
                        FetchValue::BodyStructure(Box::new(body))
                    }
                }
                FetchAttribute::Rfc822 => {
                    FetchValue::Rfc822(message::nstring(raw.as_deref().unwrap_or(&[])))
                }
                FetchAttribute::Rfc822Header | FetchAttribute::Rfc822Text => {
                    let text = if matches!(a, FetchAttribute::Rfc822Header) {
                        mailroom_imap_proto::types::SectionText::Header
                    } else {
                        mailroom_imap_proto::types::SectionText::Text
                    };
                    let bytes = parsed
                        .as_ref()
                        .map(|p| message::section(p, &[], Some(&text)))
                        .unwrap_or_default();
                    if matches!(a, FetchAttribute::Rfc822Header) {
                        FetchValue::Rfc822Header(message::nstring(&bytes))
                    } else {
                        FetchValue::Rfc822Text(message::nstring(&bytes))
                    }
                }
                FetchAttribute::BodySection {
                    section, partial, ..
                } if whole_raw(a) => {
                    let all = raw.as_deref().unwrap_or(&[]);
                    let (bytes, origin) = match partial {
                        None => (all.to_vec(), None),
                        Some(p) => cut(all.to_vec(), Some(*p)),
                    };
                    FetchValue::BodySection {
                        section: section.clone(),
                        origin,
                        data: message::nstring_owned(bytes),
                    }
                }
                FetchAttribute::BodySection {
                    section, partial, ..
                } => {
                    let bytes = parsed
                        .as_ref()
                        .map(|p| message::section(p, &section.part, section.text.as_ref()))
                        .unwrap_or_default();
                    let (bytes, origin) = cut(bytes, *partial);
                    FetchValue::BodySection {
                        section: section.clone(),
                        origin,
                        data: message::nstring(&bytes),
                    }
                }
                FetchAttribute::Binary { part, partial, .. } => {
                    let Some(bytes) = parsed.as_ref().and_then(|p| message::binary(p, part)) else {
                        return Err(no("[UNKNOWN-CTE] cannot decode the part"));
                    };
                    let (bytes, origin) = cut(bytes, *partial);
                    FetchValue::Binary {
                        part: part.clone(),
                        origin,
                        data: Some(IString::Literal(
                            mailroom_imap_proto::types::Literal::binary(
                                bytes,
                                mailroom_imap_proto::types::LiteralMode::Sync,
                            ),
                        )),
                    }
                }
                FetchAttribute::BinarySize(part) => FetchValue::BinarySize {
                    part: part.clone(),
                    size: parsed
                        .as_ref()
                        .and_then(|p| message::binary(p, part))
                        .map_or(0, |b| b.len() as u64),
                },
            };
            values.push(v);
        }
        if flags_changed && !attrs.contains(&FetchAttribute::Flags) {
            values.push(FetchValue::Flags(imap_flags(flags, &sel.keywords)));
        }
        Ok(Some(Data::Fetch {
            seq: i as u32 + 1,
            items: values,
        }))
    }

    fn store(
        &mut self,
        uid: bool,
        set: &SequenceSet,
        kind: StoreKind,
        silent: bool,
        flags: &[Flag],
    ) -> Answer {
        if self.bad_seq(uid, set) {
            return Answer::bad("Invalid message sequence number");
        }
        let positions = self.resolve(uid, set);
        let Some(sel) = self.selected.as_mut() else {
            return no("No mailbox selected");
        };
        if sel.read_only {
            return no("[READ-ONLY] Mailbox is read-only");
        }
        let bits = match Self::to_flags(&sel.maildir, flags) {
            Ok(b) => b,
            Err(a) => return a,
        };
        if let Ok(kw) = sel.maildir.read_keywords() {
            sel.keywords = (0..26u8)
                .filter_map(|i| kw.name(i).map(|n| (i, n.to_owned())))
                .collect();
        }
        let mut out = Vec::new();
        for i in positions {
            let Some(m) = sel.msgs.get(i).cloned() else {
                continue;
            };
            // The rename is the compare-and-swap: another session (or process) that renamed
            // the file first makes ours fail, and we read the flags again and retry, so no
            // update is lost.
            let mut attempt = 0;
            let (updated, new_flags) = loop {
                attempt += 1;
                let Some(current) = sel.maildir.find(m.md.key().as_str()).ok().flatten() else {
                    break (None, Flags::empty());
                };
                let new_flags = match kind {
                    StoreKind::Replace => bits,
                    StoreKind::Add => current.flags().union(bits),
                    StoreKind::Remove => current.flags().difference(bits),
                };
                if new_flags == current.flags() {
                    break (Some(current), new_flags);
                }
                match sel.maildir.set_flags_if_unchanged(&current, new_flags) {
                    Ok(Some(u)) => break (Some(u), new_flags),
                    Ok(None) if attempt < 100 => continue,
                    Ok(None) => return no("[INUSE] the message keeps changing; try again"),
                    Err(e) => return no(format!("[SERVERBUG] {e}")),
                }
            };
            // Expunged meanwhile: nothing to store, the EXPUNGE comes with the next sync.
            let Some(updated) = updated else {
                continue;
            };
            sel.msgs[i].md = updated;
            if !silent {
                let mut items = vec![FetchValue::Flags(imap_flags(new_flags, &sel.keywords))];
                if uid {
                    items.push(FetchValue::Uid(m.uid));
                }
                out.push(Data::Fetch {
                    seq: i as u32 + 1,
                    items,
                });
            }
        }
        self.changed();
        Answer::ok("STORE completed").with_data(out)
    }

    fn expunge(&mut self, only: Option<&SequenceSet>) -> Answer {
        let positions = only.map(|s| self.resolve(true, s));
        let Some(sel) = self.selected.as_mut() else {
            return no("No mailbox selected");
        };
        if sel.read_only {
            return no("[READ-ONLY] Mailbox is read-only");
        }
        let mut out = Vec::new();
        for i in (0..sel.msgs.len()).rev() {
            if positions.as_ref().is_some_and(|p| !p.contains(&i)) {
                continue;
            }
            let key = sel.msgs[i].md.key().as_str().to_owned();
            let Some(current) = sel.maildir.find(&key).ok().flatten() else {
                continue;
            };
            if current.flags().contains(Flags::TRASHED) && sel.maildir.expunge(&current).is_ok() {
                sel.msgs.remove(i);
                out.push(Data::Expunge(i as u32 + 1));
            }
        }
        if !out.is_empty() {
            let _ = sel.maildir.sync_uids();
            self.changed();
        }
        let mut a = Answer::ok("EXPUNGE completed").with_data(out);
        a.untagged
            .extend(self.sync(true).into_iter().map(Response::Data));
        a
    }

    fn copy(
        &mut self,
        uid: bool,
        set: &SequenceSet,
        mailbox: &Mailbox,
        is_move: bool,
        utf8: bool,
    ) -> Answer {
        if self.bad_seq(uid, set) {
            return Answer::bad("Invalid message sequence number");
        }
        let name = match Self::decode_name(mailbox, utf8) {
            Ok(n) => n,
            Err(a) => return a,
        };
        let dest = match self.open_mailbox(&name) {
            Ok(m) => m,
            Err(a) => return a,
        };
        let positions = self.resolve(uid, set);
        let Some(sel) = self.selected.as_mut() else {
            return no("No mailbox selected");
        };
        if is_move && sel.read_only {
            return no("[READ-ONLY] Mailbox is read-only");
        }
        let mut src_uids = Vec::new();
        let mut dst_uids = Vec::new();
        for &i in &positions {
            let Some(m) = sel.msgs.get(i).cloned() else {
                continue;
            };
            let Some(data) = Self::read(sel, &m) else {
                return no("[SERVERBUG] cannot read a message");
            };
            // Keywords are numbered per Maildir: map them by name.
            let mut flags = m.md.flags();
            let mut kwf = Flags::empty();
            for (idx, kname) in &sel.keywords {
                if let Some(bit) = Flags::keyword(*idx)
                    && flags.contains(bit)
                {
                    flags = flags.difference(bit);
                    if let Ok(b) = dest.keyword_flag(kname) {
                        kwf = kwf.union(b);
                    }
                }
            }
            let date = Some(Self::internal_date(sel, &m));
            match deliver(&dest, &data, flags.union(kwf), date) {
                Ok(u) => {
                    src_uids.push(m.uid);
                    dst_uids.push(u);
                }
                Err(a) => return a,
            }
        }
        self.hub.changed(dest.path());
        let validity = dest
            .read_uidlist()
            .ok()
            .flatten()
            .map_or(0, |l| l.uid_validity);
        let code = match (uid_set(&src_uids), uid_set(&dst_uids)) {
            (Some(source), Some(destination)) => Some(Code::CopyUid {
                uid_validity: validity,
                source,
                destination,
            }),
            _ => None,
        };
        if !is_move {
            let mut a = Answer::ok("COPY completed");
            if let Some(c) = code {
                a = a.with_code(c);
            }
            return a;
        }
        let mut a = Answer::ok("MOVE completed");
        if let Some(c) = code {
            a.untagged.push(Response::Status(
                StatusResponse::untagged(StatusKind::Ok, "Moved").with_code(c),
            ));
        }
        let Some(sel) = self.selected.as_mut() else {
            return a;
        };
        let mut removed: Vec<usize> = positions;
        removed.sort_unstable();
        for &i in removed.iter().rev() {
            let Some(m) = sel.msgs.get(i) else { continue };
            if let Some(cur) = sel.maildir.find(m.md.key().as_str()).ok().flatten()
                && sel.maildir.expunge(&cur).is_ok()
            {
                sel.msgs.remove(i);
                a.untagged.push(Response::Data(Data::Expunge(i as u32 + 1)));
            }
        }
        let _ = sel.maildir.sync_uids();
        self.changed();
        a
    }

    fn search(
        &mut self,
        uid: bool,
        returns: Option<&[SearchReturnOption]>,
        criteria: &[SearchKey],
    ) -> Answer {
        let Some(sel) = self.selected.as_ref() else {
            return no("No mailbox selected");
        };
        let key = SearchKey::And(criteria.to_vec());
        let n = sel.msgs.len() as u32;
        let largest_uid = sel.msgs.last().map_or(0, |m| m.uid);
        let needs_text = needs_content(&key);
        let mut hits = Vec::new();
        for (i, m) in sel.msgs.iter().enumerate() {
            let raw = if needs_text { Self::read(sel, m) } else { None };
            let parsed = raw.as_deref().and_then(message::parse);
            let ctx = Ctx {
                seq: i as u32 + 1,
                n,
                largest_uid,
                m,
                sel,
                raw: raw.as_deref(),
                parsed: parsed.as_ref(),
            };
            if matches_key(&key, &ctx) {
                hits.push(if uid { m.uid } else { i as u32 + 1 });
            }
        }
        let uids: Vec<u32> = if uid {
            hits.clone()
        } else {
            hits.iter()
                .filter_map(|s| sel.msgs.get(*s as usize - 1).map(|m| m.uid))
                .collect()
        };
        let mut a = Answer::ok("SEARCH completed");
        match returns {
            None => a = a.with_data([Data::Search(hits)]),
            Some(opts) => {
                let opts: Vec<SearchReturnOption> = if opts.is_empty() {
                    vec![SearchReturnOption::All]
                } else {
                    opts.to_vec()
                };
                let mut items = Vec::new();
                for o in &opts {
                    match o {
                        SearchReturnOption::Min => {
                            if let Some(v) = hits.iter().min() {
                                items.push(ESearchItem::Min(*v));
                            }
                        }
                        SearchReturnOption::Max => {
                            if let Some(v) = hits.iter().max() {
                                items.push(ESearchItem::Max(*v));
                            }
                        }
                        SearchReturnOption::Count => {
                            items.push(ESearchItem::Count(hits.len() as u32));
                        }
                        SearchReturnOption::All => {
                            if let Some(s) = uid_set(&hits) {
                                items.push(ESearchItem::All(s));
                            }
                        }
                        SearchReturnOption::Save => {}
                    }
                }
                if opts.contains(&SearchReturnOption::Save)
                    && let Some(sel) = self.selected.as_mut()
                {
                    sel.saved = uids;
                }
                a = a.with_data([Data::ESearch {
                    tag: None,
                    uid,
                    items,
                }]);
            }
        }
        a
    }
}

/// Whether `a` is the whole message's raw octets (BODY[], RFC822, BINARY[]).
fn whole_raw(a: &FetchAttribute) -> bool {
    match a {
        FetchAttribute::Rfc822 => true,
        FetchAttribute::BodySection { section, .. } => {
            section.part.is_empty() && section.text.is_none()
        }
        FetchAttribute::Binary { part, .. } => part.is_empty(),
        _ => false,
    }
}

/// Whether the message's header is all that `a` needs.
fn header_part(a: &FetchAttribute) -> bool {
    match a {
        FetchAttribute::Envelope | FetchAttribute::Rfc822Header => true,
        FetchAttribute::BodySection { section, .. } => {
            section.part.is_empty()
                && matches!(
                    section.text,
                    Some(
                        SectionText::Header
                            | SectionText::HeaderFields(_)
                            | SectionText::HeaderFieldsNot(_)
                    )
                )
        }
        _ => false,
    }
}

/// Whether `a` is answered without opening the message's file.
fn file_free(a: &FetchAttribute) -> bool {
    matches!(
        a,
        FetchAttribute::Uid
            | FetchAttribute::Flags
            | FetchAttribute::Rfc822Size
            | FetchAttribute::InternalDate
            | FetchAttribute::ModSeq
    )
}

/// About the octets `data` takes on the wire, an upper bound, to cut a FETCH into batches
/// without encoding anything twice: literals count their length, quoted strings twice theirs
/// (every octet escaped at worst), everything else a generous constant.
fn wire_len(data: &Data) -> usize {
    let Data::Fetch { items, .. } = data else {
        return 64;
    };
    items.iter().fold(32, |n, v| n.saturating_add(value_len(v)))
}

fn value_len(v: &FetchValue) -> usize {
    match v {
        FetchValue::Flags(flags) => flags.iter().fold(16, |n, f| {
            n + match f {
                Flag::Keyword(a) | Flag::Extension(a) => a.as_str().len() + 2,
                _ => 10,
            }
        }),
        FetchValue::Envelope(e) => envelope_len(e),
        FetchValue::Body(b) | FetchValue::BodyStructure(b) => body_len(b),
        FetchValue::BodySection { data, .. }
        | FetchValue::Binary { data, .. }
        | FetchValue::Rfc822(data)
        | FetchValue::Rfc822Header(data)
        | FetchValue::Rfc822Text(data) => 64 + nstring_len(data),
        _ => 40,
    }
}

fn istring_len(s: &IString) -> usize {
    match s {
        IString::Quoted(_) => 2 + 2 * s.as_bytes().len(),
        IString::Literal(_) => 24 + s.as_bytes().len(),
    }
}

fn nstring_len(s: &Option<IString>) -> usize {
    s.as_ref().map_or(3, istring_len)
}

fn addresses_len(list: &Option<Vec<Address>>) -> usize {
    list.as_ref().map_or(3, |list| {
        list.iter().fold(2, |n, a| {
            n + 5
                + nstring_len(&a.name)
                + nstring_len(&a.adl)
                + nstring_len(&a.mailbox)
                + nstring_len(&a.host)
        })
    })
}

fn envelope_len(e: &Envelope) -> usize {
    12 + nstring_len(&e.date)
        + nstring_len(&e.subject)
        + [&e.from, &e.sender, &e.reply_to, &e.to, &e.cc, &e.bcc]
            .into_iter()
            .map(addresses_len)
            .sum::<usize>()
        + nstring_len(&e.in_reply_to)
        + nstring_len(&e.message_id)
}

fn extension_len(ext: &[BodyExtension]) -> usize {
    ext.iter().fold(0, |n, x| {
        n + 1
            + match x {
                BodyExtension::NString(s) => nstring_len(s),
                BodyExtension::Number(_) => 20,
                BodyExtension::List(l) => 2 + extension_len(l),
            }
    })
}

fn body_len(b: &Body) -> usize {
    match b {
        Body::Multi {
            parts,
            subtype,
            extension,
        } => {
            parts.iter().fold(4, |n, p| n + body_len(p))
                + istring_len(subtype)
                + extension_len(extension)
        }
        Body::Single(p) => {
            let params = p.fields.params.as_ref().map_or(3, |l| {
                l.iter()
                    .fold(2, |n, (k, v)| n + 1 + istring_len(k) + istring_len(v))
            });
            let specific = match &p.specific {
                PartSpecific::Basic => 0,
                PartSpecific::Text { .. } => 21,
                PartSpecific::Message { envelope, body, .. } => {
                    envelope_len(envelope) + body_len(body) + 22
                }
            };
            30 + istring_len(&p.media_type)
                + istring_len(&p.subtype)
                + params
                + nstring_len(&p.fields.id)
                + nstring_len(&p.fields.description)
                + istring_len(&p.fields.encoding)
                + specific
                + extension_len(&p.extension)
        }
    }
}

/// Writes `data` into `md` durably with `flags` and the INTERNALDATE `date`; returns its UID.
fn deliver(
    md: &Maildir,
    data: &[u8],
    flags: Flags,
    date: Option<SystemTime>,
) -> Result<u32, Answer> {
    let delivered = md
        .deliver(data)
        .map_err(|e| no(format!("[SERVERBUG] delivery failed: {e}")))?;
    if let Some(t) = date
        && let Ok(f) = std::fs::File::options().write(true).open(&delivered.path)
    {
        let _ = f.set_modified(t);
    }
    if !flags.is_empty()
        && let Some(m) = md.find(delivered.key.as_str()).ok().flatten()
    {
        md.set_flags(&m, flags)
            .map_err(|e| no(format!("[SERVERBUG] {e}")))?;
    }
    let list = md.sync_uids().map_err(|e| no(format!("[SERVERBUG] {e}")))?;
    list.uid_of(delivered.key.as_str())
        .ok_or_else(|| no("[SERVERBUG] the message vanished"))
}

/// Modification times of a Maildir's `new/` and `cur/`.
fn dir_stamp(path: &std::path::Path) -> Option<(SystemTime, SystemTime)> {
    let m = |d: &str| {
        std::fs::metadata(path.join(d))
            .and_then(|m| m.modified())
            .ok()
    };
    Some((m("new")?, m("cur")?))
}

fn cut(bytes: Vec<u8>, partial: Option<(u32, u32)>) -> (Vec<u8>, Option<u32>) {
    match partial {
        None => (bytes, None),
        Some((start, len)) => {
            let s = (start as usize).min(bytes.len());
            let e = s.saturating_add(len as usize).min(bytes.len());
            (bytes[s..e].to_vec(), Some(start))
        }
    }
}

fn uid_set(v: &[u32]) -> Option<SequenceSet> {
    let mut sorted = v.to_vec();
    sorted.sort_unstable();
    let mut items = Vec::new();
    let mut iter = sorted.into_iter().peekable();
    while let Some(a) = iter.next() {
        let mut b = a;
        while iter.peek() == Some(&(b + 1)) {
            b += 1;
            iter.next();
        }
        let n = |x: u32| std::num::NonZeroU32::new(x).map(SeqNumber::Value);
        match (n(a), n(b)) {
            (Some(x), Some(y)) if a == b => {
                let _ = y;
                items.push(Sequence::Single(x));
            }
            (Some(x), Some(y)) => items.push(Sequence::Range(x, y)),
            _ => {}
        }
    }
    SequenceSet::new(items).ok()
}

fn imap_flags(f: Flags, keywords: &[(u8, String)]) -> Vec<Flag> {
    let mut out = Vec::new();
    for (bit, flag) in [
        (Flags::SEEN, Flag::Seen),
        (Flags::REPLIED, Flag::Answered),
        (Flags::FLAGGED, Flag::Flagged),
        (Flags::TRASHED, Flag::Deleted),
        (Flags::DRAFT, Flag::Draft),
    ] {
        if f.contains(bit) {
            out.push(flag);
        }
    }
    for (idx, name) in keywords {
        if let Some(bit) = Flags::keyword(*idx)
            && f.contains(bit)
            && let Ok(a) = Atom::new(name.as_str())
        {
            out.push(Flag::Keyword(a));
        }
    }
    out
}

fn atom(s: &str) -> Atom {
    // Only called with the constant attribute names above, all valid atoms after the `\`.
    Atom::new(s.trim_start_matches('\\'))
        .map(|a| {
            if s.starts_with('\\') {
                Atom::new(format!("\\{}", a.as_str())).unwrap_or(a)
            } else {
                a
            }
        })
        .unwrap_or_else(|_| Atom::new("X").unwrap_or_else(|_| unreachable_atom()))
}

#[allow(clippy::panic)]
fn unreachable_atom() -> Atom {
    panic!("\"X\" is an atom")
}

fn istr(s: &str) -> IString {
    IString::from_bytes(s.as_bytes().to_vec()).unwrap_or_else(|_| {
        IString::Literal(mailroom_imap_proto::types::Literal::binary(
            Vec::new(),
            mailroom_imap_proto::types::LiteralMode::Sync,
        ))
    })
}

/// LIST wildcards (RFC 9051 6.3.9): `*` matches anything, `%` anything but the delimiter.
fn wildmatch(pat: &[u8], name: &[u8]) -> bool {
    // Iterative with backtracking on the last star: linear-ish, no recursion on hostile input.
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize, bool)> = None;
    while n < name.len() {
        if p < pat.len() && (pat[p] == b'*' || pat[p] == b'%') {
            star = Some((p, n, pat[p] == b'%'));
            p += 1;
        } else if p < pat.len() && pat[p] == name[n] {
            p += 1;
            n += 1;
        } else if let Some((sp, sn, pct)) = star {
            if pct && name[sn] == b'.' {
                return false;
            }
            star = Some((sp, sn + 1, pct));
            p = sp + 1;
            n = sn + 1;
        } else {
            return false;
        }
    }
    while p < pat.len() && (pat[p] == b'*' || pat[p] == b'%') {
        p += 1;
    }
    p == pat.len()
}

struct Ctx<'a> {
    seq: u32,
    n: u32,
    largest_uid: u32,
    m: &'a Msg,
    sel: &'a Selected,
    raw: Option<&'a [u8]>,
    parsed: Option<&'a mail_parser::Message<'a>>,
}

fn needs_content(key: &SearchKey) -> bool {
    use SearchKey as K;
    match key {
        K::Bcc(_)
        | K::Body(_)
        | K::Cc(_)
        | K::From(_)
        | K::Header(..)
        | K::Subject(_)
        | K::Text(_)
        | K::To(_)
        | K::SentBefore(_)
        | K::SentOn(_)
        | K::SentSince(_) => true,
        K::Not(k) => needs_content(k),
        K::Or(a, b) => needs_content(a) || needs_content(b),
        K::And(v) => v.iter().any(needs_content),
        _ => false,
    }
}

fn contains_ci(hay: &str, needle: &[u8]) -> bool {
    let needle = String::from_utf8_lossy(needle).to_lowercase();
    hay.to_lowercase().contains(&needle)
}

fn matches_key(key: &SearchKey, c: &Ctx<'_>) -> bool {
    use SearchKey as K;
    let f = c.m.md.flags();
    let header = |name: &str, s: &AString| {
        c.parsed.is_some_and(|p| {
            message::header_text(p, name)
                .iter()
                .any(|h| contains_ci(h, s.as_bytes()))
        })
    };
    let idate = || {
        let t = Backend::internal_date(c.sel, c.m);
        datetime_of(t).map(|d| date_key(&d.date()))
    };
    let sent = || c.parsed.and_then(message::sent_date);
    match key {
        K::All => true,
        K::Answered => f.contains(Flags::REPLIED),
        K::Unanswered => !f.contains(Flags::REPLIED),
        K::Deleted => f.contains(Flags::TRASHED),
        K::Undeleted => !f.contains(Flags::TRASHED),
        K::Draft => f.contains(Flags::DRAFT),
        K::Undraft => !f.contains(Flags::DRAFT),
        K::Flagged => f.contains(Flags::FLAGGED),
        K::Unflagged => !f.contains(Flags::FLAGGED),
        K::Seen => f.contains(Flags::SEEN),
        K::Unseen => !f.contains(Flags::SEEN),
        // No \Recent (IMAP4rev2 removed it): nothing is new or recent, everything is old.
        K::New | K::Recent => false,
        K::Old => true,
        K::Keyword(k) | K::Unkeyword(k) => {
            let has = c.sel.keywords.iter().any(|(i, n)| {
                n.eq_ignore_ascii_case(k.as_str())
                    && Flags::keyword(*i).is_some_and(|b| f.contains(b))
            });
            has == matches!(key, K::Keyword(_))
        }
        K::Larger(n) | K::Smaller(n) => {
            let size =
                c.m.md
                    .size()
                    .or_else(|| c.sel.maildir.size(&c.m.md).ok())
                    .unwrap_or(0);
            if matches!(key, K::Larger(_)) {
                size > *n
            } else {
                size < *n
            }
        }
        K::Before(d) => idate().is_some_and(|x| x < date_key(d)),
        K::On(d) => idate().is_some_and(|x| x == date_key(d)),
        K::Since(d) => idate().is_some_and(|x| x >= date_key(d)),
        K::SentBefore(d) => sent().is_some_and(|x| x < date_key(d)),
        K::SentOn(d) => sent().is_some_and(|x| x == date_key(d)),
        K::SentSince(d) => sent().is_some_and(|x| x >= date_key(d)),
        K::From(s) => header("From", s),
        K::To(s) => header("To", s),
        K::Cc(s) => header("Cc", s),
        K::Bcc(s) => header("Bcc", s),
        K::Subject(s) => header("Subject", s),
        K::Header(name, s) => {
            let name = name.to_string_lossy();
            c.parsed.is_some_and(|p| {
                let values = message::header_text(p, &name);
                !values.is_empty()
                    && (s.as_bytes().is_empty()
                        || values.iter().any(|h| contains_ci(h, s.as_bytes())))
            })
        }
        K::Body(s) => c
            .parsed
            .is_some_and(|p| contains_ci(&message::body_text(p), s.as_bytes())),
        K::Text(s) => {
            c.raw
                .is_some_and(|r| contains_ci(&String::from_utf8_lossy(r), s.as_bytes()))
                || c.parsed
                    .is_some_and(|p| contains_ci(&message::body_text(p), s.as_bytes()))
        }
        K::Uid(set) => {
            if set.is_saved() {
                c.sel.saved.contains(&c.m.uid)
            } else {
                set.contains(c.m.uid, c.largest_uid)
            }
        }
        K::SequenceSet(set) => {
            if set.is_saved() {
                c.sel.saved.contains(&c.m.uid)
            } else {
                set.contains(c.seq, c.n)
            }
        }
        K::Not(k) => !matches_key(k, c),
        K::Or(a, b) => matches_key(a, c) || matches_key(b, c),
        K::And(v) => v.iter().all(|k| matches_key(k, c)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        for days in [-1000i64, 0, 1, 19_000, 20_500] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
    }

    #[test]
    fn list_wildcards() {
        assert!(wildmatch(b"*", b"a.b"));
        assert!(wildmatch(b"%", b"ab"));
        assert!(!wildmatch(b"%", b"a.b"));
        assert!(wildmatch(b"a.%", b"a.b"));
        assert!(wildmatch(b"INBOX", b"INBOX"));
        assert!(!wildmatch(b"Sent", b"Drafts"));
    }

    fn command(text: &str) -> mailroom_imap_proto::types::Command {
        mailroom_imap_proto::parse_command(text.as_bytes()).unwrap()
    }

    /// A logged-in backend with INBOX selected, over `messages`.
    fn selected(dir: &std::path::Path, messages: &[Vec<u8>]) -> Backend {
        let md = Maildir::create(dir.join("Maildir")).unwrap();
        for m in messages {
            md.deliver(&m[..]).unwrap();
        }
        let mut b = Backend::new(Arc::new(Hub::new()));
        let user = MailUser {
            name: "u".into(),
            maildir: dir.join("Maildir"),
        };
        assert_eq!(b.login(user).kind, StatusKind::Ok);
        assert_eq!(
            b.command(command("a SELECT INBOX\r\n"), false).kind,
            StatusKind::Ok
        );
        b
    }

    const MULTIPART: &[u8] = b"From: \"A \\\"quoted\\\" name\" <a@example.test>\r\n\
To: b@example.test, \"C\" <c@example.test>\r\nSubject: \"hi\" \\ there\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\n\
Content-Type: text/plain; charset=\"us-ascii\"\r\n\r\nfirst\r\n--XX\r\n\
Content-Type: message/rfc822\r\n\r\nSubject: inner\r\nFrom: x@y\r\n\r\ninner body\r\n\
--XX\r\nContent-Type: application/octet-stream; name=\"a b\"\r\n\
Content-Disposition: attachment; filename=\"a b\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
AAAA\r\n--XX--\r\n";

    #[test]
    fn the_size_estimate_of_a_fetch_response_is_an_upper_bound() {
        use mailroom_imap_proto::codec::Encode;
        let dir = tempfile::tempdir().unwrap();
        let long = format!(
            "Subject: {}\r\n\r\n{}\r\n",
            "\"\\".repeat(400),
            "x".repeat(5000)
        );
        let mut b = selected(dir.path(), &[MULTIPART.to_vec(), long.into_bytes()]);
        let a = b.command(
            command(
                "f FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE BODY \
                 BODY.PEEK[] BODY.PEEK[1] BODY.PEEK[HEADER] RFC822.HEADER BINARY.PEEK[1] \
                 BINARY.SIZE[1])\r\n",
            ),
            false,
        );
        assert_eq!(a.kind, StatusKind::Ok, "{a:?}");
        assert_eq!(a.untagged.len(), 2);
        for r in &a.untagged {
            let Response::Data(d) = r else { panic!() };
            let encoded = r.to_bytes().len();
            assert!(wire_len(d) >= encoded, "{} < {encoded}", wire_len(d));
        }
    }

    #[test]
    fn fetch_batches_stay_under_the_budget_plus_one_message() {
        use mailroom_imap_proto::codec::Encode;
        let dir = tempfile::tempdir().unwrap();
        let budget = 8 * 1024;
        let messages: Vec<Vec<u8>> = (0..60)
            .map(|i| {
                let size = if i == 30 { 5 * budget } else { 100 + i * 97 };
                format!("Subject: {i}\r\n\r\n{}\r\n", "y".repeat(size)).into_bytes()
            })
            .collect();
        let largest = messages.iter().map(Vec::len).max().unwrap();
        let mut b = selected(dir.path(), &messages);
        b.set_batch_bytes(budget);
        let mut step = b.start(command("f FETCH 1:* (FLAGS BODY.PEEK[])\r\n"), false);
        let mut batches = Vec::new();
        let answer = loop {
            batches.push(std::mem::take(&mut step.data));
            match step.answer {
                Some(a) => break a,
                None => step = b.resume(),
            }
        };
        assert_eq!(answer.kind, StatusKind::Ok);
        assert!(answer.untagged.is_empty());
        assert!(batches.len() > 5, "{}", batches.len());
        let mut seqs = Vec::new();
        for batch in &batches {
            let octets: usize = batch
                .iter()
                .map(|d| Response::Data(d.clone()).to_bytes().len())
                .sum();
            assert!(octets < budget + largest + 200, "{octets}");
            seqs.extend(batch.iter().map(|d| match d {
                Data::Fetch { seq, .. } => *seq,
                other => panic!("{other:?}"),
            }));
        }
        assert_eq!(seqs, (1..=60).collect::<Vec<u32>>());
        // A FETCH without a batch left, or none started: NO, not a panic.
        assert_eq!(b.resume().answer.unwrap().kind, StatusKind::No);
    }

    #[test]
    fn a_small_fetch_is_one_step_and_command_answers_it_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = selected(dir.path(), &[MULTIPART.to_vec()]);
        let step = b.start(command("f UID FETCH 1:* (UID FLAGS)\r\n"), false);
        assert_eq!(step.data.len(), 1);
        assert_eq!(step.answer.unwrap().kind, StatusKind::Ok);
        // A bad sequence number is answered at once, as before.
        let a = b.command(command("g FETCH 5 FLAGS\r\n"), false);
        assert_eq!(a.kind, StatusKind::Bad);
        let a = b.command(command("h FETCH 1 BODY[]\r\n"), false);
        assert_eq!(a.kind, StatusKind::Ok);
        assert!(matches!(
            &a.untagged[..],
            [Response::Data(Data::Fetch { .. })]
        ));
    }

    /// Runs a command through `start`/`resume`, calling `between` after each batch; returns
    /// the batches and the answer.
    fn batches(
        b: &mut Backend,
        text: &str,
        mut between: impl FnMut(usize),
    ) -> (Vec<Vec<Data>>, Answer) {
        let mut step = b.start(command(text), false);
        let mut out = Vec::new();
        loop {
            out.push(std::mem::take(&mut step.data));
            match step.answer {
                Some(a) => return (out, a),
                None => {
                    between(out.len());
                    step = b.resume();
                }
            }
        }
    }

    #[test]
    fn a_message_expunged_between_batches_keeps_its_number_until_the_fetch_ends() {
        let dir = tempfile::tempdir().unwrap();
        let messages: Vec<Vec<u8>> = (0..40)
            .map(|i| format!("Subject: {i}\r\n\r\n{}\r\n", "z".repeat(1000)).into_bytes())
            .collect();
        let mut b = selected(dir.path(), &messages);
        b.set_batch_bytes(4096);
        let md = Maildir::open(dir.path().join("Maildir")).unwrap();
        let last = b.selected.as_ref().unwrap().msgs[39]
            .md
            .key()
            .as_str()
            .to_owned();
        // Another process expunges message 40 after the first batch.
        let (out, answer) = batches(&mut b, "f FETCH 1:* BODY[]\r\n", |n| {
            if n == 1 {
                let m = md.find(&last).unwrap().unwrap();
                md.expunge(&m).unwrap();
            }
        });
        assert!(out.len() > 3);
        assert_eq!(answer.kind, StatusKind::Ok, "{answer:?}");
        let all: Vec<&Data> = out.iter().flatten().collect();
        // RFC 9051 7.5.1: no EXPUNGE during FETCH by sequence number; the vanished message
        // still has its number (its body now empty, as before batches).
        assert!(!all.iter().any(|d| matches!(d, Data::Expunge(_))));
        assert_eq!(all.len(), 40);
        let Data::Fetch { seq: 40, items } = all[39] else {
            panic!("{:?}", all[39]);
        };
        assert!(matches!(&items[0], FetchValue::BodySection { data, .. }
            if data.as_ref().is_none_or(|d| d.as_bytes().is_empty())));
        // The next command that may tell it, tells it.
        let a = b.command(command("n NOOP\r\n"), false);
        assert!(a.untagged.contains(&Response::Data(Data::Expunge(40))));
    }

    #[test]
    fn uid_fetch_in_batches_announces_changes_first() {
        let dir = tempfile::tempdir().unwrap();
        let messages: Vec<Vec<u8>> = (0..20)
            .map(|i| format!("Subject: {i}\r\n\r\n{}\r\n", "w".repeat(2000)).into_bytes())
            .collect();
        let mut b = selected(dir.path(), &messages);
        b.set_batch_bytes(4096);
        let md = Maildir::open(dir.path().join("Maildir")).unwrap();
        md.deliver(&b"Subject: new\r\n\r\nnew\r\n"[..]).unwrap();
        let (out, answer) = batches(&mut b, "f UID FETCH 1:* (FLAGS BODY.PEEK[])\r\n", |_| {});
        assert_eq!(answer.kind, StatusKind::Ok);
        assert!(out.len() > 3);
        assert_eq!(
            out[0][0],
            Data::Exists(21),
            "the view is synced before the first batch"
        );
        let uids: Vec<u32> = out
            .iter()
            .flatten()
            .filter_map(|d| match d {
                Data::Fetch { items, .. } => match items[0] {
                    FetchValue::Uid(u) => Some(u),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        assert_eq!(uids, (1..=21).collect::<Vec<u32>>());
    }

    #[test]
    fn a_fetch_failing_midway_sends_what_it_built_then_no() {
        let dir = tempfile::tempdir().unwrap();
        let simple = b"Subject: one part\r\n\r\nbody\r\n".to_vec();
        let mut b = selected(dir.path(), &[MULTIPART.to_vec(), simple.clone(), simple]);
        // Message 2 has no part 2: BINARY cannot give it (RFC 3516: NO).
        let (out, answer) = batches(&mut b, "f FETCH 1:3 BINARY.PEEK[2]\r\n", |_| {});
        assert_eq!(answer.kind, StatusKind::No);
        assert!(answer.text.contains("UNKNOWN-CTE"), "{answer:?}");
        let all: Vec<&Data> = out.iter().flatten().collect();
        assert!(matches!(all[..], [Data::Fetch { seq: 1, .. }]), "{all:?}");
    }

    #[test]
    fn uid_sets_compress_runs() {
        let s = uid_set(&[3, 1, 2, 7]).unwrap();
        assert_eq!(s.items().len(), 2);
    }
}
