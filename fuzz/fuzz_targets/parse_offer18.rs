//! Offer18 (`kind = "offer18"`): the fuzz input is an `/api/af/offers` response body (see
//! `common/mod.rs` for the three control bytes).
//!
//! Variants (control byte 2): 0 pages from 0, limit 1000; 1 pages from 1, limit 2, every offer
//! (`authorized_only = false`).
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use offersync::sources::Source;
use std::sync::LazyLock;

const CONFIG: &str = r#"
[database]
path = "fuzz.db"

[[sources]]
name = "offer18"
kind = "offer18"
base_url = "https://api.offer18.com"
affiliate_id = "12345"
network_id = "678"
api_key = "unused"

[[sources]]
name = "offer18-one-small"
kind = "offer18"
base_url = "https://network.example/api/af/offers"
affiliate_id = "1"
network_id = "2"
first_page = 1
authorized_only = false
api_key = "unused"
page_size = 2
"#;

static SOURCES: LazyLock<Vec<Box<dyn Source>>> = LazyLock::new(|| common::build_sources(CONFIG));

fuzz_target!(|data: &[u8]| {
    common::run(&SOURCES, data, |_| 0);
});
