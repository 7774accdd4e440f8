//! Rate limits a platform twin can enforce, per API key: a token bucket (most platforms) or a
//! fixed window announced in `X-RateLimit-*` headers (Everflow style), answered the ways real
//! platforms answer: 429 with `Retry-After` in seconds or as an HTTP-date, 429 without it,
//! `Retry-After: 0`, or 503 with `Retry-After`.

use std::time::{Duration, Instant};

/// How a twin answers a request over its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitAnswer {
    /// 429 with `Retry-After: N` (seconds).
    RetryAfterSeconds(u64),
    /// 429 with `Retry-After` as an HTTP-date N seconds ahead.
    RetryAfterDate(u64),
    /// 429 with `Retry-After: 0` (no usable hint).
    RetryAfterZero,
    /// 429 without `Retry-After`.
    NoRetryAfter,
    /// 503 with `Retry-After: N`.
    Unavailable(u64),
    /// The platform's in-body "too many requests" error at this HTTP status (Offerslook's
    /// "Too Many Request", Youmi's `c = -3302`), without `Retry-After`.
    InBody { status: u16 },
}

impl LimitAnswer {
    /// Status and `Retry-After` value of the refusal.
    pub fn status_and_header(self) -> (u16, Option<String>) {
        match self {
            LimitAnswer::RetryAfterSeconds(s) => (429, Some(s.to_string())),
            LimitAnswer::RetryAfterDate(s) => {
                let at = chrono::Utc::now() + chrono::Duration::seconds(s as i64);
                (
                    429,
                    Some(at.format("%a, %d %b %Y %H:%M:%S GMT").to_string()),
                )
            }
            LimitAnswer::RetryAfterZero => (429, Some("0".into())),
            LimitAnswer::NoRetryAfter => (429, None),
            LimitAnswer::Unavailable(s) => (503, Some(s.to_string())),
            LimitAnswer::InBody { status } => (status, None),
        }
    }
}

/// A rate limit with its answer and its counters.
#[derive(Debug, Clone)]
pub struct Limit {
    kind: LimitKind,
    pub answer: LimitAnswer,
    /// Requests refused so far.
    pub rejected: u64,
    /// Requests admitted so far.
    pub admitted: u64,
    /// Window limits: send `X-RateLimit-Reset` (Everflow sends only `Limit` and `Remaining`).
    announce_reset: bool,
}

#[derive(Debug, Clone)]
enum LimitKind {
    Bucket {
        rate: f64,
        capacity: f64,
        tokens: f64,
        at: Instant,
    },
    Window {
        limit: u64,
        window: Duration,
        used: u64,
        started: Instant,
    },
}

/// What the twin should add to or do with a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The request is over the limit: answer it with `Limit::answer`.
    pub refused: bool,
    /// `X-RateLimit-*` headers to send (window limits only).
    pub headers: Vec<(&'static str, String)>,
}

impl Limit {
    /// A token bucket of `rate` requests per second holding up to `capacity`, full at start.
    pub fn bucket(rate: f64, capacity: f64, answer: LimitAnswer) -> Limit {
        Limit {
            kind: LimitKind::Bucket {
                rate,
                capacity,
                tokens: capacity,
                at: Instant::now(),
            },
            answer,
            rejected: 0,
            admitted: 0,
            announce_reset: true,
        }
    }

    /// `limit` requests per fixed `window`, announced in `X-RateLimit-Limit/Remaining/Reset`.
    pub fn window(limit: u64, window: Duration, answer: LimitAnswer) -> Limit {
        Limit {
            kind: LimitKind::Window {
                limit,
                window,
                used: 0,
                started: Instant::now(),
            },
            answer,
            rejected: 0,
            admitted: 0,
            announce_reset: true,
        }
    }

    /// The same limit, announced without `X-RateLimit-Reset` (as Everflow does).
    pub fn without_reset(mut self) -> Limit {
        self.announce_reset = false;
        self
    }

    /// Admit or refuse one request now.
    pub fn check(&mut self) -> Verdict {
        let now = Instant::now();
        let (admit, headers) = match &mut self.kind {
            LimitKind::Bucket {
                rate,
                capacity,
                tokens,
                at,
            } => {
                *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * *rate).min(*capacity);
                *at = now;
                let admit = *tokens >= 1.0;
                if admit {
                    *tokens -= 1.0;
                }
                (admit, Vec::new())
            }
            LimitKind::Window {
                limit,
                window,
                used,
                started,
            } => {
                if now.duration_since(*started) >= *window {
                    *started = now;
                    *used = 0;
                }
                let admit = *used < *limit;
                if admit {
                    *used += 1;
                }
                let reset = window.saturating_sub(now.duration_since(*started));
                let mut headers = vec![
                    ("x-ratelimit-limit", limit.to_string()),
                    ("x-ratelimit-remaining", (*limit - *used).to_string()),
                ];
                if self.announce_reset {
                    headers.push(("x-ratelimit-reset", format!("{:.3}", reset.as_secs_f64())));
                }
                (admit, headers)
            }
        };
        if admit {
            self.admitted += 1;
            Verdict {
                refused: false,
                headers,
            }
        } else {
            self.rejected += 1;
            Verdict {
                refused: true,
                headers,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_answer_has_its_status_and_retry_after() {
        use LimitAnswer::*;
        assert_eq!(
            RetryAfterSeconds(3).status_and_header(),
            (429, Some("3".into()))
        );
        assert_eq!(RetryAfterZero.status_and_header(), (429, Some("0".into())));
        assert_eq!(NoRetryAfter.status_and_header(), (429, None));
        assert_eq!(Unavailable(2).status_and_header(), (503, Some("2".into())));
        assert_eq!(InBody { status: 200 }.status_and_header(), (200, None));
        let (status, date) = RetryAfterDate(30).status_and_header();
        let wait = crate::http::parse_retry_after(&date.unwrap(), chrono::Utc::now()).unwrap();
        assert_eq!(status, 429);
        assert!(
            (28..=30).contains(&wait.as_secs()),
            "an HTTP-date 30 s ahead: {wait:?}"
        );
    }

    #[test]
    fn a_bucket_admits_its_capacity_then_refuses() {
        let mut l = Limit::bucket(0.001, 2.0, LimitAnswer::NoRetryAfter);
        assert!(!l.check().refused && !l.check().refused);
        assert!(l.check().refused);
        assert_eq!((l.admitted, l.rejected), (2, 1));
    }
}
