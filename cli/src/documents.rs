//! `doorstep ls | export | import`: a store's documents for an operator, one command each — what
//! OPERATIONS.md means by a document "saved from its store" (the office's directory for a new
//! server, a phone's documents for a support case, a backup of one document).
//!
//! The store is opened as the app opens it (an older schema is upgraded; a store open elsewhere is
//! refused); nothing leaves a store by opening it. An import is checked like any other
//! replica's bytes (the boundary, authors against the directory's devices): it is kept whole or
//! not at all.

use std::io::Write;
use std::path::Path;

use doorstep_core::{DocId, Error, OpenOptions, Result, Store};

fn open(store: &Path) -> Result<Store> {
    if !store.exists() {
        return Err(Error::File(format!("there is no store at {}", store.display())));
    }
    Store::open(store, OpenOptions::default())
}

fn doc_id(id: &str) -> Result<DocId> {
    DocId::parse(id).map_err(|_| Error::InvalidInput {
        field: "document",
        reason: "must be directory, register/<unit>, visits/<unit>/<YYYY-MM>, report/<id> or grid/<unit>".into(),
    })
}

/// Prints one line per document: its id, stored bytes and change rows.
pub fn ls(store: &Path) -> Result<()> {
    let store = open(store)?;
    let mut out = std::io::stdout().lock();
    for d in store.documents()? {
        writeln!(out, "{}\t{} bytes\t{} change rows", d.id, d.stored_bytes, d.change_rows)?;
    }
    Ok(())
}

/// Writes the whole document `id` (history included) to `out`, or to stdout when `out` is `-`.
pub fn export(store: &Path, id: &str, out: &Path) -> Result<()> {
    let id = doc_id(id)?;
    // Never over the store itself or the files beside it.
    let name = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let target = name(out);
    for suffix in ["", "-wal", "-shm", ".lock"] {
        let mut beside = store.as_os_str().to_owned();
        beside.push(suffix);
        if target == name(Path::new(&beside)) {
            return Err(Error::File(format!("{} is the store or one of its files; export elsewhere", out.display())));
        }
    }
    let bytes = open(store)?.save_document(&id)?;
    if out == Path::new("-") {
        std::io::stdout().lock().write_all(&bytes)?;
    } else {
        std::fs::write(out, &bytes).map_err(|e| Error::File(format!("cannot write {}: {e}", out.display())))?;
        eprintln!("{id}: {} bytes written to {}", bytes.len(), out.display());
    }
    Ok(())
}

/// Merges the document in `file` into the store as `id` (a new store when there is none).
pub fn import(store: &Path, id: &str, file: &Path) -> Result<()> {
    let id = doc_id(id)?;
    let bytes = std::fs::read(file).map_err(|e| Error::File(format!("cannot read {}: {e}", file.display())))?;
    // An import may start a store (a restore into a fresh file).
    let mut store = Store::open(store, OpenOptions::default())?;
    let outcome = store.import_document(&id, &bytes)?;
    println!("{id}: {} new changes, {} records updated", outcome.new_changes, outcome.records_updated);
    Ok(())
}
