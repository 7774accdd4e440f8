//! The retry loop: pacing before every attempt, classification of every failure, waits from
//! `Retry-After` or exponential backoff with jitter (the `backoff` crate, on a clock that
//! follows tokio's so paused-clock tests see exact waits), and the attempt/elapsed budget.
//! The only module that knows the `backoff` crate.

use super::classify::{Failure, FailureClass};
use super::pace::RateLimiter;
use super::{CallError, Counters};
use crate::config::HttpPolicy;
use backoff::backoff::Backoff;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::Instant;

/// `backoff`'s clock, reading tokio's time (which tests can pause and advance).
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioClock;

impl backoff::Clock for TokioClock {
    fn now(&self) -> std::time::Instant {
        Instant::now().into_std()
    }
}

fn backoff_for(policy: &HttpPolicy) -> backoff::exponential::ExponentialBackoff<TokioClock> {
    let mut b = backoff::exponential::ExponentialBackoff {
        initial_interval: policy.initial_interval,
        current_interval: policy.initial_interval,
        max_interval: policy.max_interval.max(policy.initial_interval),
        max_elapsed_time: Some(policy.max_elapsed),
        randomization_factor: 0.5,
        multiplier: 2.0,
        clock: TokioClock,
        start_time: Instant::now().into_std(),
    };
    b.reset();
    b
}

/// Who is retrying, for accounting and log lines.
pub struct RetryCtx<'a> {
    pub endpoint: &'a str,
    pub role: crate::metrics::Role,
    pub path: &'a str,
    pub policy: &'a HttpPolicy,
    pub limiter: &'a RateLimiter,
    pub counters: &'a Counters,
    /// Removes secrets from text that came back from the platform.
    pub scrub: &'a (dyn Fn(&str) -> String + Sync),
}

/// Run `attempt` until it succeeds, fails permanently, or the budget is spent. When the request
/// is not `idempotent` (a create), only failures the platform surely did not act on (a rate
/// limit, a connect error) are retried; any other ends the call as ambiguous.
pub async fn retry<T, F, Fut>(
    ctx: &RetryCtx<'_>,
    idempotent: bool,
    mut attempt: F,
) -> Result<T, CallError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let started = Instant::now();
    let mut backoff = backoff_for(ctx.policy);
    let mut n = 0u32;
    loop {
        n += 1;
        if let Some(e) = held_beyond_budget(ctx, started, n) {
            return Err(e);
        }
        ctx.limiter.acquire().await;
        ctx.counters.requests.fetch_add(1, Ordering::Relaxed);
        let failure = match attempt().await {
            Ok(v) => {
                ctx.limiter.on_success();
                return Ok(v);
            }
            Err(f) => f,
        };
        let message = (ctx.scrub)(&failure.message);
        let rate_limited = failure.class == FailureClass::RateLimited;
        if rate_limited {
            ctx.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
            ctx.limiter.on_rate_limited();
        }
        let wait = next_wait(
            ctx,
            &failure,
            &message,
            idempotent,
            n,
            started,
            &mut backoff,
        )?;
        ctx.counters.retries.fetch_add(1, Ordering::Relaxed);
        crate::metrics::retry(ctx.role, ctx.endpoint, rate_limited);
        tracing::warn!(
            endpoint = ctx.endpoint,
            path = ctx.path,
            attempt = n,
            status = failure.status.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
            class = failure.class.as_str(),
            wait_ms = wait.as_millis() as u64,
            error = %message,
            "request failed, retrying"
        );
        if rate_limited {
            // The whole limiter (the group) waits: the account is what is limited.
            ctx.limiter.hold(Instant::now() + wait);
        } else {
            tokio::time::sleep(wait).await;
        }
    }
}

/// A hold (Retry-After of the group, a spent X-RateLimit budget) that outlasts what is left of
/// the budget is not waited out: the call ends rate limited now. `n` is the attempt about to
/// be made.
fn held_beyond_budget(ctx: &RetryCtx<'_>, started: Instant, n: u32) -> Option<CallError> {
    let held = ctx.limiter.held_for()?;
    let left = ctx.policy.max_elapsed.saturating_sub(started.elapsed());
    (held > left).then(|| CallError {
        class: FailureClass::RateLimited,
        message: format!(
            "the platform's rate limit holds requests for {}s more, beyond the retry budget (retry_max_elapsed_seconds = {}); not waited",
            held.as_secs(),
            ctx.policy.max_elapsed.as_secs()
        ),
        attempts: n - 1,
        status: None,
        reason: None,
    })
}

/// How long to wait before attempt `n + 1` after `failure`, or why there is none: a permanent
/// or ambiguous failure, a request that may have taken effect and is not idempotent, the
/// attempts or the time budget spent.
fn next_wait(
    ctx: &RetryCtx<'_>,
    failure: &Failure,
    message: &str,
    idempotent: bool,
    n: u32,
    started: Instant,
    backoff: &mut impl Backoff,
) -> Result<Duration, CallError> {
    let give_up = |why: String| CallError {
        class: failure.class,
        message: format!("{message} ({why})"),
        attempts: n,
        status: failure.status,
        reason: failure.reason,
    };
    if matches!(
        failure.class,
        FailureClass::Permanent | FailureClass::Ambiguous
    ) {
        return Err(give_up("not retried".into()));
    }
    if !idempotent && !failure.not_applied() {
        return Err(CallError {
            class: FailureClass::Ambiguous,
            message: format!(
                "{message} (the request may have taken effect; not sent again blindly)"
            ),
            attempts: n,
            status: failure.status,
            reason: failure.reason,
        });
    }
    if n >= ctx.policy.max_attempts {
        return Err(give_up(format!("gave up after {n} attempts")));
    }
    let wait = match failure.retry_after {
        Some(hint) if hint > ctx.policy.max_retry_after => {
            tracing::warn!(
                endpoint = ctx.endpoint,
                retry_after_s = hint.as_secs(),
                max_retry_after_s = ctx.policy.max_retry_after.as_secs(),
                "Retry-After above max_retry_after_seconds; waiting the maximum instead"
            );
            ctx.policy.max_retry_after
        }
        Some(hint) => hint,
        // No usable hint (absent, 0, negative, past): back off, never retry at once.
        None => match backoff.next_backoff() {
            Some(d) => d.max(Duration::from_millis(1)),
            None => {
                return Err(give_up(format!(
                    "retry budget of {}s exhausted",
                    ctx.policy.max_elapsed.as_secs()
                )))
            }
        },
    };
    if started.elapsed() + wait > ctx.policy.max_elapsed {
        return Err(give_up(format!(
            "retry budget of {}s exhausted",
            ctx.policy.max_elapsed.as_secs()
        )));
    }
    Ok(wait)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn policy() -> HttpPolicy {
        HttpPolicy {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_attempts: 5,
            initial_interval: Duration::from_millis(500),
            max_interval: Duration::from_secs(60),
            max_elapsed: Duration::from_secs(300),
            max_retry_after: Duration::from_secs(120),
            requests_per_second: 1000.0,
            burst: 1,
            run_timeout: None,
        }
    }

    fn failure(class: FailureClass, retry_after: Option<u64>) -> Failure {
        Failure {
            class,
            message: "nope".into(),
            retry_after: retry_after.map(Duration::from_secs),
            status: Some(429),
            before_send: false,
            reason: None,
        }
    }

    /// Run `script` (one failure per attempt, then success) and return the attempt times.
    async fn run(
        policy: HttpPolicy,
        script: Vec<Failure>,
    ) -> (Result<u32, CallError>, Vec<Duration>, Counters) {
        run_as(policy, script, true).await
    }

    async fn run_as(
        policy: HttpPolicy,
        script: Vec<Failure>,
        idempotent: bool,
    ) -> (Result<u32, CallError>, Vec<Duration>, Counters) {
        let limiter = RateLimiter::new(policy.requests_per_second, policy.burst);
        let counters = Counters::default();
        let times = Mutex::new(Vec::new());
        let t0 = Instant::now();
        let script = Mutex::new(script.into_iter());
        let scrub = |s: &str| s.to_string();
        let ctx = RetryCtx {
            endpoint: "test",
            role: crate::metrics::Role::Source,
            path: "/x",
            policy: &policy,
            limiter: &limiter,
            counters: &counters,
            scrub: &scrub,
        };
        let result = retry(&ctx, idempotent, || {
            times.lock().unwrap().push(t0.elapsed());
            let next = script.lock().unwrap().next();
            async move {
                match next {
                    Some(f) => Err(f),
                    None => Ok(7),
                }
            }
        })
        .await;
        let times = times.into_inner().unwrap();
        (result, times, counters)
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_honoured_exactly() {
        let (r, times, c) = run(policy(), vec![failure(FailureClass::RateLimited, Some(7))]).await;
        assert_eq!(r.unwrap(), 7);
        assert_eq!(times[1] - times[0], Duration::from_secs(7));
        assert_eq!(c.snapshot(), (2, 1, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn no_hint_backs_off_exponentially_never_in_a_burst() {
        let script = (0..4)
            .map(|_| failure(FailureClass::RateLimited, None))
            .collect();
        let (r, times, _) = run(policy(), script).await;
        assert_eq!(r.unwrap(), 7);
        let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
        // 500 ms, 1 s, 2 s, 4 s, each with ±50% jitter.
        for (i, g) in gaps.iter().enumerate() {
            let base = 500.0 * 2f64.powi(i as i32);
            let ms = g.as_millis() as f64;
            assert!(
                ms >= base * 0.5 - 1.0 && ms <= base * 1.5 + 1.0,
                "gap {i}: {ms} ms"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn long_retry_after_is_clamped() {
        let (_, times, _) = run(
            policy(),
            vec![failure(FailureClass::RateLimited, Some(3600))],
        )
        .await;
        assert_eq!(times[1] - times[0], Duration::from_secs(120));
    }

    #[tokio::test(start_paused = true)]
    async fn a_create_is_retried_only_when_the_platform_surely_did_not_act() {
        // A 5xx or a timeout after sending: the create may have gone through.
        let (r, times, _) = run_as(
            policy(),
            vec![failure(FailureClass::Transient, None)],
            false,
        )
        .await;
        let e = r.unwrap_err();
        assert_eq!((e.class, times.len()), (FailureClass::Ambiguous, 1));
        assert!(
            e.message.contains("not sent again blindly"),
            "{}",
            e.message
        );
        // A 429 and a connect error: nothing was carried out, so it is sent again.
        let mut refused = failure(FailureClass::Transient, None);
        refused.before_send = true;
        let script = vec![failure(FailureClass::RateLimited, Some(1)), refused];
        let (r, times, _) = run_as(policy(), script, false).await;
        assert_eq!((r.unwrap(), times.len()), (7, 3));
        // An ambiguous answer (a success without an id) is never retried, idempotent or not.
        let (r, times, _) = run(policy(), vec![failure(FailureClass::Ambiguous, None)]).await;
        assert_eq!(
            (r.unwrap_err().class, times.len()),
            (FailureClass::Ambiguous, 1)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_hold_beyond_the_budget_ends_the_call_at_once() {
        let mut p = policy();
        p.max_elapsed = Duration::from_secs(10);
        let limiter = RateLimiter::new(p.requests_per_second, p.burst);
        limiter.hold(Instant::now() + Duration::from_secs(60));
        let counters = Counters::default();
        let scrub = |s: &str| s.to_string();
        let ctx = RetryCtx {
            endpoint: "test",
            role: crate::metrics::Role::Source,
            path: "/x",
            policy: &p,
            limiter: &limiter,
            counters: &counters,
            scrub: &scrub,
        };
        let t0 = Instant::now();
        let r = retry(&ctx, true, || async { Ok::<_, Failure>(1) }).await;
        let e = r.unwrap_err();
        assert_eq!(e.class, FailureClass::RateLimited);
        assert!(
            e.message.contains("beyond the retry budget"),
            "{}",
            e.message
        );
        assert_eq!(t0.elapsed(), Duration::ZERO, "not waited");
        assert_eq!(counters.snapshot().0, 0, "nothing sent");
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_failures_are_not_retried() {
        let (r, times, c) = run(policy(), vec![failure(FailureClass::Permanent, None)]).await;
        let e = r.unwrap_err();
        assert_eq!(
            (e.class, e.attempts, times.len()),
            (FailureClass::Permanent, 1, 1)
        );
        assert!(e.message.contains("not retried"));
        assert_eq!(c.snapshot(), (1, 0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_and_elapsed_budgets_end_the_call() {
        let mut p = policy();
        p.max_attempts = 3;
        let script = (0..10)
            .map(|_| failure(FailureClass::Transient, None))
            .collect();
        let (r, times, c) = run(p, script).await;
        assert!(r.unwrap_err().message.contains("gave up after 3 attempts"));
        assert_eq!((times.len(), c.snapshot()), (3, (3, 2, 0)));

        let mut p = policy();
        p.max_elapsed = Duration::from_secs(10);
        let script = (0..10)
            .map(|_| failure(FailureClass::RateLimited, Some(4)))
            .collect();
        let (r, times, _) = run(p, script).await;
        let e = r.unwrap_err();
        assert_eq!(e.class, FailureClass::RateLimited);
        assert!(
            e.message.contains("retry budget of 10s exhausted"),
            "{}",
            e.message
        );
        assert_eq!(
            times.len(),
            3,
            "0 s, 4 s, 8 s; a wait to 12 s would pass the budget"
        );
    }
}
