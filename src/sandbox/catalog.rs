//! The sandbox's offer catalogue: offer `i` is a pure function of `(seed, i)`, so a catalogue of
//! a million offers costs a few bytes per offer; mutations (add, change payout, pause, archive,
//! remove) are kept as overrides. Platform twins render it in their own wire shapes.

use std::collections::{BTreeMap, BTreeSet};

/// One simulated offer, in platform-neutral terms.
#[derive(Debug, Clone, PartialEq)]
pub struct SimOffer {
    pub index: usize,
    pub id: String,
    pub name: String,
    /// Payout in cents (rendered as a decimal by each twin).
    pub payout_cents: i64,
    pub payout_type: &'static str,
    pub status: &'static str,
    pub tracking_url: String,
    pub advertiser_id: String,
    pub countries: Vec<&'static str>,
    pub category: &'static str,
    /// Unix seconds.
    pub created_at: i64,
}

const COUNTRIES: &[&str] = &["US", "GB", "DE", "FR", "BR", "IN", "JP", "CA", "AU", "ES"];
const CATEGORIES: &[&str] = &[
    "Games",
    "Finance",
    "Dating",
    "Shopping",
    "Utilities",
    "Health",
];

fn mix(seed: u64, i: u64) -> u64 {
    // splitmix64: deterministic, well spread.
    let mut z = seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn generate_status(index: usize) -> &'static str {
    if index % 17 == 3 {
        "paused"
    } else {
        "active"
    }
}

/// The offer at `index` before any mutation.
pub fn generate(seed: u64, index: usize) -> SimOffer {
    let h = mix(seed, index as u64);
    let n_countries = 1 + (h % 3) as usize;
    let first = (h >> 8) as usize % COUNTRIES.len();
    let countries = (0..n_countries)
        .map(|k| COUNTRIES[(first + k * 3) % COUNTRIES.len()])
        .collect();
    SimOffer {
        index,
        id: format!("{:08x}{:016x}", index as u32, h),
        name: format!(
            "Offer {index} – {}",
            CATEGORIES[(h >> 16) as usize % CATEGORIES.len()]
        ),
        payout_cents: 50 + (h >> 20) as i64 % 2000,
        payout_type: if index.is_multiple_of(5) {
            "cpc"
        } else {
            "cpa"
        },
        status: generate_status(index),
        tracking_url: format!("https://track.example/click?o={index}&aff_click_id={{click_id}}"),
        advertiser_id: format!("adv-{}", (h >> 32) % 40),
        countries,
        category: CATEGORIES[(h >> 24) as usize % CATEGORIES.len()],
        created_at: 1_735_689_600 + (index as i64 % 86_400) * 60,
    }
}

/// A mutable catalogue.
#[derive(Debug, Clone)]
pub struct Catalog {
    seed: u64,
    total: usize,
    overrides: BTreeMap<usize, SimOffer>,
    removed: BTreeSet<usize>,
    /// Live indices in feed order; rebuilt after mutations.
    order: Vec<u32>,
    dirty: bool,
    /// Live indices passing a status filter (keyed by the filter), so that a filtered listing
    /// does not rescan the catalogue for every page; cleared by every mutation.
    filtered: Option<(usize, Vec<u32>)>,
}

impl Catalog {
    pub fn new(seed: u64, count: usize) -> Catalog {
        Catalog {
            seed,
            total: count,
            overrides: BTreeMap::new(),
            removed: BTreeSet::new(),
            order: Vec::new(),
            dirty: true,
            filtered: None,
        }
    }

    pub fn offer(&self, index: usize) -> SimOffer {
        self.overrides
            .get(&index)
            .cloned()
            .unwrap_or_else(|| generate(self.seed, index))
    }

    /// An offer's status without rendering the offer.
    fn status(&self, index: usize) -> &'static str {
        match self.overrides.get(&index) {
            Some(o) => o.status,
            None => generate_status(index),
        }
    }

    fn live_order(&mut self) -> &[u32] {
        if self.dirty {
            self.filtered = None;
            self.order = (0..self.total)
                .filter(|i| !self.removed.contains(i))
                .map(|i| i as u32)
                .collect();
            self.dirty = false;
        }
        &self.order
    }

    /// Live offers (not removed), in feed order, whose status passes `keep`.
    pub fn live(&mut self, keep: impl Fn(&str) -> bool) -> Vec<SimOffer> {
        let order: Vec<u32> = self.live_order().to_vec();
        order
            .into_iter()
            .map(|i| self.offer(i as usize))
            .filter(|o| keep(o.status))
            .collect()
    }

    /// Number of live (not removed) offers.
    pub fn len(&mut self) -> usize {
        self.live_order().len()
    }

    pub fn is_empty(&mut self) -> bool {
        self.len() == 0
    }

    /// The `page`-th slice (1-based) of `size` live offers whose status passes `keep`, and how
    /// many such offers there are. Fast path without a status filter: no full scan.
    pub fn page(
        &mut self,
        page: u64,
        size: usize,
        keep: Option<fn(&str) -> bool>,
    ) -> (Vec<SimOffer>, usize) {
        let skip = (page.saturating_sub(1) as usize).saturating_mul(size);
        match keep {
            None => {
                let order = self.live_order();
                let total = order.len();
                let ids: Vec<u32> = order.iter().skip(skip).take(size).copied().collect();
                (
                    ids.into_iter().map(|i| self.offer(i as usize)).collect(),
                    total,
                )
            }
            Some(keep) => {
                let key = keep as usize;
                self.live_order();
                if self.filtered.as_ref().is_none_or(|(k, _)| *k != key) {
                    let ids = self
                        .order
                        .iter()
                        .copied()
                        .filter(|i| keep(self.status(*i as usize)))
                        .collect();
                    self.filtered = Some((key, ids));
                }
                let ids = &self.filtered.as_ref().expect("just filled").1;
                let total = ids.len();
                let page: Vec<u32> = ids.iter().skip(skip).take(size).copied().collect();
                (
                    page.into_iter().map(|i| self.offer(i as usize)).collect(),
                    total,
                )
            }
        }
    }

    /// Append `n` new offers; returns their indices.
    pub fn add(&mut self, n: usize) -> Vec<usize> {
        let start = self.total;
        self.total += n;
        self.dirty = true;
        (start..self.total).collect()
    }

    /// Change an offer (e.g. its payout or status).
    pub fn update(&mut self, index: usize, f: impl FnOnce(&mut SimOffer)) {
        let mut o = self.offer(index);
        f(&mut o);
        self.overrides.insert(index, o);
        self.filtered = None;
    }

    pub fn remove(&mut self, index: usize) {
        self.removed.insert(index);
        self.dirty = true;
    }

    /// Bring a removed offer back.
    pub fn restore(&mut self, index: usize) {
        self.removed.remove(&index);
        self.dirty = true;
    }

    /// Remove every offer (an outage answering with an empty list).
    pub fn clear(&mut self) {
        let all: Vec<usize> = (0..self.total).collect();
        self.removed.extend(all);
        self.dirty = true;
    }

    /// Whether every live offer's status passes `keep` (generated offers are only active or
    /// paused; only overrides can hold other statuses), so a listing can skip filtering.
    pub fn all_pass(&self, keep: fn(&str) -> bool) -> bool {
        keep("active")
            && keep("paused")
            && self
                .overrides
                .values()
                .all(|o| keep(o.status) || self.removed.contains(&o.index))
    }

    /// Indices of the live offers, in feed order.
    pub fn live_indices(&mut self) -> Vec<usize> {
        self.live_order().iter().map(|i| *i as usize).collect()
    }
}
