//! Youmi / Adxmi S2S feed (`kind = "s2s"`): the fuzz input is a feed response body, in any of
//! its envelopes (seed `{c, d: {p, n, tot, data}}`, v2 offline `{c, total, ..., offers}`, v1
//! `{offers, total, ...}`); see `common/mod.rs` for the three control bytes in front of it.
//!
//! Variants (control byte 2): 0 android, page_size 500 (default); 1 ios, page_size 2, country;
//! 2 android, page_size 10000, thirdparty_id; 3 ios, page_size 1.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use offersync::sources::Source;
use std::sync::LazyLock;

const CONFIG: &str = r#"
[database]
path = "fuzz.db"

[[sources]]
name = "youmi-android"
kind = "s2s"
base_url = "http://ad.api.yyapi.net/v2/offline"
api_key = "unused"
os = "android"
gaid = "38400000-8cf0-11bd-b23e-10b96e40000d"
andid = "9774d56d682e549c"

[[sources]]
name = "youmi-ios"
kind = "s2s"
base_url = "http://ad.api.yyapi.net/v1/online"
api_key = "unused"
os = "ios"
country = "US,GB"
page_size = 2

[[sources]]
name = "youmi-big"
kind = "s2s"
base_url = "http://ad.api.yyapi.net/v2/offline?format=json"
api_key = "unused"
os = "android"
gaid = "38400000-8cf0-11bd-b23e-10b96e40000d"
andid = "9774d56d682e549c"
thirdparty_id = "pub-7"
page_size = 10000

[[sources]]
name = "youmi-one"
kind = "s2s"
base_url = "https://ad.api.yyapi.net/v2/offline"
api_key = "unused"
os = "ios"
page_size = 1
"#;

static SOURCES: LazyLock<Vec<Box<dyn Source>>> = LazyLock::new(|| common::build_sources(CONFIG));

fuzz_target!(|data: &[u8]| {
    common::run(&SOURCES, data, |_| 0);
});
