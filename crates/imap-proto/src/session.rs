//! Server session.
