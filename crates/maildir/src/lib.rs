//! Maildir and Maildir++ store: durable delivery, flags, folders, Dovecot-compatible UIDs, quota.
