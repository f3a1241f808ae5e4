//! Durable mail queue with Postfix's semantics: incoming/active/deferred/hold/corrupt, group commit, retries, DSN bounces.
