//! Source platforms as the config sees them: one file per kind declares the keys that only
//! apply to it (a serde struct: the key list is read from it, never written twice), its page
//! limits, its default pace, its own validation and its warnings. Key ownership ("only applies
//! to kind ..."), the list of kinds and the README's key lines all derive from [`SourceKind`]'s
//! declarations.
//!
//! Adding a platform here: a file with its [`Declaration`], a [`SourceKind`] variant with its
//! arm in [`SourceKind::declaration`], and a [`PlatformOptions`] variant for its options.

mod affise;
mod cake;
mod everflow;
mod generic;
mod hasoffers;
mod offer18;
mod offerslook;
mod s2s;
mod trackier;
mod trackly;

pub use affise::AffiseApi;
pub use everflow::EverflowListing;
pub use generic::{
    FieldRule, GenericAuth, GenericPaging, GenericSpec, PathStep, RecordsAre, Transform,
};
pub use hasoffers::HasOffersMethod;
pub use offerslook::{OfferslookApi, OfferslookEndpoint};
pub use trackier::TrackierKeyIn;

use super::Errors;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// The platforms offersync can read offers from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Trackly,
    Offerslook,
    /// Youmi / Adxmi publisher server-to-server offer feed.
    S2s,
    Affise,
    Generic,
    Everflow,
    HasOffers,
    Trackier,
    Offer18,
    Cake,
}

impl SourceKind {
    pub const ALL: [SourceKind; 10] = [
        SourceKind::Trackly,
        SourceKind::Offerslook,
        SourceKind::S2s,
        SourceKind::Affise,
        SourceKind::Generic,
        SourceKind::Everflow,
        SourceKind::HasOffers,
        SourceKind::Trackier,
        SourceKind::Offer18,
        SourceKind::Cake,
    ];

    /// What the platform's config file declares.
    pub(crate) fn declaration(self) -> &'static Declaration {
        match self {
            SourceKind::Trackly => &trackly::DECLARATION,
            SourceKind::Offerslook => &offerslook::DECLARATION,
            SourceKind::S2s => &s2s::DECLARATION,
            SourceKind::Affise => &affise::DECLARATION,
            SourceKind::Generic => &generic::DECLARATION,
            SourceKind::Everflow => &everflow::DECLARATION,
            SourceKind::HasOffers => &hasoffers::DECLARATION,
            SourceKind::Trackier => &trackier::DECLARATION,
            SourceKind::Offer18 => &offer18::DECLARATION,
            SourceKind::Cake => &cake::DECLARATION,
        }
    }

    /// The `kind = "..."` of the config file.
    pub fn as_str(self) -> &'static str {
        self.declaration().name
    }

    /// The keys only this kind takes, in declaration order.
    pub fn keys(self) -> &'static [&'static str] {
        (self.declaration().keys)()
    }

    pub fn from_name(name: &str) -> Option<SourceKind> {
        SourceKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// The options of a source that depend on its kind.
#[derive(Debug, Clone)]
pub enum PlatformOptions {
    Trackly {
        include_archived: bool,
    },
    Offerslook {
        api: OfferslookApi,
        endpoint: OfferslookEndpoint,
        /// Basic-auth user: the network name (network API) or the affiliate's e-mail.
        username: String,
        /// `filters[...]` query parameters, as `(name, value)`.
        filters: Vec<(String, String)>,
        /// Application error codes that mean "Too Many Request" (the message is matched too).
        rate_limit_codes: Vec<i64>,
    },
    S2s {
        os: String,
        gaid: Option<String>,
        andid: Option<String>,
        country: Option<String>,
        thirdparty_id: Option<String>,
    },
    Affise {
        api: AffiseApi,
        statuses: Vec<String>,
    },
    Generic(GenericSpec),
    Everflow {
        listing: EverflowListing,
    },
    HasOffers {
        method: HasOffersMethod,
        /// The `contain[]` models asked for.
        contain: Vec<String>,
        /// The currency of offers whose `currency` is null.
        default_currency: Option<String>,
    },
    Trackier {
        api_key_in: TrackierKeyIn,
    },
    Offer18 {
        /// `aid`.
        affiliate_id: String,
        /// `mid`.
        network_id: String,
        /// The wire number of the first page (0 or 1).
        first_page: u64,
        /// `authorized=1`: approved offers only.
        authorized_only: bool,
    },
    Cake {
        affiliate_id: String,
        /// `{affiliate_id}`, `{campaign_id}`, `{offer_id}` filled in: a running offer's link.
        tracking_url_template: Option<String>,
        /// The currency a bare `$` means.
        dollar_currency: String,
    },
}

/// What one platform's config file declares.
pub(crate) struct Declaration {
    /// `kind = "..."`.
    pub name: &'static str,
    /// The keys only this kind takes (see [`keys_of`]).
    pub keys: fn() -> &'static [&'static str],
    /// Check the kind's own keys (given as written, each key one of `keys`) and build its
    /// options; errors are pushed with `key` (`sources[3]`) as their prefix.
    pub validate: fn(key: &str, table: Map<String, Value>, errs: &mut Errors) -> PlatformOptions,
    /// The largest page the platform serves, and the default page size.
    pub page_limits: fn(&PlatformOptions) -> (u32, u32),
    /// The pace when `requests_per_second` is not set.
    pub default_requests_per_second: f64,
    /// What is valid but probably not meant, for `check` (`key` is `sources[3]`).
    pub warnings: fn(key: &str, &PlatformOptions) -> Vec<String>,
}

/// A declaration's `warnings` when it has none.
fn no_warnings(_: &str, _: &PlatformOptions) -> Vec<String> {
    Vec::new()
}

/// The keys a serde struct accepts, read from its derived `Deserialize` (which names its fields
/// to `deserialize_struct`): the one list of a platform's keys.
pub fn keys_of<T: DeserializeOwned>() -> &'static [&'static str] {
    use serde::de::{Error as _, Visitor};
    use serde::forward_to_deserialize_any;
    struct Fields(&'static [&'static str]);
    impl<'de> serde::Deserializer<'de> for &mut Fields {
        type Error = serde::de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(Self::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            self.0 = fields;
            Err(Self::Error::custom("fields read"))
        }
        forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }
    let mut fields = Fields(&[]);
    let _ = T::deserialize(&mut fields);
    fields.0
}

/// Read a platform's keys (as written) into its serde struct; a wrong type is an error at its
/// key path, and the defaults are used so that the other checks still run.
pub(super) fn parse_keys<T: DeserializeOwned + Default>(
    key: &str,
    table: Map<String, Value>,
    errs: &mut Errors,
) -> T {
    serde_path_to_error::deserialize(Value::Object(table)).unwrap_or_else(|e| {
        errs.push(format!("{key}.{}", e.path()), e.into_inner());
        T::default()
    })
}

/// Which kinds take `name`, when it is a platform key.
pub(super) fn kinds_taking(name: &str) -> Vec<SourceKind> {
    SourceKind::ALL
        .into_iter()
        .filter(|k| k.keys().contains(&name))
        .collect()
}

/// Check that every platform key of a source is one its kind takes, then let the kind validate
/// them. `table` holds the source's keys that some platform declares.
pub(super) fn validate(
    key: &str,
    kind: SourceKind,
    table: Map<String, Value>,
    errs: &mut Errors,
) -> PlatformOptions {
    let mut own = Map::new();
    for (name, value) in table {
        if kind.keys().contains(&name.as_str()) {
            own.insert(name, value);
        } else {
            let names: Vec<String> = kinds_taking(&name)
                .iter()
                .map(|k| format!("{:?}", k.as_str()))
                .collect();
            errs.push(
                format!("{key}.{name}"),
                format!("only applies to kind {}", names.join(" or ")),
            );
        }
    }
    (kind.declaration().validate)(key, own, errs)
}

impl SourceKind {
    /// The largest page the platform serves with these options, and the default page size.
    pub fn page_limits(self, options: &PlatformOptions) -> (u32, u32) {
        (self.declaration().page_limits)(options)
    }

    /// The pace when `requests_per_second` is not set.
    pub fn default_requests_per_second(self) -> f64 {
        self.declaration().default_requests_per_second
    }

    /// What is valid but probably not meant in these options (`key` is `sources[3]`).
    pub fn warnings(self, key: &str, options: &PlatformOptions) -> Vec<String> {
        (self.declaration().warnings)(key, options)
    }
}

/// One of the named values, or an error naming the key and the choices.
pub(super) fn one_of<T: Copy>(
    key: &str,
    value: Option<&str>,
    default: T,
    options: &[(&str, T)],
    errs: &mut Errors,
) -> T {
    match value {
        None => default,
        Some(v) => match options.iter().find(|(name, _)| *name == v) {
            Some((_, t)) => *t,
            None => {
                let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
                errs.push(key, format!("{v:?} is not one of {}", names.join(", ")));
                default
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_read_from_the_declarations() {
        assert_eq!(SourceKind::Trackly.keys(), ["include_archived"]);
        assert!(SourceKind::S2s.keys().contains(&"thirdparty_id"));
        assert_eq!(SourceKind::Generic.keys(), ["generic"]);
        // `api` belongs to two kinds; everything else to one.
        assert_eq!(
            kinds_taking("api"),
            [SourceKind::Offerslook, SourceKind::Affise]
        );
        for kind in SourceKind::ALL {
            assert!(!kind.keys().is_empty(), "{kind:?}");
            assert_eq!(SourceKind::from_name(kind.as_str()), Some(kind));
        }
    }
}
