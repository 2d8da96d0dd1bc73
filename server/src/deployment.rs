//! The deployment's signing key: it vouches for every device (PROTOCOL.md §8).
//!
//! It is made at the server's first start and kept in one file beside the database (or where
//! `deployment_key_file` says), readable by the server's user only. Several server processes of
//! one deployment share the file. OPERATIONS.md says how to back it up and what a leak means:
//! whoever holds it can issue a certificate for any device.

use std::io::Write;
use std::path::Path;

use doorstep_core::identity::DeploymentSigner;

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("the deployment key file {path} could not be read or written: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("the deployment key file {path} is not a deployment key (64 hexadecimal digits)")]
    Invalid { path: String },
    #[error(
        "the deployment key file {path} is missing, but devices enrolled with this deployment's key: \
         restore it from the backup (docs/OPERATIONS.md, The deployment key)"
    )]
    Missing { path: String },
}

/// The key in `path`, or, when the file does not exist and `may_create` (no device enrolled with
/// a deployment key yet), a new one written there. The new file is written whole under a
/// temporary name of this process's own, then linked into place, which fails if another process
/// got there first; then that process's key is read. A half-written key file never exists. A
/// missing file when devices hold certificates is an error: a new key would make every phone
/// refuse the server (a volume not mounted, a typo in the path, a restore without the key).
pub fn load_or_create(path: &Path, may_create: bool) -> Result<DeploymentSigner, KeyFileError> {
    let shown = path.display().to_string();
    let io = |source| KeyFileError::Io { path: shown.clone(), source };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            return DeploymentSigner::from_hex(&text).map_err(|_| KeyFileError::Invalid { path: shown.clone() })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    if !may_create {
        return Err(KeyFileError::Missing { path: shown });
    }
    let key = DeploymentSigner::generate().map_err(|e| io(std::io::Error::other(e.to_string())))?;
    // A name no other process uses (several may start at once on one shared folder).
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".{}.{:016x}.new", std::process::id(), rand::random::<u64>()));
    let temporary = std::path::PathBuf::from(temporary);
    let mut file = secret_file(&temporary).map_err(io)?;
    let written = file
        .write_all(format!("{}\n", key.to_hex()).as_bytes())
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::hard_link(&temporary, path));
    let _ = std::fs::remove_file(&temporary);
    match written {
        Ok(()) => {
            // The new name is durable only once its folder is.
            if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::File::open(folder).and_then(|f| f.sync_all()).map_err(io)?;
            }
            tracing::info!(key = %key.id(), path = %shown, "made the deployment key");
            Ok(key)
        }
        // Another process linked its key first: that one is the deployment's.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_or_create(path, may_create),
        Err(e) => Err(io(e)),
    }
}

#[cfg(unix)]
fn secret_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)
}

#[cfg(not(unix))]
fn secret_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new().write(true).create_new(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_made_once_kept_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.sqlite.deployment-key");
        assert!(matches!(load_or_create(&path, false), Err(KeyFileError::Missing { .. })));
        let made = load_or_create(&path, true).unwrap();
        let again = load_or_create(&path, false).unwrap();
        assert_eq!(made.id(), again.id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file is left");
        std::fs::write(&path, "not a key").unwrap();
        let e = load_or_create(&path, true).unwrap_err();
        assert!(matches!(e, KeyFileError::Invalid { .. }), "{e}");
        assert!(!e.to_string().contains("not a key"), "the file's content is never shown: {e}");
    }

    #[test]
    fn processes_starting_at_once_agree_on_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.sqlite.deployment-key");
        let ids: Vec<String> = std::thread::scope(|s| {
            let starts: Vec<_> = (0..8).map(|_| s.spawn(|| load_or_create(&path, true).unwrap().id())).collect();
            starts.into_iter().map(|t| t.join().unwrap()).collect()
        });
        assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
        assert_eq!(load_or_create(&path, false).unwrap().id(), ids[0]);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file is left");
    }
}
