//! IMAP4rev2/IMAP4rev1: types, command and response codecs, literal framing, sans-IO server session.
