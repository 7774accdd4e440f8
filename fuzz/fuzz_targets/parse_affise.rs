//! Affise as a source (`kind = "affise"`): the fuzz input is a `/3.0/offers` or
//! `/3.0/partner/offers` response body (see `common/mod.rs` for the three control bytes in front).
//!
//! Variants (control byte 2): 0 admin API (all three statuses, limit 100); 1 partner API
//! (limit 100); 2 admin API, `statuses = ["active"]`, limit 2; 3 partner API, limit 500.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use offersync::sources::Source;
use std::sync::LazyLock;

const CONFIG: &str = r#"
[database]
path = "fuzz.db"

[[sources]]
name = "affise-admin"
kind = "affise"
base_url = "https://api-demo.affise.com"
api = "admin"
api_key = "unused"

[[sources]]
name = "affise-partner"
kind = "affise"
base_url = "https://api-demo.affise.com/"
api = "partner"
api_key = "unused"

[[sources]]
name = "affise-admin-small"
kind = "affise"
base_url = "https://api-demo.affise.com"
api_key = "unused"
statuses = ["active"]
page_size = 2

[[sources]]
name = "affise-partner-big"
kind = "affise"
base_url = "http://api-demo.affise.com"
api = "partner"
api_key = "unused"
page_size = 500
"#;

static SOURCES: LazyLock<Vec<Box<dyn Source>>> = LazyLock::new(|| common::build_sources(CONFIG));

fuzz_target!(|data: &[u8]| {
    common::run(&SOURCES, data, |_| 0);
});
