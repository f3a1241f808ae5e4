//! Responses (RFC 9051 section 7): what a server sends.

use super::command::{Section, StatusAttribute};
use super::core::{AString, Atom, IString, NString, Tag};
use super::flag::{DateTime, Flag, FlagPerm, MailboxAttr};
use super::mailbox::Mailbox;
use super::sequence::SequenceSet;

/// One response: `response = *(continue-req / response-data) response-done`, one item at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// `continue-req = "+" SP (resp-text / base64) CRLF`.
    Continue(Continue),
    /// A tagged or untagged status response (`OK`, `NO`, `BAD`, `PREAUTH`, `BYE`).
    Status(StatusResponse),
    /// Untagged data (`* CAPABILITY ...`, `* 3 FETCH ...`).
    Data(Data),
}

/// `continue-req`: the text after `+ ` (resp-text or base64), kept as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Continue {
    /// An optional response code.
    pub code: Option<Code>,
    /// The text or base64 data; may be empty.
    pub text: String,
}

/// The kind of a status response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusKind {
    /// `OK`.
    Ok,
    /// `NO`.
    No,
    /// `BAD`.
    Bad,
    /// `PREAUTH` (greeting only).
    PreAuth,
    /// `BYE`.
    Bye,
}

impl StatusKind {
    /// The keyword.
    pub fn name(self) -> &'static str {
        match self {
            StatusKind::Ok => "OK",
            StatusKind::No => "NO",
            StatusKind::Bad => "BAD",
            StatusKind::PreAuth => "PREAUTH",
            StatusKind::Bye => "BYE",
        }
    }
}

/// `response-tagged` / `resp-cond-state` / `resp-cond-bye` / `greeting`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusResponse {
    /// The tag; `None` for untagged (`*`).
    pub tag: Option<Tag>,
    /// OK, NO, BAD, PREAUTH or BYE.
    pub kind: StatusKind,
    /// `"[" resp-text-code "]"`.
    pub code: Option<Code>,
    /// Human-readable text (may be empty).
    pub text: String,
}

impl StatusResponse {
    /// A tagged response.
    pub fn tagged(tag: Tag, kind: StatusKind, text: impl Into<String>) -> Self {
        Self {
            tag: Some(tag),
            kind,
            code: None,
            text: clean_text(text.into()),
        }
    }
    /// An untagged response.
    pub fn untagged(kind: StatusKind, text: impl Into<String>) -> Self {
        Self {
            tag: None,
            kind,
            code: None,
            text: clean_text(text.into()),
        }
    }
    /// The same with a response code.
    pub fn with_code(mut self, code: Code) -> Self {
        self.code = Some(code);
        self
    }
}

/// Replaces the octets that cannot appear in `text` (NUL, CR, LF) so that any text can be sent.
/// A text ending in `}` would read as a literal announcement (`{5}`), so it gets a final `.`.
pub(crate) fn clean_text(mut s: String) -> String {
    if s.bytes().any(|b| matches!(b, 0 | b'\r' | b'\n')) {
        s = s.replace(['\0', '\r', '\n'], " ");
    }
    if s.ends_with('}') {
        s.push('.');
    }
    s
}

/// `resp-text-code` (RFC 9051 section 7.1, RFC 4315 UIDPLUS).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Code {
    /// `ALERT`.
    Alert,
    /// `BADCHARSET [SP "(" charset *(SP charset) ")"]`.
    BadCharset(Vec<AString>),
    /// `CAPABILITY ...`.
    Capability(Vec<Atom>),
    /// `PARSE`.
    Parse,
    /// `PERMANENTFLAGS SP "(" [flag-perm *(SP flag-perm)] ")"`.
    PermanentFlags(Vec<FlagPerm>),
    /// `READ-ONLY`.
    ReadOnly,
    /// `READ-WRITE`.
    ReadWrite,
    /// `TRYCREATE`.
    TryCreate,
    /// `UIDNEXT SP nz-number`.
    UidNext(u32),
    /// `UIDVALIDITY SP nz-number`.
    UidValidity(u32),
    /// `UNSEEN SP nz-number` (IMAP4rev1).
    Unseen(u32),
    /// `APPENDUID SP nz-number SP append-uid` (RFC 4315).
    AppendUid {
        /// UIDVALIDITY of the destination.
        uid_validity: u32,
        /// UIDs given to the appended messages.
        uids: SequenceSet,
    },
    /// `COPYUID SP nz-number SP uid-set SP uid-set` (RFC 4315).
    CopyUid {
        /// UIDVALIDITY of the destination.
        uid_validity: u32,
        /// Source UIDs.
        source: SequenceSet,
        /// Destination UIDs, in the same order.
        destination: SequenceSet,
    },
    /// `atom [SP 1*<any TEXT-CHAR except "]">]`: every other code (`CLOSED`, `NONEXISTENT`,
    /// `TOOBIG`, `HIGHESTMODSEQ 42`, ...).
    Other(Atom, Option<String>),
}

impl Code {
    /// A code without arguments (`NONEXISTENT`, `TOOBIG`, ...).
    ///
    /// # Errors
    ///
    /// [`super::ValidationError`] when `name` is not an atom.
    pub fn other(name: &str) -> Result<Code, super::ValidationError> {
        Atom::new(name).map(|a| Code::Other(a, None))
    }
}

/// Untagged data.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Data {
    /// `capability-data = "CAPABILITY" *(SP capability)`.
    Capability(Vec<Atom>),
    /// `enable-data = "ENABLED" *(SP capability)` (RFC 5161).
    Enabled(Vec<Atom>),
    /// `"LIST" SP mailbox-list`.
    List(ListData),
    /// `"LSUB" SP mailbox-list` (IMAP4rev1).
    Lsub(ListData),
    /// `"STATUS" SP mailbox SP "(" [status-att-list] ")"`.
    Status {
        /// The mailbox.
        mailbox: Mailbox,
        /// Attribute values.
        items: Vec<(StatusAttribute, u64)>,
    },
    /// `"SEARCH" *(SP nz-number)` (IMAP4rev1).
    Search(Vec<u32>),
    /// `esearch-response` (RFC 9051, RFC 4731).
    ESearch {
        /// `(TAG "...")`: the command this answers.
        tag: Option<Tag>,
        /// `UID`.
        uid: bool,
        /// The results.
        items: Vec<ESearchItem>,
    },
    /// `"FLAGS" SP flag-list`.
    Flags(Vec<Flag>),
    /// `number SP "EXISTS"`.
    Exists(u32),
    /// `number SP "RECENT"` (IMAP4rev1).
    Recent(u32),
    /// `nz-number SP "EXPUNGE"`.
    Expunge(u32),
    /// `nz-number SP "FETCH" SP msg-att`.
    Fetch {
        /// The message sequence number.
        seq: u32,
        /// The attributes, in the order sent.
        items: Vec<FetchValue>,
    },
    /// `namespace-response` (RFC 2342): personal, other users', shared.
    Namespace([Option<Vec<NamespaceDescr>>; 3]),
    /// `"ID" SP id-params-list` (RFC 2971).
    Id(Option<Vec<(IString, NString)>>),
}

/// `mailbox-list = "(" [mbx-list-flags] ")" SP (DQUOTE QUOTED-CHAR DQUOTE / nil) SP mailbox
/// [SP mbox-list-extended]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListData {
    /// `\HasChildren`, `\Noselect`, `\Sent`, ...
    pub attributes: Vec<MailboxAttr>,
    /// The hierarchy delimiter.
    pub delimiter: Option<char>,
    /// The name.
    pub mailbox: Mailbox,
    /// `mbox-list-extended` items (`CHILDINFO`, `OLDNAME`).
    pub extended: Vec<(AString, ExtValue)>,
}

/// `tagged-ext-val`, loosely: a value of an extension item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtValue {
    /// A number.
    Number(u64),
    /// An astring.
    AString(AString),
    /// `"(" ... ")"`.
    List(Vec<ExtValue>),
}

/// `namespace-descr = "(" string SP (DQUOTE QUOTED-CHAR DQUOTE / nil) ")"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceDescr {
    /// The prefix.
    pub prefix: IString,
    /// The delimiter.
    pub delimiter: Option<char>,
}

/// `search-return-data` (RFC 9051 section 7.3.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ESearchItem {
    /// `MIN SP nz-number`.
    Min(u32),
    /// `MAX SP nz-number`.
    Max(u32),
    /// `ALL SP sequence-set`.
    All(SequenceSet),
    /// `COUNT SP number`.
    Count(u32),
    /// `MODSEQ SP mod-sequence-value` (RFC 7162).
    ModSeq(u64),
}

/// One `msg-att` item of a FETCH response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchValue {
    /// `FLAGS SP "(" [flag-fetch *(SP flag-fetch)] ")"`.
    Flags(Vec<Flag>),
    /// `UID SP uniqueid`.
    Uid(u32),
    /// `RFC822.SIZE SP number64`.
    Rfc822Size(u64),
    /// `INTERNALDATE SP date-time`.
    InternalDate(DateTime),
    /// `ENVELOPE SP envelope`.
    Envelope(Box<Envelope>),
    /// `BODYSTRUCTURE SP body`.
    BodyStructure(Box<Body>),
    /// `BODY SP body` (without extension data).
    Body(Box<Body>),
    /// `BODY section ["<" number ">"] SP nstring`.
    BodySection {
        /// The section.
        section: Section,
        /// The origin octet of a partial fetch.
        origin: Option<u32>,
        /// The data.
        data: NString,
    },
    /// `BINARY section-binary SP (nstring / literal8)` (RFC 3516).
    Binary {
        /// Part path.
        part: Vec<u32>,
        /// The origin octet of a partial fetch.
        origin: Option<u32>,
        /// The data.
        data: NString,
    },
    /// `BINARY.SIZE section-binary SP number`.
    BinarySize {
        /// Part path.
        part: Vec<u32>,
        /// Decoded size.
        size: u64,
    },
    /// `RFC822 SP nstring` (IMAP4rev1).
    Rfc822(NString),
    /// `RFC822.HEADER SP nstring` (IMAP4rev1).
    Rfc822Header(NString),
    /// `RFC822.TEXT SP nstring` (IMAP4rev1).
    Rfc822Text(NString),
    /// `MODSEQ SP "(" mod-sequence-value ")"` (RFC 7162).
    ModSeq(u64),
}

/// `envelope = "(" env-date SP env-subject SP env-from SP env-sender SP env-reply-to SP env-to SP
/// env-cc SP env-bcc SP env-in-reply-to SP env-message-id ")"`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Envelope {
    /// `Date:`.
    pub date: NString,
    /// `Subject:`.
    pub subject: NString,
    /// `From:`.
    pub from: Option<Vec<Address>>,
    /// `Sender:`.
    pub sender: Option<Vec<Address>>,
    /// `Reply-To:`.
    pub reply_to: Option<Vec<Address>>,
    /// `To:`.
    pub to: Option<Vec<Address>>,
    /// `Cc:`.
    pub cc: Option<Vec<Address>>,
    /// `Bcc:`.
    pub bcc: Option<Vec<Address>>,
    /// `In-Reply-To:`.
    pub in_reply_to: NString,
    /// `Message-ID:`.
    pub message_id: NString,
}

/// `address = "(" addr-name SP addr-adl SP addr-mailbox SP addr-host ")"`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Address {
    /// Display name.
    pub name: NString,
    /// Source route (obsolete).
    pub adl: NString,
    /// Local part, or group name when `host` is NIL.
    pub mailbox: NString,
    /// Domain; NIL marks group syntax.
    pub host: NString,
}

/// `body = "(" (body-type-1part / body-type-mpart) ")"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// `body-type-1part`.
    Single(SinglePart),
    /// `body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]`.
    Multi {
        /// The parts.
        parts: Vec<Body>,
        /// `media-subtype` (`MIXED`, `ALTERNATIVE`, ...).
        subtype: IString,
        /// `body-ext-mpart`: `body-fld-param [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc
        /// *(SP body-extension)]]]`, each field kept as a [`BodyExtension`].
        extension: Vec<BodyExtension>,
    },
}

/// `body-type-1part = (body-type-basic / body-type-msg / body-type-text) [SP body-ext-1part]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinglePart {
    /// Media type (`TEXT`, `IMAGE`, ...).
    pub media_type: IString,
    /// Media subtype.
    pub subtype: IString,
    /// `body-fields`.
    pub fields: BodyFields,
    /// What depends on the type.
    pub specific: PartSpecific,
    /// `body-ext-1part`: `body-fld-md5 [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc
    /// *(SP body-extension)]]]`, each field kept as a [`BodyExtension`].
    pub extension: Vec<BodyExtension>,
}

/// The type-specific part of a single-part body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartSpecific {
    /// `body-type-basic`.
    Basic,
    /// `body-type-text`: `SP body-fld-lines`.
    Text {
        /// Lines of text.
        lines: u64,
    },
    /// `body-type-msg`: `SP envelope SP body SP body-fld-lines`.
    Message {
        /// The enclosed message's envelope.
        envelope: Box<Envelope>,
        /// Its body structure.
        body: Box<Body>,
        /// Lines.
        lines: u64,
    },
}

/// `body-fields = body-fld-param SP body-fld-id SP body-fld-desc SP body-fld-enc SP body-fld-octets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyFields {
    /// `body-fld-param`: `None` for NIL.
    pub params: Option<Vec<(IString, IString)>>,
    /// `Content-ID`.
    pub id: NString,
    /// `Content-Description`.
    pub description: NString,
    /// `Content-Transfer-Encoding`.
    pub encoding: IString,
    /// Size in octets.
    pub octets: u64,
}

/// `body-extension = nstring / number64 / "(" body-extension *(SP body-extension) ")"`; every
/// extension field (md5, disposition, language, location) is one of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyExtension {
    /// A string or NIL.
    NString(NString),
    /// A number.
    Number(u64),
    /// A parenthesised list.
    List(Vec<BodyExtension>),
}
