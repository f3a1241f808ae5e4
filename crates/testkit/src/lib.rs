//! Test support shared by the workspace's tests. Never a dependency of shipped code.
//!
//! - [`peer`]: find a real peer program (Postfix, Dovecot, swaks, Python) or skip the test;
//!   with `MAILROOM_REQUIRE_PEERS=1` (set by `.ci/run`) a missing peer fails instead.
//! - [`free_port`]: a TCP port on 127.0.0.1 that nothing listens on right now.
//! - [`wait_for_port`]: wait until a freshly started server accepts connections.

// Test support: a failed set-up step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod dovecot;
pub mod postfix;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Whether a missing peer must fail the test (`MAILROOM_REQUIRE_PEERS=1`, set by `.ci/run`).
pub fn peers_required() -> bool {
    std::env::var("MAILROOM_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

/// Finds the program `name` on `PATH` or in the system directories where Debian installs the
/// peers (`/usr/sbin` for Postfix and Dovecot is not on a plain user's `PATH`).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = ["/usr/sbin", "/usr/bin", "/sbin", "/usr/lib/dovecot"];
    std::env::split_paths(&path)
        .chain(extra.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Returns the path of peer program `name`, or `None` after printing why the test is skipped.
///
/// # Panics
///
/// When the program is missing and [`peers_required`] is true: on CI a missing peer is a failure,
/// not a silent skip.
pub fn peer(name: &str) -> Option<PathBuf> {
    match find_program(name) {
        Some(path) => Some(path),
        None if peers_required() => {
            panic!("peer `{name}` is not installed and MAILROOM_REQUIRE_PEERS=1 (run .ci/run)")
        }
        None => {
            eprintln!(
                "skipped: peer `{name}` is not installed (set MAILROOM_REQUIRE_PEERS=1 to fail instead)"
            );
            None
        }
    }
}

/// Like [`peer`] for several programs at once: all found, or `None` (or a panic on CI).
pub fn peers(names: &[&str]) -> Option<Vec<PathBuf>> {
    names.iter().map(|n| peer(n)).collect()
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read it, close).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// Waits until something accepts TCP connections on `addr`, up to `timeout`.
///
/// # Panics
///
/// When nothing accepts within `timeout`.
pub fn wait_for_port(addr: SocketAddr, timeout: Duration) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("nothing accepts connections on {addr} after {timeout:?}");
}

/// A fresh temporary directory, removed when dropped.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("mailroom-test-")
        .tempdir()
        .expect("create a temporary directory")
}
