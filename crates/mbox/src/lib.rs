//! mbox store: mboxrd/mboxo/mboxcl/mboxcl2 read, append and rewrite, with locking other programs respect.
