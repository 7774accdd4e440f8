//! Helpers of the platform files' unit tests: a source built from TOML keys exactly as a config
//! file would give them, canned responses and cursors.

use super::{build, Cursor, Source};
use crate::config::{Config, Secret};
use crate::http::HttpResponse;

/// The key every test source is built with.
pub const KEY: &str = "unit_secret_key_1";

/// A source from the keys of one `[[sources]]` table (`kind`, `base_url`, platform keys).
pub fn source(keys: &str) -> Box<dyn Source> {
    let text = format!(
        "[database]\npath = \"x\"\n[[sources]]\nname = \"s\"\napi_key = \"{KEY}\"\n{keys}\n"
    );
    let c = Config::from_toml_str(&text, std::path::Path::new("unit"))
        .unwrap_or_else(|e| panic!("{e}"));
    build(&c.sources[0], Secret::new(KEY)).unwrap()
}

/// A response with `status` and `body`, and `headers`.
pub fn resp_with(status: u16, headers: &[(&'static str, &str)], body: &str) -> HttpResponse {
    let mut h = reqwest::header::HeaderMap::new();
    for (k, v) in headers {
        h.insert(*k, v.parse().unwrap());
    }
    HttpResponse {
        status: reqwest::StatusCode::from_u16(status).unwrap(),
        headers: h,
        body: body.as_bytes().to_vec().into(),
    }
}

pub fn resp(status: u16, body: &str) -> HttpResponse {
    resp_with(status, &[], body)
}

pub fn page(n: u64) -> Cursor {
    Cursor {
        pass: 0,
        page: n,
        token: None,
    }
}

/// The query of a request as `(name, value)` pairs.
pub fn query(req: &crate::http::HttpRequest) -> Vec<(String, String)> {
    req.url.query_pairs().into_owned().collect()
}
