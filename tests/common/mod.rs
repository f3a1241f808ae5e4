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

/// Runs `command` (the server example, with its arguments and environment set), its standard
/// output piped, and reads the banner up to its last line (`... Ctrl-C stops ...`). A server
/// that exits before finishing the banner fails the test with what it printed.
pub(crate) fn start_server(mut command: std::process::Command) -> (Running, Vec<String>) {
    use std::io::BufRead;
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run the server example (built by cargo test)");
    let stdout = child.stdout.take().expect("piped standard output");
    let running = Running(child);
    let mut banner = Vec::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.expect("the banner is text");
        let done = line.contains("Ctrl-C stops");
        banner.push(line);
        if done {
            return (running, banner);
        }
    }
    panic!("the server stopped before its banner ended: {banner:#?}");
}
