//! The smtp agent's MX lookup end to end, without the network: the server runs in this
//! process with a static resolver in which `mx-domain.test` has two mail exchangers, the
//! preferred one on 127.0.0.2 (nothing listens there) and the next on 127.0.0.1, where
//! Postfix's `smtp-sink` takes the message.

// Test code: a failed set-up step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mailroom::server::{self, Config, dns::StaticResolver};

/// A child process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn smtp_sink(program: &Path, dir: &Path) -> (Running, u16) {
    std::fs::create_dir_all(dir).unwrap();
    let port = mailroom_testkit::free_port();
    let mut cmd = Command::new(program);
    let uid = Command::new("id").arg("-u").output().unwrap().stdout;
    if uid.trim_ascii() == b"0" {
        cmd.args(["-u", "root"]);
    }
    let child = cmd
        .arg("-d")
        .arg(format!("{}/%H%M%S.", dir.display()))
        .arg(format!("127.0.0.1:{port}"))
        .arg("10")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    mailroom_testkit::wait_for_port(
        format!("127.0.0.1:{port}").parse().unwrap(),
        Duration::from_secs(10),
    );
    (Running(child), port)
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relayhost_domain_resolved_by_mx_to_smtp_sink() {
    let Some(peers) = mailroom_testkit::peers(&["smtp-sink", "python3"]) else {
        return;
    };
    let dir = mailroom_testkit::temp_dir();
    let sink_dir = dir.path().join("sink");
    let (_sink, sink_port) = smtp_sink(&peers[0], &sink_dir);
    let conf = dir.path().join("mailroom.toml");
    let text = format!(
        "data_directory = {:?}\nsmtpd_listen = \"127.0.0.1:0\"\nsubmission_listen = \"\"\n\
         submissions_listen = \"\"\nimap_listen = \"\"\nimaps_listen = \"\"\n\
         lmtp_listen = \"\"\nrelayhost = \"mx-domain.test:{sink_port}\"\n",
        dir.path().join("data").display().to_string()
    );
    let config = Config::parse(&conf, &text).unwrap();
    let resolver = StaticResolver::default()
        .with_mx("mx-domain.test", 20, "mx2.mx-domain.test")
        .with_mx("mx-domain.test", 10, "mx1.mx-domain.test")
        .with_address("mx1.mx-domain.test", "127.0.0.2".parse().unwrap())
        .with_address("mx2.mx-domain.test", "127.0.0.1".parse().unwrap());
    server::prepare_data(&config).unwrap();
    let shared = server::open_with_resolver(config, Arc::new(resolver)).unwrap();
    let running = server::start(Arc::clone(&shared)).await.unwrap();
    let smtp = running.bound.smtp.unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(running.run(async {
        let _ = stop_rx.await;
    }));

    let python = peers[1].clone();
    let script = format!(
        "import smtplib\ns = smtplib.SMTP('127.0.0.1', {})\n\
         s.sendmail('demo@localhost', ['user@remote.example'], 'Subject: mx\\r\\n\\r\\nthrough the MX\\r\\n')\n\
         s.quit()\n",
        smtp.port()
    );
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python).arg("-c").arg(script).output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let deadline = Instant::now() + Duration::from_secs(20);
    let files = loop {
        let f = files_in(&sink_dir);
        if !f.is_empty() || Instant::now() > deadline {
            break f;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        files.len(),
        1,
        "one message at the sink behind the second MX"
    );
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(text.contains("through the MX"), "{text}");
    let _ = stop_tx.send(());
    served.await.unwrap();
}
