//! Turning configured sources into runnable ones: credentials resolved, adapters built, each
//! paced by its limiter.

use crate::config::SourceConfig;
use crate::http::{Endpoint, Limiters};
use crate::sources::Source;
use std::sync::Arc;

/// A source ready to run: its config, its adapter and its endpoint.
pub struct Prepared {
    pub cfg: SourceConfig,
    pub source: Arc<dyn Source>,
    pub endpoint: Arc<Endpoint>,
}

/// The limiter key of a source: its `rate_limit_group`, or the source itself.
pub fn limiter_key(cfg: &SourceConfig) -> String {
    match &cfg.rate_limit_group {
        Some(g) => format!("group:{g}"),
        None => format!("source:{}", cfg.name),
    }
}

/// Resolve credentials and build adapters for `sources`, pacing each with its limiter from
/// `limiters` (shared within a `rate_limit_group`). Every problem is reported, keyed by its
/// config path, before anything runs.
pub fn prepare(
    sources: &[&SourceConfig],
    limiters: &Limiters,
) -> Result<Vec<Prepared>, Vec<String>> {
    let mut errors = Vec::new();
    let mut out = Vec::new();
    for cfg in sources {
        let key = format!("sources[{}]", cfg.index);
        let secret = match crate::config::resolve_credential(&key, &cfg.credential) {
            Ok(s) => s,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let built = crate::sources::build(cfg, secret.clone()).and_then(|source| {
            let limiter = limiters.get(
                &limiter_key(cfg),
                cfg.http.requests_per_second,
                cfg.http.burst,
            );
            let endpoint = Endpoint::new(
                &cfg.name,
                crate::metrics::Role::Source,
                cfg.http.clone(),
                vec![secret],
                limiter,
            )?;
            Ok(Prepared {
                cfg: (*cfg).clone(),
                source: Arc::from(source),
                endpoint: Arc::new(endpoint),
            })
        });
        match built {
            Ok(p) => out.push(p),
            Err(e) => errors.push(format!("{key} ({}): {e}", cfg.name)),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}
