//! Everflow (`kind = "everflow"`): the fuzz input is a `/v1/affiliates/offersrunnable` or
//! `/v1/affiliates/alloffers` response body (see `common/mod.rs` for the three control bytes).
//!
//! Variants (control byte 2): 0 runnable, page_size 500; 1 all offers, page_size 2;
//! 2 runnable, page_size 2000.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use offersync::sources::Source;
use std::sync::LazyLock;

const CONFIG: &str = r#"
[database]
path = "fuzz.db"

[[sources]]
name = "everflow-runnable"
kind = "everflow"
base_url = "https://api.eflow.team"
api_key = "unused"

[[sources]]
name = "everflow-all-small"
kind = "everflow"
base_url = "https://api-eu.eflow.team/"
listing = "all"
api_key = "unused"
page_size = 2

[[sources]]
name = "everflow-big"
kind = "everflow"
base_url = "http://api.eflow.team"
api_key = "unused"
page_size = 2000
"#;

static SOURCES: LazyLock<Vec<Box<dyn Source>>> = LazyLock::new(|| common::build_sources(CONFIG));

fuzz_target!(|data: &[u8]| {
    common::run(&SOURCES, data, |_| 0);
});
