//! The vocabulary of runs and history, one enum each with one `as_str`/`FromStr` pair, so the
//! store, the sync engine, the CLI and the metrics spell them the same way.

use std::fmt;
use std::str::FromStr;

/// Defines an enum of text-valued variants with `ALL`, `as_str`, `FromStr` and `Display`.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| {
                        let known: Vec<&str> = $name::ALL.iter().map(|v| v.as_str()).collect();
                        format!("{s:?} is not one of {}", known.join(", "))
                    })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use text_enum;

text_enum! {
    /// The state of a run of one source (`sync_runs.state`).
    RunState {
        Running => "running",
        Complete => "complete",
        Partial => "partial",
        Failed => "failed",
        Held => "held",
    }
}

text_enum! {
    /// Why a run ended as it did (`sync_runs.reason`), when it did not simply complete.
    StopReason {
        /// The process was asked to stop.
        Shutdown => "shutdown",
        /// `max_pages` pages without the end of the feed.
        PageCap => "page_cap",
        /// `run_timeout_seconds` passed.
        RunTimeout => "run_timeout",
        /// A page repeated the previous page's ids (a looping paginator).
        RepeatedPage => "repeated_page",
        /// More pages than the platform's total implies.
        BeyondTotal => "beyond_total",
        /// A page missing before the platform's own page count.
        Incomplete => "incomplete",
        /// The rate-limit budget was spent (the run is partial, never failed).
        RateLimited => "rate_limited",
        /// A transient failure outlasted the retry budget.
        Transient => "transient",
        /// The platform refused the request for good.
        Permanent => "permanent",
        /// A request's outcome is unknown.
        Ambiguous => "ambiguous",
        /// The database failed.
        Database => "database",
        /// The process running it died (closed by the lease's next holder).
        Interrupted => "interrupted",
        /// The source's credential cannot be resolved.
        Credentials => "credentials",
        /// Complete, but rejected offers without an id made removal detection unsafe.
        RemovalsSkipped => "removals_skipped",
        /// Complete, but the mass-removal guard held the removals.
        MassRemovalGuard => "mass_removal_guard",
        /// A held run whose removals `approve-removals` applied.
        RemovalsApproved => "removals_approved",
    }
}

text_enum! {
    /// What happened to an offer (`offer_changes.kind`).
    ChangeKind {
        Added => "added",
        Changed => "changed",
        Removed => "removed",
        Reappeared => "reappeared",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_round_trips_and_unknown_text_names_the_known_ones() {
        for s in RunState::ALL {
            assert_eq!(s.as_str().parse::<RunState>(), Ok(*s));
        }
        for s in StopReason::ALL {
            assert_eq!(s.as_str().parse::<StopReason>(), Ok(*s));
        }
        for s in ChangeKind::ALL {
            assert_eq!(s.to_string().parse::<ChangeKind>(), Ok(*s));
        }
        let e = "gone".parse::<ChangeKind>().unwrap_err();
        assert_eq!(
            e,
            "\"gone\" is not one of added, changed, removed, reappeared"
        );
    }
}
