//! CAKE (`kind = "cake"`): the fuzz input is an `offers.asmx/OfferFeed` response body, XML (see
//! `common/mod.rs` for the three control bytes; the NUL split works the same).
//!
//! Variants (control byte 2): 0 row_limit 500 with a tracking-link template; 1 row_limit 2,
//! no template, `dollar_currency = "CAD"`.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use offersync::sources::Source;
use std::sync::LazyLock;

const CONFIG: &str = r#"
[database]
path = "fuzz.db"

[[sources]]
name = "cake"
kind = "cake"
base_url = "https://demo.cakemarketing.com"
affiliate_id = "42"
tracking_url_template = "https://demo.cakemarketing.com/?a={affiliate_id}&c={campaign_id}&o={offer_id}"
api_key = "unused"

[[sources]]
name = "cake-small"
kind = "cake"
base_url = "http://demo.cakemarketing.com/affiliates/api/4/offers.asmx/OfferFeed"
affiliate_id = "7"
dollar_currency = "CAD"
api_key = "unused"
page_size = 2
"#;

static SOURCES: LazyLock<Vec<Box<dyn Source>>> = LazyLock::new(|| common::build_sources(CONFIG));

fuzz_target!(|data: &[u8]| {
    common::run(&SOURCES, data, |_| 0);
});
