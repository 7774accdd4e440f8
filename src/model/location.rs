//! Where the mirror is: an SQLite file (`[database] path`, the embedded default) or a
//! PostgreSQL database (`url`, with the password from `password_env` or `password_file`). The
//! config resolves it, the store opens it.

use std::path::{Path, PathBuf};

/// Where the mirror is: an SQLite file, or a PostgreSQL database.
#[derive(Debug, Clone)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(PgLocation),
}

impl Location {
    /// The SQLite file, if the mirror is one.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Location::Sqlite(p) => Some(p),
            Location::Postgres(_) => None,
        }
    }
}

/// A path or the URL with any password replaced: what messages show.
impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(p) => write!(f, "{}", p.display()),
            Location::Postgres(pg) => f.write_str(&redact_url(&pg.url)),
        }
    }
}

impl From<&Path> for Location {
    fn from(p: &Path) -> Location {
        Location::Sqlite(p.to_path_buf())
    }
}

impl From<&PathBuf> for Location {
    fn from(p: &PathBuf) -> Location {
        Location::Sqlite(p.clone())
    }
}

impl From<PathBuf> for Location {
    fn from(p: PathBuf) -> Location {
        Location::Sqlite(p)
    }
}

impl From<&Location> for Location {
    fn from(l: &Location) -> Location {
        l.clone()
    }
}

/// Where a PostgreSQL mirror is: the URL (never with a password in it when shown) and the
/// password, from `password_env` / `password_file`.
#[derive(Clone)]
pub struct PgLocation {
    pub url: String,
    pub password: Option<String>,
}

impl std::fmt::Debug for PgLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgLocation")
            .field("url", &redact_url(&self.url))
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The URL as it may be shown: any password in it replaced.
pub fn redact_url(url: &str) -> String {
    // scheme://user:password@host... -> scheme://user:***@host...
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[start..];
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let auth = &rest[..end];
    let Some(at) = auth.rfind('@') else {
        return url.to_string();
    };
    match auth[..at].find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &url[..start],
            &auth[..colon],
            &url[start + at..]
        ),
        None => url.to_string(),
    }
}
