//! Trackly (`kind = "trackly"`): the fuzz input is a `/v2/offers` response body (see
//! `common/mod.rs` for the three control bytes in front of it).
//!
//! Variants (control byte 2): 0 plain (page_size 100); 1 include_archived, page_size 3, first
//! pass; 2 include_archived, page_size 3, archived pass (pass 1); 3 page_size 2.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use offersync::sources::Source;
use std::sync::LazyLock;

const CONFIG: &str = r#"
[database]
path = "fuzz.db"

[[sources]]
name = "trackly"
kind = "trackly"
base_url = "https://app.tracklysms.com/api"
api_key = "unused"

[[sources]]
name = "trackly-archived"
kind = "trackly"
base_url = "https://app.tracklysms.com/api/v2/"
api_key = "unused"
page_size = 3
include_archived = true

[[sources]]
name = "trackly-archived-pass"
kind = "trackly"
base_url = "https://api.tracklysms.com/api/v2"
api_key = "unused"
page_size = 3
include_archived = true

[[sources]]
name = "trackly-small"
kind = "trackly"
base_url = "https://app.tracklysms.com/api"
api_key = "unused"
page_size = 2
"#;

static SOURCES: LazyLock<Vec<Box<dyn Source>>> = LazyLock::new(|| common::build_sources(CONFIG));

fuzz_target!(|data: &[u8]| {
    common::run(&SOURCES, data, |variant| u32::from(variant == 2));
});
