//! Detaching and attaching a target offer: the mapping flag and a fresh plan in one
//! transaction (the approval queue's decisions are plain store writes, see `store::decisions`).

use super::deliver::replan_in;
use crate::config::TargetConfig;
use crate::model::OpKind;
use crate::store::{Store, StoreError};

/// Stop offersync from touching what `cfg`'s target holds of `source:external_id`. `false`
/// when the target holds no such offer.
pub fn detach(
    store: &mut Store,
    cfg: &TargetConfig,
    source: &str,
    external_id: &str,
    reason: &str,
    now: &str,
) -> Result<bool, StoreError> {
    store.outbox_tx(|tx| tx.detach(&cfg.name, source, external_id, reason, now))
}

/// Resume a detached offer with a fresh plan. `None` when it was not detached; else what is
/// now planned for it (nothing when the target already holds what the mirror says).
pub fn attach(
    store: &mut Store,
    cfg: &TargetConfig,
    source: &str,
    external_id: &str,
    now: &str,
) -> Result<Option<Option<OpKind>>, StoreError> {
    store.outbox_tx(|tx| {
        if !tx.attach(&cfg.name, source, external_id)? {
            return Ok(None);
        }
        replan_in(tx, cfg, source, external_id, false, now).map(Some)
    })
}
