//! The server's configuration: defaults, then a TOML file, then `DOORSTEP_*` environment
//! variables (which win), so the same binary runs on a laptop with no file at all and in a
//! container configured only by its environment.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on (`DOORSTEP_LISTEN`); port 0 picks a free port.
    pub listen: String,
    /// The embedded SQLite database file (`DOORSTEP_DATABASE`).
    pub database: PathBuf,
    /// Bearer token of the operator's admin calls (`DOORSTEP_ADMIN_TOKEN`); without one the
    /// admin endpoints answer 404.
    pub admin_token: Option<String>,
    /// Largest request body accepted, on every route (`DOORSTEP_MAX_BODY_BYTES`).
    pub max_body_bytes: usize,
    /// Bytes of request bodies the server holds at once, all devices together
    /// (`DOORSTEP_MAX_IN_FLIGHT_BYTES`); a request that would pass it is answered 429.
    pub max_in_flight_bytes: usize,
    /// Connections open at once (`DOORSTEP_MAX_CONNECTIONS`); beyond it a new connection is
    /// closed as soon as it is accepted. Keep it below the process's file descriptor limit.
    pub max_connections: usize,
    /// Seconds a client has to send a request's head (`DOORSTEP_HEADER_READ_TIMEOUT_SECS`),
    /// from the connection's start or the end of its previous request; then it is closed.
    pub header_read_timeout_secs: u64,
    /// Seconds a client has to send a request's whole body (`DOORSTEP_BODY_READ_TIMEOUT_SECS`);
    /// then it is answered 408.
    pub body_read_timeout_secs: u64,
    /// `text` or `json` (`DOORSTEP_LOG_FORMAT`); the level comes from `RUST_LOG`.
    pub log_format: LogFormat,
    /// The deployment's signing key (`DOORSTEP_DEPLOYMENT_KEY_FILE`): 64 hexadecimal digits,
    /// made at the first start when the file does not exist. Unset: the database's path with
    /// `.deployment-key` added. OPERATIONS.md says how to back it up and what a leak means.
    pub deployment_key_file: Option<PathBuf>,
    /// Days a device certificate is valid from its issue (`DOORSTEP_CERTIFICATE_DAYS`).
    pub certificate_days: u32,
}

impl Config {
    /// Where the deployment key is kept.
    pub fn deployment_key_path(&self) -> PathBuf {
        self.deployment_key_file.clone().unwrap_or_else(|| {
            let mut p = self.database.as_os_str().to_owned();
            p.push(".deployment-key");
            PathBuf::from(p)
        })
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:7300".into(),
            database: PathBuf::from("doorstep-server.sqlite"),
            admin_token: None,
            max_body_bytes: doorstep_core::sync::wire::MAX_MESSAGE_BYTES,
            max_in_flight_bytes: 256 << 20,
            max_connections: 512,
            header_read_timeout_secs: 10,
            // The reference client gives a request 120 s (PROTOCOL.md §6): a slow phone link
            // uploading a large message is not cut before its own client would give up.
            body_read_timeout_secs: 120,
            log_format: LogFormat::Text,
            deployment_key_file: None,
            certificate_days: 14,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the configuration file could not be read: {0}")]
    Read(#[from] std::io::Error),
    #[error("the configuration file is not valid: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("environment variable {name} is not valid: {reason}")]
    Env { name: &'static str, reason: String },
    #[error("the setting {name} is not valid: {reason}")]
    Value { name: &'static str, reason: String },
}

impl Config {
    /// Defaults, overridden by `file` when given, overridden by the environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut config = match file {
            Some(path) => toml::from_str(&std::fs::read_to_string(path)?)?,
            None => Config::default(),
        };
        config.apply_env(|name| std::env::var(name).ok())?;
        config.check()?;
        Ok(config)
    }

    /// Checks what neither the file's types nor the environment's parsing check.
    fn check(&self) -> Result<(), ConfigError> {
        if !(1..=365).contains(&self.certificate_days) {
            return Err(ConfigError::Value { name: "certificate_days", reason: "from 1 to 365 days".into() });
        }
        Ok(())
    }

    fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = var("DOORSTEP_LISTEN") {
            self.listen = v;
        }
        if let Some(v) = var("DOORSTEP_DATABASE") {
            self.database = PathBuf::from(v);
        }
        if let Some(v) = var("DOORSTEP_ADMIN_TOKEN") {
            self.admin_token = Some(v);
        }
        if let Some(v) = var("DOORSTEP_DEPLOYMENT_KEY_FILE") {
            self.deployment_key_file = Some(PathBuf::from(v));
        }
        number(&var, "DOORSTEP_CERTIFICATE_DAYS", &mut self.certificate_days)?;
        number(&var, "DOORSTEP_MAX_BODY_BYTES", &mut self.max_body_bytes)?;
        number(&var, "DOORSTEP_MAX_IN_FLIGHT_BYTES", &mut self.max_in_flight_bytes)?;
        number(&var, "DOORSTEP_MAX_CONNECTIONS", &mut self.max_connections)?;
        number(&var, "DOORSTEP_HEADER_READ_TIMEOUT_SECS", &mut self.header_read_timeout_secs)?;
        number(&var, "DOORSTEP_BODY_READ_TIMEOUT_SECS", &mut self.body_read_timeout_secs)?;
        if let Some(v) = var("DOORSTEP_LOG_FORMAT") {
            self.log_format = match v.as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => return Err(ConfigError::Env { name: "DOORSTEP_LOG_FORMAT", reason: "use text or json".into() }),
            };
        }
        Ok(())
    }
}

/// Sets `value` from the variable `name` when it is set: a whole number above zero.
fn number<T: std::str::FromStr + PartialOrd + Default>(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    value: &mut T,
) -> Result<(), ConfigError> {
    if let Some(v) = var(name) {
        *value = v
            .trim()
            .parse()
            .ok()
            .filter(|n| *n > T::default())
            .ok_or(ConfigError::Env { name, reason: "not a whole number above zero".into() })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_environment() {
        let mut c: Config = toml::from_str(
            "listen = \"127.0.0.1:9000\"\ndatabase = \"/var/lib/doorstep/server.sqlite\"\nlog_format = \"json\"\n",
        )
        .unwrap();
        assert_eq!(c.listen, "127.0.0.1:9000");
        assert_eq!(c.log_format, LogFormat::Json);
        c.apply_env(|n| (n == "DOORSTEP_LISTEN").then(|| "127.0.0.1:0".to_string())).unwrap();
        assert_eq!(c.listen, "127.0.0.1:0");
        assert_eq!(c.database, PathBuf::from("/var/lib/doorstep/server.sqlite"));
        assert!(c.apply_env(|n| (n == "DOORSTEP_MAX_BODY_BYTES").then(|| "lots".to_string())).is_err());
        assert!(c.apply_env(|n| (n == "DOORSTEP_MAX_CONNECTIONS").then(|| "0".to_string())).is_err());
        c.apply_env(|n| (n == "DOORSTEP_HEADER_READ_TIMEOUT_SECS").then(|| "3".to_string())).unwrap();
        assert_eq!(c.header_read_timeout_secs, 3);
        assert!(toml::from_str::<Config>("listn = \"typo\"").is_err(), "unknown keys are refused");
        for days in [0, 366] {
            let c: Config = toml::from_str(&format!("certificate_days = {days}")).unwrap();
            assert!(c.check().is_err(), "{days} days");
        }
        c.check().unwrap();
    }
}
