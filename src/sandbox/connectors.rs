//! The twins of the connector catalogue (APIS.md §8: Everflow, HasOffers / TUNE, Trackier,
//! Offer18, CAKE): their routes and the `base_url`s to configure.

use super::twin::Shared;
use super::{cake, everflow, hasoffers, offer18, route, trackier, Sandbox};

/// `app` with the catalogue's routes, on the twins' states (in the order of the signature).
pub(super) fn routes(app: axum::Router, twins: [&Shared; 5]) -> axum::Router {
    let [ef, ho, tk, o18, ck] = twins;
    app.route(
        "/everflow/v1/affiliates/offersrunnable",
        route(ef, everflow::Everflow { all: false }),
    )
    .route(
        "/everflow/v1/affiliates/alloffers",
        route(ef, everflow::Everflow { all: true }),
    )
    .route(
        "/hasoffers/Apiv3/json",
        route(ho, hasoffers::HasOffers { strict: false }),
    )
    .route(
        "/hasoffers/strict/Apiv3/json",
        route(ho, hasoffers::HasOffers { strict: true }),
    )
    .route(
        "/trackier/v2/publisher/campaigns",
        route(tk, trackier::Trackier),
    )
    .route(
        "/offer18/api/af/offers",
        route(o18, offer18::Offer18 { first_page: 0 }),
    )
    .route(
        "/offer18/one/api/af/offers",
        route(o18, offer18::Offer18 { first_page: 1 }),
    )
    .route(
        "/cake/affiliates/api/4/offers.asmx/OfferFeed",
        route(ck, cake::Cake),
    )
}

impl Sandbox {
    /// The `base_url` to configure for an Everflow source.
    pub fn everflow_base_url(&self) -> String {
        format!("{}/everflow", self.url())
    }

    /// The `base_url` to configure for a HasOffers source; `strict`: a network that rejects
    /// `contain[]=TrackingLink`.
    pub fn hasoffers_base_url(&self, strict: bool) -> String {
        if strict {
            format!("{}/hasoffers/strict", self.url())
        } else {
            format!("{}/hasoffers", self.url())
        }
    }

    /// The `base_url` to configure for a Trackier source.
    pub fn trackier_base_url(&self) -> String {
        format!("{}/trackier", self.url())
    }

    /// The `base_url` to configure for an Offer18 source: pages numbered from 0 (as clients
    /// send them) or, `first_page = 1`, from 1 (as the docs' example).
    pub fn offer18_base_url(&self, first_page: u64) -> String {
        match first_page {
            0 => format!("{}/offer18", self.url()),
            _ => format!("{}/offer18/one", self.url()),
        }
    }

    /// The `base_url` to configure for a CAKE source.
    pub fn cake_base_url(&self) -> String {
        format!("{}/cake", self.url())
    }
}
