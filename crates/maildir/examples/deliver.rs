//! Delivers the message on standard input into a Maildir (created if missing), as a local
//! delivery agent would, and prints its key once it is durable.
//!
//! ```text
//! cargo run -p mailroom-maildir --example deliver -- ~/Maildir [Folder] < message.eml
//! ```
//!
//! Exit status 0 means delivered (fsynced, renamed into `new/`, `new/` fsynced); 75 (EX_TEMPFAIL)
//! a temporary failure; 77 (EX_NOPERM) a permanent one (too large, over quota); 73
//! (EX_CANTCREAT) a Maildir that cannot be opened or created; 64 a usage error, as
//! sendmail-style delivery agents report them.

use std::process::ExitCode;

use mailroom_maildir::Maildir;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: deliver MAILDIR [FOLDER] < message");
        return ExitCode::from(64);
    };
    let root = match Maildir::create(path) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("deliver: {e}");
            return ExitCode::from(73);
        }
    };
    let target = match args.next() {
        None => root,
        Some(folder) => {
            let name = folder.to_string_lossy();
            match root.folder(&name).or_else(|_| root.create_folder(&name)) {
                Ok(m) => m,
                Err(e) => {
                    eprintln!("deliver: {e}");
                    return ExitCode::from(73);
                }
            }
        }
    };
    match target.deliver(std::io::stdin().lock()) {
        Ok(d) => {
            println!("{}", d.key);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("deliver: {e}");
            ExitCode::from(if e.is_permanent() { 77 } else { 75 })
        }
    }
}
