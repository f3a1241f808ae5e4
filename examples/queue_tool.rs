//! Lists, shows and manages a mailroom queue directory, like Postfix's `postqueue` and `postcat`.
//!
//! ```text
//! cargo run --example queue_tool -- QUEUE_DIR list            # postqueue -p
//! cargo run --example queue_tool -- QUEUE_DIR show ID         # postcat -e: the envelope
//! cargo run --example queue_tool -- QUEUE_DIR cat ID          # postcat -bh: the content
//! cargo run --example queue_tool -- QUEUE_DIR hold|release|delete|requeue ID
//! cargo run --example queue_tool -- QUEUE_DIR flush           # postqueue -f (this process only)
//! cargo run --example queue_tool -- QUEUE_DIR corrupt         # what recovery quarantined
//! ```
//!
//! The tool opens the queue itself (recovery runs, and its findings are printed to standard
//! error), so it works only while no other process has the queue open: the queue's lock refuses
//! a second owner. The format is described in `crates/queue/FORMAT.md`.

use std::io::Write;
use std::process::ExitCode;

use mailroom::queue::{Queue, QueueId, RcptStatus, RealFs, postqueue_listing};

fn usage() -> ExitCode {
    eprintln!(
        "usage: queue_tool QUEUE_DIR list | corrupt | flush | show ID | cat ID | hold ID | release ID | delete ID | requeue ID"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(dir), Some(cmd)) = (args.first(), args.get(1)) else {
        return usage();
    };
    let id = match args.get(2).map(|s| s.parse::<QueueId>()) {
        Some(Ok(id)) => Some(id),
        Some(Err(e)) => {
            eprintln!("queue_tool: {e}");
            return ExitCode::from(2);
        }
        None => None,
    };
    let queue = match Queue::open(RealFs, dir, Default::default()) {
        Ok(q) => q,
        Err(e) => {
            eprintln!("queue_tool: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match (cmd.as_str(), id) {
        ("list", None) => {
            print!("{}", postqueue_listing(&queue.list()));
            Ok(())
        }
        ("corrupt", None) => queue.corrupt().map(|names| {
            for n in names {
                println!("{n}");
            }
        }),
        ("flush", None) => {
            println!("{} deferred messages made due", queue.flush());
            Ok(())
        }
        ("show", Some(id)) => match queue.show(id) {
            Some(s) => {
                let e = &s.envelope;
                println!("queue_id: {}", s.id);
                println!("state: {}", s.state);
                println!("size: {}", e.size);
                println!("arrival: {}", mailroom::queue::dsn::rfc5322_date(e.arrival));
                println!("attempts: {}", e.attempts);
                println!(
                    "next_attempt: {}",
                    mailroom::queue::dsn::rfc5322_date(e.next_attempt)
                );
                println!("sender: {}", e.reverse_path);
                if let Some(envid) = &e.envid {
                    println!("envid: {}", envid.as_str());
                }
                if let Some(ret) = e.ret {
                    println!("ret: {ret:?}");
                }
                for r in &e.recipients {
                    let status = match &r.status {
                        RcptStatus::Pending => "pending".to_owned(),
                        RcptStatus::Delivered => "delivered".to_owned(),
                        RcptStatus::Deferred(d) => {
                            format!("deferred {} ({})", d.status(), d.text())
                        }
                        RcptStatus::Bounced(d) => format!("bounced {} ({})", d.status(), d.text()),
                    };
                    println!("recipient: {} {status}", r.path);
                }
                Ok(())
            }
            None => Err(mailroom::queue::QueueError::NotFound(id)),
        },
        ("cat", Some(id)) => {
            let mut out = std::io::stdout().lock();
            let r = queue.export(id, &mut out).map(drop);
            let _ = out.flush();
            r
        }
        ("hold", Some(id)) => queue.hold(id),
        ("release", Some(id)) => queue.release(id),
        ("delete", Some(id)) => queue.delete(id),
        ("requeue", Some(id)) => queue.requeue(id),
        _ => return usage(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("queue_tool: {e}");
            ExitCode::FAILURE
        }
    }
}
