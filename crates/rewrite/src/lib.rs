//! Postfix-compatible lookup tables, address rewriting and resolution (trivial-rewrite and cleanup).
