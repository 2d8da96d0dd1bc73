//! The `doorstep` command: the demo of a working day, the benches, and (later) the sync server
//! and admin tools. Each subcommand is a thin driver over `doorstep-core`.

mod bench;
mod demo;
mod sample;

use std::process::ExitCode;

const USAGE: &str = "usage:
  doorstep demo [--dir DIR]        seed a sample district on a fresh SQLite file and play a working day
  doorstep bench store [--quick]   measure the store against plain SQLite (prints `name: value unit`)";

fn main() -> ExitCode {
    // Like any Unix command: when the reader of our output goes away (`doorstep demo | head`),
    // stop quietly instead of panicking on the broken pipe.
    // SAFETY: restoring the default disposition of a signal before any other thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["demo"] => demo::run(None),
        ["demo", "--dir", dir] => demo::run(Some(std::path::Path::new(dir))),
        ["bench", "store"] => bench::store(&bench::Sizes::full()),
        ["bench", "store", "--quick"] => bench::store(&bench::Sizes::quick()),
        ["help" | "--help" | "-h"] => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
