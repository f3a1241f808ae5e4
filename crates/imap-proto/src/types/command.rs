//! Commands (RFC 9051 section 6, RFC 3501 section 6): what a client sends.

use super::core::{AString, Atom, IString, ListToken, Literal, NString, Secret, Tag};
use super::flag::{Date, DateTime, Flag};
use super::mailbox::Mailbox;
use super::sequence::SequenceSet;

/// `command = tag SP (command-any / command-auth / command-nonauth / command-select) CRLF`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The client's tag, echoed in the tagged response.
    pub tag: Tag,
    /// What is asked.
    pub body: CommandBody,
}

/// The command after its tag.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandBody {
    /// `CAPABILITY`.
    Capability,
    /// `NOOP`.
    Noop,
    /// `LOGOUT`.
    Logout,
    /// `STARTTLS` (RFC 9051 6.2.1).
    StartTls,
    /// `AUTHENTICATE SP auth-type [SP initial-resp]` (SASL-IR, RFC 4959).
    Authenticate {
        /// The SASL mechanism (`PLAIN`).
        mechanism: Atom,
        /// `initial-resp = base64 / "="`, decoded (`=` is an empty response).
        initial_response: Option<Secret<Vec<u8>>>,
    },
    /// `LOGIN SP userid SP password`.
    Login {
        /// `userid = astring`.
        username: AString,
        /// `password = astring`.
        password: Secret<AString>,
    },
    /// `ENABLE 1*(SP capability)` (RFC 5161).
    Enable(Vec<Atom>),
    /// `SELECT SP mailbox`.
    Select(Mailbox),
    /// `EXAMINE SP mailbox`.
    Examine(Mailbox),
    /// `CREATE SP mailbox`.
    Create(Mailbox),
    /// `DELETE SP mailbox`.
    Delete(Mailbox),
    /// `RENAME SP mailbox SP mailbox`.
    Rename {
        /// Existing name.
        from: Mailbox,
        /// New name.
        to: Mailbox,
    },
    /// `SUBSCRIBE SP mailbox`.
    Subscribe(Mailbox),
    /// `UNSUBSCRIBE SP mailbox`.
    Unsubscribe(Mailbox),
    /// `LIST [SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts]` (RFC 9051
    /// 6.3.9, RFC 5258).
    List {
        /// `list-select-opts`; empty when absent.
        selection: Vec<ListSelectOption>,
        /// The reference name.
        reference: Mailbox,
        /// One pattern, or several in parentheses.
        patterns: Vec<ListMailbox>,
        /// Whether the patterns were written in parentheses.
        patterns_parenthesized: bool,
        /// `RETURN (...)`; `None` when absent.
        returns: Option<Vec<ListReturnOption>>,
    },
    /// `LSUB SP mailbox SP list-mailbox` (IMAP4rev1).
    Lsub {
        /// The reference name.
        reference: Mailbox,
        /// The pattern.
        pattern: ListMailbox,
    },
    /// `NAMESPACE` (RFC 2342).
    Namespace,
    /// `STATUS SP mailbox SP "(" status-att *(SP status-att) ")"`.
    Status {
        /// Which mailbox.
        mailbox: Mailbox,
        /// What to report.
        items: Vec<StatusAttribute>,
    },
    /// `APPEND SP mailbox [SP flag-list] [SP date-time] SP literal`.
    Append {
        /// Destination.
        mailbox: Mailbox,
        /// Flags to set; `None` when no flag list was given.
        flags: Option<Vec<Flag>>,
        /// INTERNALDATE to set.
        date: Option<DateTime>,
        /// The message.
        message: Literal,
    },
    /// `IDLE` (RFC 2177).
    Idle,
    /// `CHECK` (IMAP4rev1).
    Check,
    /// `CLOSE`.
    Close,
    /// `UNSELECT` (RFC 3691).
    Unselect,
    /// `EXPUNGE`.
    Expunge,
    /// `UID EXPUNGE SP sequence-set` (RFC 4315).
    UidExpunge(SequenceSet),
    /// `[UID] SEARCH [search-return-opts] [SP "CHARSET" SP charset] 1*(SP search-key)`.
    Search {
        /// UID SEARCH.
        uid: bool,
        /// `RETURN (...)` (ESEARCH); `None` when absent.
        returns: Option<Vec<SearchReturnOption>>,
        /// `CHARSET`.
        charset: Option<AString>,
        /// The criteria, ANDed.
        criteria: Vec<SearchKey>,
    },
    /// `[UID] FETCH SP sequence-set SP ("ALL" / "FULL" / "FAST" / fetch-att / "(" fetch-att *(SP
    /// fetch-att) ")")`.
    Fetch {
        /// UID FETCH.
        uid: bool,
        /// Which messages.
        set: SequenceSet,
        /// What to fetch.
        items: FetchItems,
    },
    /// `[UID] STORE SP sequence-set SP store-att-flags`.
    Store {
        /// UID STORE.
        uid: bool,
        /// Which messages.
        set: SequenceSet,
        /// `+`, `-` or replace.
        kind: StoreKind,
        /// `.SILENT`.
        silent: bool,
        /// The flags.
        flags: Vec<Flag>,
        /// Whether the flags were written in parentheses.
        parenthesized: bool,
    },
    /// `[UID] COPY SP sequence-set SP mailbox`.
    Copy {
        /// UID COPY.
        uid: bool,
        /// Which messages.
        set: SequenceSet,
        /// Destination.
        mailbox: Mailbox,
    },
    /// `[UID] MOVE SP sequence-set SP mailbox` (RFC 6851).
    Move {
        /// UID MOVE.
        uid: bool,
        /// Which messages.
        set: SequenceSet,
        /// Destination.
        mailbox: Mailbox,
    },
    /// `ID SP id-params-list` (RFC 2971); `None` for `ID NIL`.
    Id(Option<Vec<(IString, NString)>>),
}

impl CommandBody {
    /// The command's name as written on the wire (`UID FETCH` for the UID forms).
    pub fn name(&self) -> &'static str {
        use CommandBody as C;
        match self {
            C::Capability => "CAPABILITY",
            C::Noop => "NOOP",
            C::Logout => "LOGOUT",
            C::StartTls => "STARTTLS",
            C::Authenticate { .. } => "AUTHENTICATE",
            C::Login { .. } => "LOGIN",
            C::Enable(_) => "ENABLE",
            C::Select(_) => "SELECT",
            C::Examine(_) => "EXAMINE",
            C::Create(_) => "CREATE",
            C::Delete(_) => "DELETE",
            C::Rename { .. } => "RENAME",
            C::Subscribe(_) => "SUBSCRIBE",
            C::Unsubscribe(_) => "UNSUBSCRIBE",
            C::List { .. } => "LIST",
            C::Lsub { .. } => "LSUB",
            C::Namespace => "NAMESPACE",
            C::Status { .. } => "STATUS",
            C::Append { .. } => "APPEND",
            C::Idle => "IDLE",
            C::Check => "CHECK",
            C::Close => "CLOSE",
            C::Unselect => "UNSELECT",
            C::Expunge => "EXPUNGE",
            C::UidExpunge(_) => "UID EXPUNGE",
            C::Search { uid: false, .. } => "SEARCH",
            C::Search { uid: true, .. } => "UID SEARCH",
            C::Fetch { uid: false, .. } => "FETCH",
            C::Fetch { uid: true, .. } => "UID FETCH",
            C::Store { uid: false, .. } => "STORE",
            C::Store { uid: true, .. } => "UID STORE",
            C::Copy { uid: false, .. } => "COPY",
            C::Copy { uid: true, .. } => "UID COPY",
            C::Move { uid: false, .. } => "MOVE",
            C::Move { uid: true, .. } => "UID MOVE",
            C::Id(_) => "ID",
        }
    }
}

/// `list-mailbox = 1*list-char / string`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListMailbox {
    /// Unquoted, may hold `%` and `*`.
    Token(ListToken),
    /// Quoted or literal.
    String(IString),
}

impl ListMailbox {
    /// The pattern's octets.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            ListMailbox::Token(t) => t.as_str().as_bytes(),
            ListMailbox::String(s) => s.as_bytes(),
        }
    }
}

/// `list-select-opt` (RFC 9051, RFC 5258, RFC 6154).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListSelectOption {
    /// `SUBSCRIBED`.
    Subscribed,
    /// `REMOTE`.
    Remote,
    /// `RECURSIVEMATCH`.
    RecursiveMatch,
    /// `SPECIAL-USE` (RFC 6154).
    SpecialUse,
    /// Another option name.
    Other(Atom),
}

/// `return-option` (RFC 9051, RFC 5258, RFC 5819, RFC 6154).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListReturnOption {
    /// `SUBSCRIBED`.
    Subscribed,
    /// `CHILDREN`.
    Children,
    /// `SPECIAL-USE`.
    SpecialUse,
    /// `STATUS (status-att ...)` (RFC 5819).
    Status(Vec<StatusAttribute>),
    /// Another option name.
    Other(Atom),
}

/// `status-att` (RFC 9051 section 6.3.11; RECENT from RFC 3501).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusAttribute {
    /// `MESSAGES`.
    Messages,
    /// `UIDNEXT`.
    UidNext,
    /// `UIDVALIDITY`.
    UidValidity,
    /// `UNSEEN`.
    Unseen,
    /// `DELETED`.
    Deleted,
    /// `SIZE`.
    Size,
    /// `RECENT` (IMAP4rev1).
    Recent,
    /// `HIGHESTMODSEQ` (RFC 7162).
    HighestModSeq,
}

impl StatusAttribute {
    /// The attribute's name.
    pub fn name(self) -> &'static str {
        match self {
            StatusAttribute::Messages => "MESSAGES",
            StatusAttribute::UidNext => "UIDNEXT",
            StatusAttribute::UidValidity => "UIDVALIDITY",
            StatusAttribute::Unseen => "UNSEEN",
            StatusAttribute::Deleted => "DELETED",
            StatusAttribute::Size => "SIZE",
            StatusAttribute::Recent => "RECENT",
            StatusAttribute::HighestModSeq => "HIGHESTMODSEQ",
        }
    }
    /// All attributes, for parsing by name.
    pub const ALL: [StatusAttribute; 8] = [
        StatusAttribute::Messages,
        StatusAttribute::UidNext,
        StatusAttribute::UidValidity,
        StatusAttribute::Unseen,
        StatusAttribute::Deleted,
        StatusAttribute::Size,
        StatusAttribute::Recent,
        StatusAttribute::HighestModSeq,
    ];
}

/// `search-return-opt` (RFC 9051 section 6.4.4, RFC 4731).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SearchReturnOption {
    /// `MIN`.
    Min,
    /// `MAX`.
    Max,
    /// `ALL`.
    All,
    /// `COUNT`.
    Count,
    /// `SAVE` (RFC 5182).
    Save,
}

impl SearchReturnOption {
    /// The option's name.
    pub fn name(self) -> &'static str {
        match self {
            SearchReturnOption::Min => "MIN",
            SearchReturnOption::Max => "MAX",
            SearchReturnOption::All => "ALL",
            SearchReturnOption::Count => "COUNT",
            SearchReturnOption::Save => "SAVE",
        }
    }
}

/// `search-key` (RFC 9051 section 6.4.4; NEW, OLD, RECENT, UNRECENT from RFC 3501).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    /// `ALL`.
    All,
    /// `ANSWERED`.
    Answered,
    /// `BCC SP astring`.
    Bcc(AString),
    /// `BEFORE SP date`.
    Before(Date),
    /// `BODY SP astring`.
    Body(AString),
    /// `CC SP astring`.
    Cc(AString),
    /// `DELETED`.
    Deleted,
    /// `DRAFT`.
    Draft,
    /// `FLAGGED`.
    Flagged,
    /// `FROM SP astring`.
    From(AString),
    /// `HEADER SP header-fld-name SP astring`.
    Header(AString, AString),
    /// `KEYWORD SP flag-keyword`.
    Keyword(Atom),
    /// `LARGER SP number64`.
    Larger(u64),
    /// `NEW` (IMAP4rev1).
    New,
    /// `NOT SP search-key`.
    Not(Box<SearchKey>),
    /// `OLD` (IMAP4rev1).
    Old,
    /// `ON SP date`.
    On(Date),
    /// `OR SP search-key SP search-key`.
    Or(Box<SearchKey>, Box<SearchKey>),
    /// `RECENT` (IMAP4rev1).
    Recent,
    /// `SEEN`.
    Seen,
    /// `SENTBEFORE SP date`.
    SentBefore(Date),
    /// `SENTON SP date`.
    SentOn(Date),
    /// `SENTSINCE SP date`.
    SentSince(Date),
    /// `SINCE SP date`.
    Since(Date),
    /// `SMALLER SP number64`.
    Smaller(u64),
    /// `SUBJECT SP astring`.
    Subject(AString),
    /// `TEXT SP astring`.
    Text(AString),
    /// `TO SP astring`.
    To(AString),
    /// `UID SP sequence-set`.
    Uid(SequenceSet),
    /// `UNANSWERED`.
    Unanswered,
    /// `UNDELETED`.
    Undeleted,
    /// `UNDRAFT`.
    Undraft,
    /// `UNFLAGGED`.
    Unflagged,
    /// `UNKEYWORD SP flag-keyword`.
    Unkeyword(Atom),
    /// `UNSEEN`.
    Unseen,
    /// A message set: `sequence-set`.
    SequenceSet(SequenceSet),
    /// `"(" search-key *(SP search-key) ")"`.
    And(Vec<SearchKey>),
}

/// What FETCH asks for: a macro or a list of attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchItems {
    /// `ALL` = `(FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)`.
    All,
    /// `FAST` = `(FLAGS INTERNALDATE RFC822.SIZE)`.
    Fast,
    /// `FULL` = `(FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY)`.
    Full,
    /// One attribute, unparenthesised.
    Single(FetchAttribute),
    /// `"(" fetch-att *(SP fetch-att) ")"`.
    List(Vec<FetchAttribute>),
}

/// `fetch-att` (RFC 9051 section 6.4.5; RFC822 forms from RFC 3501).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchAttribute {
    /// `ENVELOPE`.
    Envelope,
    /// `FLAGS`.
    Flags,
    /// `INTERNALDATE`.
    InternalDate,
    /// `RFC822.SIZE`.
    Rfc822Size,
    /// `RFC822` (IMAP4rev1).
    Rfc822,
    /// `RFC822.HEADER` (IMAP4rev1).
    Rfc822Header,
    /// `RFC822.TEXT` (IMAP4rev1).
    Rfc822Text,
    /// `BODY` (non-extensible BODYSTRUCTURE).
    Body,
    /// `BODYSTRUCTURE`.
    BodyStructure,
    /// `UID`.
    Uid,
    /// `MODSEQ` (RFC 7162).
    ModSeq,
    /// `BODY[section]<partial>` or `BODY.PEEK[section]<partial>`.
    BodySection {
        /// `.PEEK`: do not set `\Seen`.
        peek: bool,
        /// The section.
        section: Section,
        /// `<offset.length>`.
        partial: Option<(u32, u32)>,
    },
    /// `BINARY[section-binary]<partial>` or `BINARY.PEEK[...]` (RFC 3516).
    Binary {
        /// `.PEEK`.
        peek: bool,
        /// `section-part`, possibly empty.
        part: Vec<u32>,
        /// `<offset.length>`.
        partial: Option<(u32, u32)>,
    },
    /// `BINARY.SIZE[section-binary]`.
    BinarySize(Vec<u32>),
}

/// `section = "[" [section-spec] "]"`: a part path and what of it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Section {
    /// `section-part = nz-number *("." nz-number)`; empty for the whole message.
    pub part: Vec<u32>,
    /// `section-msgtext` / `MIME`; `None` for the part's whole content.
    pub text: Option<SectionText>,
}

/// `section-text = section-msgtext / "MIME"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText {
    /// `HEADER`.
    Header,
    /// `HEADER.FIELDS SP header-list`.
    HeaderFields(Vec<AString>),
    /// `HEADER.FIELDS.NOT SP header-list`.
    HeaderFieldsNot(Vec<AString>),
    /// `TEXT`.
    Text,
    /// `MIME` (only after a part number).
    Mime,
}

/// How STORE changes flags: `["+" / "-"] "FLAGS" [".SILENT"]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// `FLAGS`: replace.
    Replace,
    /// `+FLAGS`: add.
    Add,
    /// `-FLAGS`: remove.
    Remove,
}
