//! The `doorstep` command: the demo of a field day, the benches, and the sync server. Each
//! subcommand is a thin driver over `doorstep-core` and `doorstep-server`.

mod abuse_bench;
mod bench;
mod demo;
mod documents;
mod growth_bench;
mod load_probe;
mod sample;
mod sync_bench;
mod trust_bench;
mod upgrade_bench;
mod workflow_bench;

use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: load_probe::Counting = load_probe::Counting;

const USAGE: &str = "usage:
  doorstep demo [--dir DIR]        a field day in a sample district: a sync server, five phones, fresh SQLite files
  doorstep bench store [--quick]   measure the store against plain SQLite (prints `name: value unit`)
  doorstep bench sync [--quick]    measure sync bytes and time against raw changes and a local load
  doorstep bench workflow [--quick] derive a report's state; overdue reports in a street vs plain SQLite
  doorstep bench abuse [--quick]   an honest phone's syncs alone and while two devices flood the server
  doorstep bench growth [--quick]  one grid after three years: document sizes, first write, memory, server sync
  doorstep bench upgrade [--quick] converting one grid after three years from the old layout, against a plain load
  doorstep bench trust [--quick]   what trust between devices costs: the peer channel's round trips and bytes
  doorstep serve [--config FILE]   run the sync server (settings: FILE, then DOORSTEP_* variables)
  doorstep ls STORE                the documents of a store, with their stored bytes
  doorstep export STORE DOC FILE   write one document (history included) to FILE (`-`: stdout)
  doorstep import STORE DOC FILE   merge a document from FILE into the store, checked like a sync";

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
        ["bench", "sync"] => sync_bench::sync(&sync_bench::SyncSizes::full()),
        ["bench", "sync", "--quick"] => sync_bench::sync(&sync_bench::SyncSizes::quick()),
        ["bench", "workflow"] => workflow_bench::workflow(&workflow_bench::WorkflowSizes::full()),
        ["bench", "workflow", "--quick"] => workflow_bench::workflow(&workflow_bench::WorkflowSizes::quick()),
        ["bench", "abuse"] => abuse_bench::abuse(&abuse_bench::AbuseSizes::full()),
        ["bench", "abuse", "--quick"] => abuse_bench::abuse(&abuse_bench::AbuseSizes::quick()),
        ["bench", "growth"] => growth_bench::growth(&growth_bench::GrowthSizes::full()),
        ["bench", "growth", "--quick"] => growth_bench::growth(&growth_bench::GrowthSizes::quick()),
        ["bench", "upgrade"] => upgrade_bench::upgrade(&growth_bench::GrowthSizes::full()),
        ["bench", "upgrade", "--quick"] => upgrade_bench::upgrade(&growth_bench::GrowthSizes::quick()),
        ["bench", "trust"] => trust_bench::trust(&trust_bench::TrustSizes::full()),
        ["bench", "trust", "--quick"] => trust_bench::trust(&trust_bench::TrustSizes::quick()),
        ["bench", "growth-load", file] => load_probe::run(std::path::Path::new(file)),
        ["bench", "open-probe", kind, file] => bench::open_probe(kind, std::path::Path::new(file)),
        ["ls", store] => documents::ls(std::path::Path::new(store)),
        ["export", store, doc, file] => documents::export(std::path::Path::new(store), doc, std::path::Path::new(file)),
        ["import", store, doc, file] => documents::import(std::path::Path::new(store), doc, std::path::Path::new(file)),
        ["serve"] => serve(None),
        ["serve", "--config", file] => serve(Some(std::path::Path::new(file))),
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

fn serve(config: Option<&std::path::Path>) -> doorstep_core::Result<()> {
    let config = doorstep_server::Config::load(config).map_err(|e| doorstep_core::Error::File(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(doorstep_server::serve(config))
}
