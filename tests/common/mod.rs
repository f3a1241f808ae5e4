//! Shared by the end-to-end tests that run the built examples.

use std::path::PathBuf;
use std::process::Child;

/// `target/<profile>/examples/server`: `cargo test` builds the examples before it runs the
/// integration tests (`cargo test --test X` alone does not: run `cargo build --examples` first).
pub(crate) fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let deps = exe.parent().expect("target/<profile>/deps");
    let profile_dir = deps.parent().expect("target/<profile>");
    profile_dir.join("examples").join("server")
}

/// A child process, killed and reaped when dropped (so a failing test never leaves a server
/// running on its port).
pub(crate) struct Running(pub(crate) Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
