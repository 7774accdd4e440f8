//! Credentials: how a key is supplied (environment variable, file, literal) and resolving it
//! to a [`Secret`] only when a command calls a platform.

use super::{Errors, Secret};
use std::path::{Path, PathBuf};

/// How a credential is supplied; resolved to a [`Secret`] only by commands that call platforms.
#[derive(Debug, Clone)]
pub enum CredentialSpec {
    /// Read from this environment variable.
    Env(String),
    /// Read from this file. A relative path is looked up in `$CREDENTIALS_DIRECTORY` (systemd's
    /// `LoadCredential=`) first, then in `base`, the config file's folder: never in the
    /// current directory, so `sudo offersync check` finds what the service finds.
    File {
        path: PathBuf,
        base: PathBuf,
    },
    Literal(Secret),
}

pub(super) fn credential(
    key: &str,
    env: Option<String>,
    file: Option<String>,
    literal: Option<String>,
    base: &Path,
    errs: &mut Errors,
) -> Option<CredentialSpec> {
    match (env, file, literal) {
        (Some(e), None, None) if !e.is_empty() => Some(CredentialSpec::Env(e)),
        (None, Some(f), None) if !f.is_empty() => Some(CredentialSpec::File {
            path: PathBuf::from(f),
            base: base.to_path_buf(),
        }),
        (None, None, Some(k)) if !k.is_empty() => Some(CredentialSpec::Literal(Secret::new(k))),
        (None, None, None) => {
            errs.push(
                format!("{key}.api_key_env"),
                "missing credential: set one of api_key_env, api_key_file or api_key",
            );
            None
        }
        _ => {
            errs.push(
                format!("{key}.api_key_env"),
                "set exactly one non-empty of api_key_env, api_key_file or api_key",
            );
            None
        }
    }
}

/// Where a relative `api_key_file = "NAME"` is looked for, in order: systemd's credentials
/// (`$CREDENTIALS_DIRECTORY/NAME`, and `offersync_NAME`, the name the units'
/// `LoadCredential=offersync:/etc/offersync/credentials` gives each file of that directory),
/// then beside the config file (`credentials/NAME`, then `NAME`): the service and
/// `sudo offersync check` find the same key, and never in the current directory.
fn credential_candidates(path: &Path, base: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
        let dir = Path::new(&dir);
        out.push(dir.join(path));
        let flat = path.to_string_lossy().replace('/', "_");
        out.push(dir.join(format!("offersync_{flat}")));
    }
    out.push(base.join("credentials").join(path));
    out.push(base.join(path));
    out
}

/// Resolve a credential to its value. `key` is the config key path used in the error.
pub fn resolve_credential(key: &str, spec: &CredentialSpec) -> Result<Secret, String> {
    resolve_secret(key, "api_key", spec)
}

/// Resolve a secret given as `<field>_env`, `<field>_file` or `<field>` (`api_key`, `url`);
/// errors name `key.<field>_env` or `key.<field>_file`.
pub fn resolve_secret(key: &str, field: &str, spec: &CredentialSpec) -> Result<Secret, String> {
    match spec {
        CredentialSpec::Literal(s) => Ok(s.clone()),
        CredentialSpec::Env(var) => match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => Ok(Secret::new(v.trim())),
            Ok(_) => Err(format!(
                "{key}.{field}_env: environment variable {var} is empty"
            )),
            Err(_) => Err(format!(
                "{key}.{field}_env: environment variable {var} is not set"
            )),
        },
        CredentialSpec::File { path, base } => {
            let full = if path.is_relative() {
                credential_candidates(path, base)
                    .into_iter()
                    .find(|p| p.exists())
                    .unwrap_or_else(|| base.join(path))
            } else {
                path.clone()
            };
            match std::fs::read_to_string(&full) {
                Ok(v) if !v.trim().is_empty() => Ok(Secret::new(v.trim())),
                Ok(_) => Err(format!("{key}.{field}_file: {} is empty", full.display())),
                Err(e) => Err(format!(
                    "{key}.{field}_file: cannot read {}: {e}",
                    full.display()
                )),
            }
        }
    }
}
