//! Progress bars for `offersync --once` on a terminal: one per source with pages done (of the
//! total when the platform says), offers, retries and rate-limit waits. Off a terminal the
//! plain log lines and the summary table say the same.

use crate::sync::{PageProgress, ProgressSink, RunReport};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::sync::Mutex;

pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Bars {
    pub fn new() -> Bars {
        let multi = MultiProgress::new();
        crate::telemetry::set_progress_bars(multi.clone());
        Bars {
            multi,
            bars: Mutex::new(HashMap::new()),
        }
    }

    fn bar(&self, source: &str) -> ProgressBar {
        let mut bars = self.bars.lock().unwrap();
        bars.entry(source.to_string())
            .or_insert_with(|| {
                let pb = self.multi.add(ProgressBar::new(1));
                pb.set_style(
                    ProgressStyle::with_template(
                        "{prefix:>18} [{bar:30}] {pos}/{len} pages  {msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                pb.set_prefix(source.to_string());
                pb
            })
            .clone()
    }
}

impl Default for Bars {
    fn default() -> Bars {
        Bars::new()
    }
}

impl ProgressSink for Bars {
    fn page(&self, source: &str, p: PageProgress) {
        let pb = self.bar(source);
        pb.set_length(p.expected_pages.unwrap_or(p.pages).max(p.pages));
        pb.set_position(p.pages);
        pb.set_message(format!(
            "{} offers, {} retries, {} rate-limit waits",
            p.offers, p.retries, p.rate_limited
        ));
    }

    fn finished(&self, source: &str, report: &RunReport) {
        let pb = self.bar(source);
        let (state, complete) = match report {
            RunReport::Finished(t) => (
                t.state.as_str().to_string(),
                t.state == crate::store::RunState::Complete,
            ),
            RunReport::Skipped { .. } => ("skipped".into(), true),
            RunReport::Error { .. } => ("error".into(), false),
        };
        let msg = pb.message();
        if complete {
            pb.finish_with_message(format!("{msg}  [{state}]"));
        } else {
            // Where it stopped, not a full bar.
            pb.abandon_with_message(format!("{msg}  [{}]", state.to_uppercase()));
        }
    }
}
