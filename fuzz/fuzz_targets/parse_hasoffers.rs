//! HasOffers / TUNE (`kind = "hasoffers"`): the fuzz input is an `Apiv3/json`
//! `Target=Affiliate_Offer` response body (see `common/mod.rs` for the three control bytes).
//!
//! Variants (control byte 2): 0 findAll, limit 100, default contains; 1 findMyApprovedOffers,
//! limit 2, `contain = ["Country"]`, `default_currency = "EUR"`; 2 findAll, limit 1000.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use offersync::sources::Source;
use std::sync::LazyLock;

const CONFIG: &str = r#"
[database]
path = "fuzz.db"

[[sources]]
name = "hasoffers-all"
kind = "hasoffers"
base_url = "https://demo.api.hasoffers.com"
api_key = "unused"

[[sources]]
name = "hasoffers-approved-small"
kind = "hasoffers"
base_url = "https://demo.api.hasoffers.com/Apiv3/json"
method = "findMyApprovedOffers"
contain = ["Country"]
default_currency = "EUR"
api_key = "unused"
page_size = 2

[[sources]]
name = "hasoffers-big"
kind = "hasoffers"
base_url = "http://demo.api.hasoffers.com/"
api_key = "unused"
page_size = 1000
"#;

static SOURCES: LazyLock<Vec<Box<dyn Source>>> = LazyLock::new(|| common::build_sources(CONFIG));

fuzz_target!(|data: &[u8]| {
    common::run(&SOURCES, data, |_| 0);
});
