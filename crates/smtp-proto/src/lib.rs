//! SMTP (RFC 5321) with its ESMTP extensions, as a sans-IO library.
