//! The declarative generic JSON source (`kind = "generic"`): the fuzz input is a response body
//! (see `common/mod.rs` for the three control bytes in front of it), read through one of five
//! `[sources.generic]` specs that together use every pagination type, every auth type, both
//! `records_are`, `error_path`, `has_more_path`, `total_path`/`total_pages_path`, a status map,
//! all 18 canonical fields, index paths and all seven transforms.
//!
//! Variants (control byte 2):
//! 0. `config/examples/generic-trackly.toml` (page + per_page, total_pages_path, header auth);
//! 1. `config/examples/generic-offer18.toml` (`data` keyed by id: object_values, query auth);
//! 2. offset pagination, basic auth, nested records, error_path, has_more_path, total_path,
//!    every field and transform;
//! 3. cursor pagination, Bearer header, extra query, total_pages_path;
//! 4. next_url pagination (absolute or relative), query auth, error_path on a nested code.
//!
//! With `OFFERSYNC_FUZZ_SAME_ORIGIN=1` it also asserts that the request for a `next` cursor goes
//! to the configured host (the credential goes with it); off by default, see README.md.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use offersync::sources::Source;
use std::sync::LazyLock;

const CONFIG: &str = r#"
[database]
path = "fuzz.db"

# 0: config/examples/generic-trackly.toml
[[sources]]
name = "trackly-generic"
kind = "generic"
base_url = "https://app.tracklysms.com/api/v2/offers"
api_key = "unused"
page_size = 100

[sources.generic]
records_path = "offers"

[sources.generic.auth]
type = "header"
name = "X-Api-Key"

[sources.generic.pagination]
type = "page"
page_param = "page"
size_param = "per_page"
total_pages_path = "pagination.total_pages"

[sources.generic.fields]
external_id = "id"
name = "name"
status = "status"
payout = "payout|decimal"
payout_type = "payout_type|upper"
tracking_url = "tracking_url"
advertiser = "advertiser_id"
countries = "metadata.countries|split"
categories = "metadata.category|split"
currency = "metadata.currency"
description = "metadata.description"
preview_url = "metadata.preview_url"

[sources.generic.status_map]
archived = "expired"

# 1: config/examples/generic-offer18.toml
[[sources]]
name = "offer18"
kind = "generic"
base_url = "https://api.offer18.com/api/af/offers"
api_key = "unused"
page_size = 100

[sources.generic]
records_path = "data"
records_are = "object_values"

[sources.generic.auth]
type = "query"
name = "key"

[sources.generic.query]
aid = "12345"
mid = "678"
offer_status = "1"
authorized = "1"

[sources.generic.pagination]
type = "page"
page_param = "page"

[sources.generic.fields]
external_id = "offerid"
name = "name"
status = "status"
currency = "currency|upper"
payout = "price|decimal"
payout_type = "model|upper"
preview_url = "preview_url"
countries = "country_allow|split"

[sources.generic.status_map]
"1" = "active"
"0" = "paused"
active = "active"
paused = "paused"

# 2: offset pagination, everything else too
[[sources]]
name = "generic-offset"
kind = "generic"
base_url = "https://api.example.com/affiliate/offers?format=json"
api_key = "unused"
page_size = 2

[sources.generic]
records_path = "response.data.items"
error_path = "response.error"

[sources.generic.auth]
type = "basic"
username = "me@example.com"

[sources.generic.pagination]
type = "offset"
offset_param = "start"
size_param = "rows"
total_path = "response.data.total"
has_more_path = "response.data.has_more"

[sources.generic.fields]
external_id = "id|string"
name = "title"
status = "state|lower"
payout = "payments[0].revenue|decimal"
revenue = "payments[0].total|decimal"
currency = "payments.0.currency|upper"
payout_type = "model|first|upper"
countries = "geo.allow|upper"
platforms = "os|split|lower"
categories = "tags"
tracking_url = "links[0].url"
preview_url = "preview"
advertiser = "advertiser.name"
description = "desc"
icon_url = "images.icon"
app_package = "app.bundle"
starts_at = "start_ts|unix"
ends_at = "end_date"

[sources.generic.status_map]
live = "active"
stopped = "paused"
"0" = "expired"

# 3: cursor pagination
[[sources]]
name = "generic-cursor"
kind = "generic"
base_url = "https://api.example.com/v1/offers"
api_key = "unused"
page_size = 50

[sources.generic]
records_path = "data"

[sources.generic.auth]
type = "header"
name = "Authorization"
prefix = "Bearer "

[sources.generic.query]
status = "active"

[sources.generic.pagination]
type = "cursor"
cursor_param = "after"
cursor_path = "meta.next_cursor"
size_param = "limit"
total_pages_path = "meta.pages"

[sources.generic.fields]
external_id = "uuid"
name = "attributes.name"
status = "attributes.status|upper"
payout = "attributes.payout|string|decimal"
currency = "attributes.currency"
payout_type = "attributes.kind"
countries = "attributes.countries|split|upper"
platforms = "attributes.platforms"
tracking_url = "attributes.urls[1]"
starts_at = "attributes.starts_at"
ends_at = "attributes.ends_at|unix"

# 4: next_url pagination
[[sources]]
name = "generic-next-url"
kind = "generic"
base_url = "https://api.example.com/v3/offers/"
api_key = "unused"
page_size = 25

[sources.generic]
records_path = "results"
error_path = "error.code"

[sources.generic.auth]
type = "query"
name = "api_key"

[sources.generic.pagination]
type = "next_url"
next_url_path = "links.next"
size_param = "page_size"
total_path = "count"

[sources.generic.fields]
external_id = "id"
name = "name"
status = "status"
payout = "payout.amount|decimal"
currency = "payout.currency|upper"
payout_type = "payout.type"
countries = "countries"
categories = "categories|split"
tracking_url = "tracking_url"
preview_url = "preview_url"
"#;

const BASE_HOSTS: [&str; 5] = [
    "app.tracklysms.com",
    "api.offer18.com",
    "api.example.com",
    "api.example.com",
    "api.example.com",
];

static SOURCES: LazyLock<Vec<Box<dyn Source>>> = LazyLock::new(|| common::build_sources(CONFIG));

static SAME_ORIGIN: LazyLock<bool> =
    LazyLock::new(|| std::env::var_os("OFFERSYNC_FUZZ_SAME_ORIGIN").is_some_and(|v| v == "1"));

fuzz_target!(|data: &[u8]| {
    common::run_with(&SOURCES, data, |_| 0, &|variant, req| {
        if *SAME_ORIGIN {
            assert_eq!(
                req.url.host_str(),
                Some(BASE_HOSTS[variant]),
                "the next page's request (with the credential) goes to another host: {}",
                req.url
            );
        }
    });
});
