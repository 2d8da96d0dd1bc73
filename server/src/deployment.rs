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
}

/// The key in `path`, or a new one written there when the file does not exist. The new file is
/// written whole under a temporary name, then linked into place, which fails if another process
/// got there first; then that process's key is read. A half-written key file never exists.
pub fn load_or_create(path: &Path) -> Result<DeploymentSigner, KeyFileError> {
    let shown = path.display().to_string();
    let io = |source| KeyFileError::Io { path: shown.clone(), source };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            return DeploymentSigner::from_hex(&text).map_err(|_| KeyFileError::Invalid { path: shown.clone() })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let key = DeploymentSigner::generate().map_err(|e| io(std::io::Error::other(e.to_string())))?;
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".{}.new", std::process::id()));
    let temporary = std::path::PathBuf::from(temporary);
    let written = (|| {
        let mut file = secret_file(&temporary)?;
        file.write_all(format!("{}\n", key.to_hex()).as_bytes())?;
        file.sync_all()?;
        std::fs::hard_link(&temporary, path)
    })();
    let _ = std::fs::remove_file(&temporary);
    match written {
        Ok(()) => {
            tracing::info!(key = %key.id(), path = %shown, "made the deployment key");
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_or_create(path),
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
        let made = load_or_create(&path).unwrap();
        let again = load_or_create(&path).unwrap();
        assert_eq!(made.id(), again.id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file is left");
        std::fs::write(&path, "not a key").unwrap();
        let e = load_or_create(&path).unwrap_err();
        assert!(matches!(e, KeyFileError::Invalid { .. }), "{e}");
        assert!(!e.to_string().contains("not a key"), "the file's content is never shown: {e}");
    }
}
