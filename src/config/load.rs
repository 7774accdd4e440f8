//! Reading the config: defaults, the TOML file, `OFFERSYNC__...` environment overrides, then
//! [`super::validate`]. A key or value that came from the environment is blamed on its variable.

use super::raw::{RawConfig, RawSource};
use super::{env, validate, Config, ConfigError};
use std::path::Path;

impl Config {
    /// Load, deserialize and validate the config at `path` (environment overrides applied).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = || {
            config::File::from(path)
                .format(config::FileFormat::Toml)
                .required(true)
        };
        let read_error = |e: config::ConfigError| ConfigError::Read {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        // The names in the file, so that overrides can name a source or a target.
        let plain = config::Config::builder()
            .add_source(file())
            .build()
            .map_err(read_error)?;
        let names = |list: &str| -> Vec<String> {
            plain
                .get_array(list)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|v| v.into_table().ok()?.remove("name")?.into_string().ok())
                .collect()
        };
        let overrides = env::overrides(std::env::vars(), &names("sources"), &names("targets"))
            .map_err(|errors| ConfigError::Invalid {
                path: path.to_path_buf(),
                errors,
            })?;
        let builder = env::apply(config::Config::builder().add_source(file()), &overrides)
            .map_err(|e| ConfigError::Invalid {
                path: path.to_path_buf(),
                errors: vec![e],
            })?;
        let built = builder.build().map_err(read_error)?;
        let blame = |key: String, message: String| {
            let message = env::suggest(&message);
            let key = match overrides.iter().find(|o| {
                key == o.key || o.key.starts_with(&format!("{key}.")) || key.starts_with(&o.key)
            }) {
                Some(o) => format!("{key} (from environment variable {})", o.variable),
                None if key == "." => "(top level)".into(),
                None => key,
            };
            ConfigError::Parse {
                path: path.to_path_buf(),
                key,
                message,
            }
        };
        let (raw, sources) = read(built).map_err(|(k, m)| blame(k, m))?;
        warn_if_world_readable(path, &raw, &sources);
        validate(path, raw, sources)
    }

    /// Load from a TOML string (the demo's embedded config and tests); no environment overrides.
    pub fn from_toml_str(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        let built = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()
            .map_err(|e| ConfigError::Read {
                path: origin.to_path_buf(),
                message: e.to_string(),
            })?;
        let (raw, sources) = read(built).map_err(|(key, message)| ConfigError::Parse {
            path: origin.to_path_buf(),
            key,
            message: env::suggest(&message),
        })?;
        validate(origin, raw, sources)
    }
}

/// The config as written, its sources split by kind; an error as `(key path, message)`.
fn read(built: config::Config) -> Result<(RawConfig, Vec<RawSource>), (String, String)> {
    let mut raw: RawConfig = serde_path_to_error::deserialize(built)
        .map_err(|e| (e.path().to_string(), e.into_inner().to_string()))?;
    let sources = std::mem::take(&mut raw.sources)
        .into_iter()
        .enumerate()
        .map(|(i, table)| RawSource::split(i, table))
        .collect::<Result<_, _>>()?;
    Ok((raw, sources))
}

fn warn_if_world_readable(path: &Path, raw: &RawConfig, sources: &[RawSource]) {
    use std::os::unix::fs::PermissionsExt;
    let has_literal = sources.iter().any(|s| s.common.api_key.is_some())
        || raw.targets.iter().any(|t| t.api_key.is_some());
    if let Ok(meta) = std::fs::metadata(path) {
        if has_literal && meta.permissions().mode() & 0o004 != 0 {
            tracing::warn!(
                path = %path.display(),
                "config file holds a literal api_key and is readable by every user; chmod 600 it or use api_key_env / api_key_file"
            );
        }
    }
}
