//! Offerslook (`kind = "offerslook"`): the fuzz input is a response body of one of the four
//! listing endpoints (see `common/mod.rs` for the three control bytes in front of it).
//!
//! Variants (control byte 2): 0 network API `/v1/offers` (flat rows, limit 1000); 1 network API
//! `/v1/batches/offers` (nested rows, limit 3, `rate_limit_codes = [1008]`); 2 affiliate API
//! `/aff/v1/offers` (flat rows, limit 200, filters); 3 affiliate API `/aff/v1/batches/offers`
//! (nested rows, limit 100).
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use offersync::sources::Source;
use std::sync::LazyLock;

const CONFIG: &str = r#"
[database]
path = "fuzz.db"

[[sources]]
name = "ol-network-offers"
kind = "offerslook"
base_url = "https://demo.api.offerslook.com"
api = "network"
endpoint = "offers"
username = "demo-network"
api_key = "unused"

[[sources]]
name = "ol-network-batches"
kind = "offerslook"
base_url = "https://demo.api.offerslook.com/"
api = "network"
endpoint = "batches"
username = "demo-network"
api_key = "unused"
page_size = 3
rate_limit_codes = [1008]

[[sources]]
name = "ol-affiliate-offers"
kind = "offerslook"
base_url = "https://demo.api.offerslook.com"
api = "affiliate"
endpoint = "offers"
username = "me@example.com"
api_key = "unused"
filters = { status = "active", "geo_country[EQUAL_TO]" = "US" }

[[sources]]
name = "ol-affiliate-batches"
kind = "offerslook"
base_url = "http://demo.api.offerslook.com"
api = "affiliate"
endpoint = "batches"
username = "me@example.com"
api_key = "unused"
"#;

static SOURCES: LazyLock<Vec<Box<dyn Source>>> = LazyLock::new(|| common::build_sources(CONFIG));

fuzz_target!(|data: &[u8]| {
    common::run(&SOURCES, data, |_| 0);
});
