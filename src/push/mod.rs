//! Pushing the mirror's differences to target networks: the planner (`plan`, pure rules from
//! an offer, a target's config and what the target holds to one operation; [`Targets`] hands
//! them to the store, which writes its decisions to `push_outbox` in the transaction of the
//! change that caused them) and the delivery of the outbox (`deliver`).

pub mod controls;
pub mod deliver;
pub mod plan;
pub mod render;
mod rules;

pub use plan::{merged, plan, render, wanted, Mapping, OpKind, PlannedOp, PushFields, Targets};

use crate::config::TargetConfig;
use crate::http::{Endpoint, Limiters};
use crate::targets::Target;
use std::sync::Arc;

/// What delivering `target` would do now (`push --plan`): every offer of its sources planned
/// against what the target holds. Reads only.
pub fn preview(
    store: &crate::store::Store,
    target: &TargetConfig,
    limit: usize,
) -> crate::store::Result<crate::store::Preview> {
    store.preview_target(&Targets(std::slice::from_ref(target)), limit)
}

/// A target ready to deliver to: its config, its adapter and its endpoint.
pub struct PreparedTarget {
    pub cfg: TargetConfig,
    pub target: Arc<dyn Target>,
    pub endpoint: Arc<Endpoint>,
}

/// Resolve credentials and build the targets; every problem reported with its config path.
pub fn prepare_targets(
    targets: &[&TargetConfig],
    limiters: &Limiters,
) -> Result<Vec<PreparedTarget>, Vec<String>> {
    let mut errors = Vec::new();
    let mut out = Vec::new();
    for cfg in targets {
        let key = format!("targets[{}]", cfg.index);
        let secret = match crate::config::resolve_credential(&key, &cfg.credential) {
            Ok(s) => s,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let policy = cfg.http.clone();
        let built = crate::targets::build(cfg, secret.clone()).and_then(|target| {
            let limiter = limiters.get(
                &format!("target:{}", cfg.name),
                policy.requests_per_second,
                policy.burst,
            );
            Ok(PreparedTarget {
                cfg: (*cfg).clone(),
                target: Arc::from(target),
                endpoint: Arc::new(Endpoint::new(
                    &cfg.name,
                    crate::metrics::Role::Target,
                    policy,
                    vec![secret],
                    limiter,
                )?),
            })
        });
        match built {
            Ok(p) => out.push(p),
            Err(e) => errors.push(format!("{key}: {e}")),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}
