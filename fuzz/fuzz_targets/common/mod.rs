//! Shared harness of the parse targets: the fuzz input is a page body as a platform would send
//! it, behind three control bytes; the page goes through the source's own `parse`, and every
//! cursor it returns through `request` (and once more through `parse`).
//!
//! Input layout: three control bytes, each XORed with b'0' so that seeds can start with
//! readable characters, then the response body:
//!
//! * byte 0: bits 0-2 the HTTP status, `STATUSES[..]` (200, 200, 201, 403, 429, 500, 503, 401);
//!   bit 3 adds `Retry-After: 120` (`'<'` = 429 with Retry-After);
//! * byte 1: bits 0-2 the cursor's page, `PAGES[..]` (1, 1, 2, 3, 10, 100, 1000, 100000);
//! * byte 2: which of the target's source configs (`% n`), e.g. Offerslook network/affiliate.
//!
//! The body is the answer for the cursor's page; a `next` cursor is then parsed again with the
//! same body, or, when the body contains a NUL byte (never valid JSON), the part before the
//! first NUL answers the first page and the part after it the next page (same status).
//!
//! `000{...}` is "HTTP 200, page 1, variant 0"; `021{...}` is "HTTP 200, page 2, variant 1".
//!
//! Invariants checked on every parse (a violation panics, so libFuzzer reports it):
//! * a non-2xx response is never accepted as a page;
//! * a `Failure` has a message;
//! * every offer has a non-empty `external_id` and is already normalized
//!   (`offer.normalized() == offer`, the documented idempotence), its `content_hash` is the hash
//!   of the offer, its status is never `removed` (only the store sets it), its `raw` is JSON;
//! * every rejected row has a reason;
//! * `Page.next`, when present, moves forward: `(pass, page)` strictly greater than the cursor's;
//! * `request(next)` does not panic and yields an http(s) URL.
//!
//! Known findings can be silenced with `OFFERSYNC_FUZZ_IGNORE=name,name` (see README.md) so a
//! campaign can keep looking for new ones after the first is recorded.

#![allow(dead_code)]

use offersync::config::{Config, Secret};
use offersync::http::{HttpRequest, HttpResponse};
use offersync::model::{content_hash, OfferStatus};
use offersync::sources::{build, Cursor, Page, Source};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::StatusCode;
use std::path::Path;
use std::sync::OnceLock;

pub const STATUSES: [u16; 8] = [200, 200, 201, 403, 429, 500, 503, 401];
pub const PAGES: [u64; 8] = [1, 1, 2, 3, 10, 100, 1000, 100_000];

/// The API key every fuzzed source is built with.
pub const SECRET: &str = "fuzz_secret_key_123";

/// One fuzz case.
pub struct Case<'a> {
    /// The answer for `cursor`, then the answer for the `next` cursor it returns.
    pub responses: [HttpResponse; 2],
    pub cursor: Cursor,
    pub variant: usize,
    pub body: &'a [u8],
}

/// Split the input into control bytes and body (`None` for inputs shorter than 3 bytes).
pub fn case(data: &[u8], variants: usize) -> Option<Case<'_>> {
    if data.len() < 3 {
        return None;
    }
    let (s, p, v) = (data[0] ^ b'0', data[1] ^ b'0', data[2] ^ b'0');
    let body = &data[3..];
    let status = StatusCode::from_u16(STATUSES[(s & 7) as usize]).unwrap();
    let mut headers = HeaderMap::new();
    if s & 8 != 0 {
        headers.insert(
            reqwest::header::RETRY_AFTER,
            HeaderValue::from_static("120"),
        );
    }
    let cursor = Cursor {
        pass: 0,
        page: PAGES[(p & 7) as usize],
        token: None,
    };
    let (first, second) = match body.iter().position(|&b| b == 0) {
        Some(i) => (&body[..i], &body[i + 1..]),
        None => (body, body),
    };
    let response = |b: &[u8]| HttpResponse {
        status,
        headers: headers.clone(),
        body: bytes::Bytes::copy_from_slice(b),
    };
    Some(Case {
        responses: [response(first), response(second)],
        cursor,
        variant: v as usize % variants.max(1),
        body,
    })
}

/// Is the finding `name` listed in `$OFFERSYNC_FUZZ_IGNORE` (comma-separated)?
pub fn ignored(name: &str) -> bool {
    static LIST: OnceLock<Vec<String>> = OnceLock::new();
    LIST.get_or_init(|| {
        std::env::var("OFFERSYNC_FUZZ_IGNORE")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    })
    .iter()
    .any(|n| n == name)
}

/// Every `[[sources]]` of a fixed TOML config, built with [`SECRET`]. Panics if the config is
/// invalid: that is a bug in the harness, not in offersync.
pub fn build_sources(toml: &str) -> Vec<Box<dyn Source>> {
    let cfg = Config::from_toml_str(toml, Path::new("fuzz-harness.toml"))
        .unwrap_or_else(|e| panic!("harness config is invalid: {e}"));
    cfg.sources
        .iter()
        .map(|s| build(s, Secret::new(SECRET)).unwrap_or_else(|e| panic!("build: {e}")))
        .collect()
}

/// Checks on a request built for any cursor. (Finding `next-url-scheme`: the generic source
/// follows a next URL of any scheme; `OFFERSYNC_FUZZ_IGNORE=next-url-scheme` skips this check.)
pub fn check_request(req: &HttpRequest) {
    if ignored("next-url-scheme") {
        return;
    }
    assert!(
        matches!(req.url.scheme(), "http" | "https"),
        "request URL scheme is {:?}: {}",
        req.url.scheme(),
        req.url
    );
}

/// Parse `resps[0]` at `cursor`, check the invariants, build the request for its `next` cursor
/// and parse `resps[1]` at that cursor, and so on.
pub fn exercise(
    src: &dyn Source,
    cursor: &Cursor,
    resps: &[HttpResponse],
    extra: &dyn Fn(&HttpRequest),
) {
    let Some(resp) = resps.first() else {
        return;
    };
    match src.parse(cursor, resp) {
        Err(f) => {
            assert!(!f.message.is_empty(), "a Failure without a message");
        }
        Ok(page) => {
            assert!(
                resp.status.is_success(),
                "HTTP {} was accepted as a page",
                resp.status
            );
            check_page(cursor, &page);
            if let Some(next) = &page.next {
                let req = src.request(next);
                check_request(&req);
                extra(&req);
                exercise(src, next, &resps[1..], extra);
            }
        }
    }
}

pub fn check_page(cursor: &Cursor, page: &Page) {
    for so in &page.offers {
        let o = &so.offer;
        if !ignored("blank-id") {
            assert!(
                !o.external_id.is_empty(),
                "offer with an empty external_id (raw {:?})",
                so.raw
            );
        }
        let again = o.clone().normalized();
        assert_eq!(&again, o, "offer is not in normal form (raw {:?})", so.raw);
        assert_eq!(so.content_hash, content_hash(o), "stale content hash");
        assert_ne!(
            o.status,
            OfferStatus::Removed,
            "a source produced status removed"
        );
        assert!(
            serde_json::from_str::<serde::de::IgnoredAny>(&so.raw).is_ok(),
            "raw is not JSON: {:?}",
            so.raw
        );
    }
    for r in &page.rejected {
        assert!(!r.reason.is_empty(), "a rejected row without a reason");
    }
    if let Some(next) = &page.next {
        assert!(
            (next.pass, next.page) > (cursor.pass, cursor.page),
            "next cursor {next:?} does not move forward from {cursor:?}"
        );
    }
}

/// The whole per-input routine of a parse target.
pub fn run(sources: &[Box<dyn Source>], data: &[u8], pass_of_variant: impl Fn(usize) -> u32) {
    run_with(sources, data, pass_of_variant, &|_, _| {});
}

/// [`run`] with an extra check on every request built for a cursor a parse returned
/// (`extra(variant, request)`).
pub fn run_with(
    sources: &[Box<dyn Source>],
    data: &[u8],
    pass_of_variant: impl Fn(usize) -> u32,
    extra: &dyn Fn(usize, &HttpRequest),
) {
    let Some(mut c) = case(data, sources.len()) else {
        return;
    };
    c.cursor.pass = pass_of_variant(c.variant);
    let src = sources[c.variant].as_ref();
    check_request(&src.request(&c.cursor));
    let v = c.variant;
    exercise(src, &c.cursor, &c.responses, &|req| extra(v, req));
}
