//! Trackier (`kind = "trackier"`): the fuzz input is a `/v2/publisher/campaigns` response body
//! (see `common/mod.rs` for the three control bytes).
//!
//! Variants (control byte 2): 0 key in the header, limit 1000; 1 key in the query, limit 2.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use offersync::sources::Source;
use std::sync::LazyLock;

const CONFIG: &str = r#"
[database]
path = "fuzz.db"

[[sources]]
name = "trackier"
kind = "trackier"
base_url = "https://api.trackier.com"
api_key = "unused"

[[sources]]
name = "trackier-query-small"
kind = "trackier"
base_url = "https://api.white-label.example/v2/publisher/campaigns"
api_key_in = "query"
api_key = "unused"
page_size = 2
"#;

static SOURCES: LazyLock<Vec<Box<dyn Source>>> = LazyLock::new(|| common::build_sources(CONFIG));

fuzz_target!(|data: &[u8]| {
    common::run(&SOURCES, data, |_| 0);
});
