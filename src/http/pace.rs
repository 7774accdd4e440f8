//! Pacing: an adaptive limiter per source/target (or per `rate_limit_group`, shared).
//!
//! Requests are spaced `1 / rate` apart (a GCRA schedule allowing `burst` back to back). The
//! rate adapts so a sync converges on the platform's real limit:
//! - after a rate-limited answer the rate drops: to half on the first one, then to just above
//!   the rate actually accepted since the previous one (waits included; never below half at
//!   once), and the whole group holds until the platform's `Retry-After` (or the backoff) has
//!   passed;
//! - after about a second's worth of successes it rises by 2% of the ceiling (or 10% of the
//!   current rate, if smaller: additive increase), never above the configured
//!   `requests_per_second`;
//! - `X-RateLimit-Remaining` / `-Reset` spread the remaining budget until the reset, and hold
//!   when it is spent, so the limit is respected before a 429.
//!
//! `governor` was considered: its quotas are fixed at construction, and this needs a rate that
//! changes at run time, so the schedule is kept here (about a hundred lines).

use reqwest::header::HeaderMap;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Lowest rate the limiter falls to: one request per 100 s.
const FLOOR: f64 = 0.01;

#[derive(Debug)]
struct State {
    rate: f64,
    ceiling: f64,
    /// The GCRA theoretical arrival time (TAT) of the next request.
    next: Instant,
    hold_until: Option<Instant>,
    successes_since_raise: u64,
    last_limited: Option<Instant>,
    successes_since_limited: u64,
}

#[derive(Debug)]
pub struct RateLimiter {
    burst: u32,
    state: Mutex<State>,
}

/// What the limiter currently does, for logs, metrics and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PaceSnapshot {
    pub rate: f64,
    pub ceiling: f64,
}

impl RateLimiter {
    pub fn new(requests_per_second: f64, burst: u32) -> RateLimiter {
        let ceiling = requests_per_second.max(FLOOR);
        RateLimiter {
            burst: burst.max(1),
            state: Mutex::new(State {
                rate: ceiling,
                ceiling,
                next: Instant::now(),
                hold_until: None,
                successes_since_raise: 0,
                last_limited: None,
                successes_since_limited: 0,
            }),
        }
    }

    pub fn snapshot(&self) -> PaceSnapshot {
        let s = self.state.lock().unwrap();
        PaceSnapshot {
            rate: s.rate,
            ceiling: s.ceiling,
        }
    }

    /// Lower the ceiling (a group takes the lowest `requests_per_second` of its members).
    pub fn cap_ceiling(&self, requests_per_second: f64) {
        let mut s = self.state.lock().unwrap();
        s.ceiling = s.ceiling.min(requests_per_second.max(FLOOR));
        s.rate = s.rate.min(s.ceiling);
    }

    /// Wait for this request's slot.
    pub async fn acquire(&self) {
        let slot = {
            let mut s = self.state.lock().unwrap();
            let now = Instant::now();
            let interval = Duration::from_secs_f64(1.0 / s.rate);
            // GCRA: a request may go up to `burst - 1` intervals ahead of its theoretical time.
            let tolerance = interval * (self.burst - 1);
            let mut slot = s.next.checked_sub(tolerance).unwrap_or(now).max(now);
            if let Some(h) = s.hold_until {
                if h > slot {
                    slot = h;
                } else if h <= now {
                    s.hold_until = None;
                }
            }
            s.next = s.next.max(slot) + interval;
            slot
        };
        // A deadline already reached still costs a timer-wheel tick (~1 ms) in tokio: skip it.
        if slot > Instant::now() {
            tokio::time::sleep_until(slot).await;
        }
    }

    /// Every request of this limiter waits until `until` (a Retry-After or a spent budget).
    pub fn hold(&self, until: Instant) {
        let mut s = self.state.lock().unwrap();
        s.hold_until = Some(s.hold_until.map_or(until, |h| h.max(until)));
    }

    /// A successful answer: additive increase after about a second's worth of them.
    pub fn on_success(&self) {
        let mut s = self.state.lock().unwrap();
        s.successes_since_limited += 1;
        s.successes_since_raise += 1;
        if s.rate < s.ceiling && s.successes_since_raise as f64 >= s.rate.max(1.0) {
            s.successes_since_raise = 0;
            let step = (s.ceiling * 0.02).min(s.rate * 0.1);
            s.rate = (s.rate + step).min(s.ceiling);
        }
    }

    /// A rate-limited answer: multiplicative decrease toward the accepted rate.
    pub fn on_rate_limited(&self) {
        let mut s = self.state.lock().unwrap();
        let now = Instant::now();
        let accepted = s.last_limited.and_then(|t| {
            let secs = now.duration_since(t).as_secs_f64();
            (secs > 0.0 && s.successes_since_limited > 0)
                .then(|| s.successes_since_limited as f64 / secs)
        });
        let old = s.rate;
        // Never more than halve at once: the accepted rate underestimates a platform whose
        // Retry-After is longer than its bucket takes to refill.
        s.rate = match accepted {
            Some(acc) => (old * 0.9).min(acc * 1.05).max(old * 0.5),
            None => old * 0.5,
        }
        .clamp(FLOOR.min(s.ceiling), s.ceiling);
        s.last_limited = Some(now);
        s.successes_since_limited = 0;
        s.successes_since_raise = 0;
        // Restart the schedule at the new rate.
        s.next = s.next.max(now);
        tracing::debug!(
            old_rate = old,
            new_rate = s.rate,
            "pace lowered after a rate-limited answer"
        );
    }

    /// How much longer every request of this limiter is held (a Retry-After of the group, a
    /// spent `X-RateLimit` budget), if it is.
    pub fn held_for(&self) -> Option<Duration> {
        let s = self.state.lock().unwrap();
        let now = Instant::now();
        s.hold_until.filter(|h| *h > now).map(|h| h - now)
    }

    /// Respect `X-RateLimit-Remaining` / `X-RateLimit-Reset` before they turn into a 429. A
    /// spent budget holds every request until the reset, but never longer than `max_hold`;
    /// the hold set, if any, is returned so that the caller logs and counts it.
    pub fn on_headers(&self, headers: &HeaderMap, max_hold: Duration) -> Option<Hold> {
        let hint = RateLimitHeaders::parse(headers, chrono::Utc::now())?;
        let now = Instant::now();
        let mut s = self.state.lock().unwrap();
        match (hint.remaining, hint.reset) {
            (0, Some(reset)) => {
                let waited = reset.min(max_hold);
                let until = now + waited;
                s.hold_until = Some(s.hold_until.map_or(until, |h| h.max(until)));
                return Some(Hold { waited, reset });
            }
            (0, None) => s.rate = (s.rate * 0.5).max(FLOOR.min(s.ceiling)),
            (remaining, Some(reset)) => {
                // Spread what is left of the budget evenly until the reset.
                let spacing = reset / u32::try_from(remaining).unwrap_or(u32::MAX).max(1);
                s.next = s.next.max(now + spacing.min(Duration::from_secs(3600)));
            }
            (remaining, None) => {
                if let Some(limit) = hint.limit.filter(|l| *l > 0) {
                    if remaining.saturating_mul(10) < limit {
                        s.rate = (s.rate * 0.9).max(FLOOR.min(s.ceiling));
                    }
                }
            }
        }
        None
    }
}

/// A hold set by a spent `X-RateLimit` budget: how long requests wait, and how far away the
/// platform said the reset was (longer when the wait was capped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold {
    pub waited: Duration,
    pub reset: Duration,
}

/// The `X-RateLimit-*` headers of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitHeaders {
    pub limit: Option<u64>,
    pub remaining: u64,
    /// Time until the window resets (from delta seconds or a unix timestamp).
    pub reset: Option<Duration>,
}

impl RateLimitHeaders {
    pub fn parse(
        headers: &HeaderMap,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Option<RateLimitHeaders> {
        let num = |name: &str| -> Option<f64> {
            headers
                .get(name)?
                .to_str()
                .ok()?
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
        };
        let remaining = num("x-ratelimit-remaining")? as u64;
        let reset = num("x-ratelimit-reset").and_then(|v| {
            // Large values are unix timestamps, small ones delta seconds.
            let secs = if v > 1_000_000_000.0 {
                v - now.timestamp() as f64
            } else {
                v
            };
            (secs > 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0 * 366.0)))
        });
        Some(RateLimitHeaders {
            limit: num("x-ratelimit-limit").map(|v| v as u64),
            remaining,
            reset,
        })
    }
}

/// The limiters of one process: one per source or target, or one per `rate_limit_group`
/// shared by its members. Kept for the life of the process so the learnt pace survives runs.
#[derive(Debug, Default, Clone)]
pub struct Limiters {
    map: Arc<Mutex<HashMap<String, Arc<RateLimiter>>>>,
}

impl Limiters {
    pub fn new() -> Limiters {
        Limiters::default()
    }

    /// The limiter for `key` (a group or an endpoint name); a group's ceiling is the lowest
    /// `requests_per_second` among its members.
    pub fn get(&self, key: &str, requests_per_second: f64, burst: u32) -> Arc<RateLimiter> {
        let mut map = self.map.lock().unwrap();
        match map.get(key) {
            Some(l) => {
                l.cap_ceiling(requests_per_second);
                l.clone()
            }
            None => {
                let l = Arc::new(RateLimiter::new(requests_per_second, burst));
                map.insert(key.to_string(), l.clone());
                l
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[tokio::test(start_paused = true)]
    async fn requests_are_spaced_by_the_rate_with_a_burst() {
        let l = RateLimiter::new(10.0, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            l.acquire().await;
        }
        assert_eq!(t0.elapsed(), Duration::ZERO, "the burst goes at once");
        l.acquire().await;
        l.acquire().await;
        let e = t0.elapsed();
        assert!(
            e >= Duration::from_millis(100) && e <= Duration::from_millis(300),
            "{e:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_limit_halves_then_converges_on_the_accepted_rate() {
        let l = RateLimiter::new(200.0, 1);
        l.on_rate_limited();
        assert_eq!(l.snapshot().rate, 100.0);
        // 100 successes over 2 s: the platform accepts 50/s.
        for _ in 0..100 {
            l.on_success();
        }
        tokio::time::advance(Duration::from_secs(2)).await;
        l.on_rate_limited();
        let r = l.snapshot().rate;
        assert!((52.0..=53.0).contains(&r), "{r}");
    }

    #[tokio::test(start_paused = true)]
    async fn successes_raise_the_rate_gradually_up_to_the_ceiling() {
        let l = RateLimiter::new(100.0, 1);
        l.on_rate_limited();
        let mut last = l.snapshot().rate;
        assert_eq!(last, 50.0);
        for _ in 0..10_000 {
            l.on_success();
            let r = l.snapshot().rate;
            assert!(
                r - last <= 2.0 + 1e-9,
                "additive steps of 2% of the ceiling"
            );
            last = r;
        }
        assert_eq!(last, 100.0, "never above the ceiling");
    }

    #[tokio::test(start_paused = true)]
    async fn holds_delay_every_request_of_the_limiter() {
        let l = RateLimiter::new(1000.0, 1);
        let t0 = Instant::now();
        l.hold(t0 + Duration::from_secs(3));
        l.acquire().await;
        assert_eq!(t0.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limit_headers_slow_the_pace_before_a_429() {
        let l = RateLimiter::new(1000.0, 1);
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        h.insert("x-ratelimit-reset", HeaderValue::from_static("5"));
        let t0 = Instant::now();
        l.on_headers(&h, Duration::from_secs(300));
        l.acquire().await;
        assert_eq!(
            t0.elapsed(),
            Duration::from_secs(5),
            "budget spent: wait for the reset"
        );
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("4"));
        h.insert("x-ratelimit-reset", HeaderValue::from_static("2"));
        l.on_headers(&h, Duration::from_secs(300));
        let t1 = Instant::now();
        l.acquire().await;
        assert_eq!(
            t1.elapsed(),
            Duration::from_millis(500),
            "4 left for 2 s: one every 0.5 s"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_far_reset_holds_no_longer_than_the_cap() {
        let l = RateLimiter::new(1000.0, 1);
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        let in_a_year = (chrono::Utc::now().timestamp() + 365 * 86_400).to_string();
        h.insert(
            "x-ratelimit-reset",
            HeaderValue::from_str(&in_a_year).unwrap(),
        );
        let hold = l.on_headers(&h, Duration::from_secs(7)).unwrap();
        assert_eq!(hold.waited, Duration::from_secs(7));
        assert!(hold.reset > Duration::from_secs(364 * 86_400), "{hold:?}");
        let t0 = Instant::now();
        l.acquire().await;
        assert_eq!(t0.elapsed(), Duration::from_secs(7));
        h.insert(
            "x-ratelimit-remaining",
            HeaderValue::from_static("18446744073709551615"),
        );
        assert_eq!(
            l.on_headers(&h, Duration::from_secs(7)),
            None,
            "no overflow"
        );
    }

    #[test]
    fn rate_limit_headers_parse_deltas_and_timestamps() {
        let now = chrono::Utc::now();
        let mut h = HeaderMap::new();
        assert_eq!(RateLimitHeaders::parse(&h, now), None);
        h.insert("x-ratelimit-limit", HeaderValue::from_static("600"));
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("12"));
        let at = (now.timestamp() + 30).to_string();
        h.insert("x-ratelimit-reset", HeaderValue::from_str(&at).unwrap());
        let p = RateLimitHeaders::parse(&h, now).unwrap();
        assert_eq!((p.limit, p.remaining), (Some(600), 12));
        let reset = p.reset.unwrap().as_secs_f64();
        assert!((29.0..=30.5).contains(&reset), "{reset}");
    }

    #[test]
    fn groups_share_one_limiter_with_the_lowest_ceiling() {
        let ls = Limiters::new();
        let a = ls.get("group:acme", 10.0, 1);
        let b = ls.get("group:acme", 4.0, 1);
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.snapshot().ceiling, 4.0);
        let c = ls.get("source:other", 10.0, 1);
        assert!(!Arc::ptr_eq(&a, &c));
    }
}
