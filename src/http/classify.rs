//! What a failed attempt means, decided in one place: HTTP statuses, transport errors and the
//! in-body phrases platforms use. Platform files map their own error codes onto these classes
//! and otherwise defer to the defaults here.

use reqwest::StatusCode;
use std::time::Duration;

/// What a failed attempt means for the retry loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// The platform asked us to slow down (429, 503 + Retry-After, an in-body "too many requests").
    RateLimited,
    /// Worth retrying: connect errors, timeouts, 5xx, 408, a body cut short or not JSON.
    Transient,
    /// Retrying cannot help: bad credentials, forbidden, not found, bad request, conflict.
    Permanent,
    /// A request that changes the platform (a create) may or may not have taken effect: the
    /// connection broke after it was sent, it timed out, the answer was a 5xx or a success
    /// without the new id. Never retried blindly; the caller reconciles (see `push::deliver`).
    Ambiguous,
}

impl FailureClass {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::RateLimited => "rate_limited",
            FailureClass::Transient => "transient",
            FailureClass::Permanent => "permanent",
            FailureClass::Ambiguous => "ambiguous",
        }
    }

    /// The default meaning of an HTTP status that is not a success.
    pub fn of_status(status: StatusCode, retry_after: Option<Duration>) -> FailureClass {
        match status.as_u16() {
            429 => FailureClass::RateLimited,
            503 if retry_after.is_some() => FailureClass::RateLimited,
            408 | 500..=599 => FailureClass::Transient,
            _ => FailureClass::Permanent,
        }
    }

    /// The meaning of an error message a platform put in a response body (often with HTTP 200),
    /// from the phrases platforms use; `None` when the text says nothing recognisable.
    pub fn of_message(text: &str) -> Option<FailureClass> {
        let t = text.to_ascii_lowercase();
        const RATE: &[&str] = &[
            "too many request",
            "rate limit",
            "ratelimit",
            "exceed qps",
            "qps limit",
            "throttl",
            "request limit",
        ];
        const PERMANENT: &[&str] = &[
            "invalid api key",
            "api key invalid",
            "invalid_api_key",
            "unauthorized",
            "not whitelisted",
            "whitelist",
            "account is locked",
            "account locked",
            "account is suspended",
            "unapproved",
            "not approved",
            "not verified",
            "forbidden",
            "no permission",
            "invalid api domain",
        ];
        if RATE.iter().any(|p| t.contains(p)) {
            Some(FailureClass::RateLimited)
        } else if PERMANENT.iter().any(|p| t.contains(p)) {
            Some(FailureClass::Permanent)
        } else {
            None
        }
    }
}

/// One failed attempt, as the platform file (or the transport) explains it.
#[derive(Debug, Clone)]
pub struct Failure {
    pub class: FailureClass,
    pub message: String,
    pub retry_after: Option<Duration>,
    /// The HTTP status, when there was a response.
    pub status: Option<u16>,
    /// The request never reached the platform (a connect error): safe to send again even when
    /// it is not idempotent.
    pub before_send: bool,
    /// Why a run that stops on this failure stops, when it is more specific than the class
    /// (`incomplete` for a page missing before the platform's own total).
    pub reason: Option<crate::model::StopReason>,
}

impl Failure {
    pub fn new(class: FailureClass, message: impl Into<String>) -> Failure {
        Failure {
            class,
            message: message.into(),
            retry_after: None,
            status: None,
            before_send: false,
            reason: None,
        }
    }

    /// The outcome of a request that changes the platform is unknown (see [`FailureClass::Ambiguous`]).
    pub fn ambiguous(message: impl Into<String>) -> Failure {
        Failure::new(FailureClass::Ambiguous, message)
    }

    /// The same failure, with a more specific stop reason for the run.
    pub fn with_reason(mut self, reason: crate::model::StopReason) -> Failure {
        self.reason = Some(reason);
        self
    }

    /// Whether the platform surely did not act on the request: it refused it for the rate
    /// limit, or it never received it.
    pub fn not_applied(&self) -> bool {
        self.before_send || self.class == FailureClass::RateLimited
    }

    pub fn transient(message: impl Into<String>) -> Failure {
        Failure::new(FailureClass::Transient, message)
    }

    pub fn permanent(message: impl Into<String>) -> Failure {
        Failure::new(FailureClass::Permanent, message)
    }

    /// A failure for a non-success response: class from the status, `Retry-After` honoured.
    pub fn from_response(resp: &super::HttpResponse, message: impl Into<String>) -> Failure {
        let retry_after = resp.retry_after();
        Failure {
            class: FailureClass::of_status(resp.status, retry_after),
            message: message.into(),
            retry_after,
            status: Some(resp.status.as_u16()),
            before_send: false,
            reason: None,
        }
    }

    /// An error the platform reported inside a response body: classified by `class` when the
    /// platform file knows its code, else by the message's wording, else as `fallback`.
    pub fn in_body(
        resp: &super::HttpResponse,
        class: Option<FailureClass>,
        fallback: FailureClass,
        message: impl Into<String>,
    ) -> Failure {
        let message = message.into();
        let status_class = (!resp.status.is_success())
            .then(|| FailureClass::of_status(resp.status, resp.retry_after()));
        let class = class
            .or_else(|| FailureClass::of_message(&message))
            .or(status_class)
            .unwrap_or(fallback);
        Failure {
            class,
            message,
            retry_after: resp.retry_after(),
            status: Some(resp.status.as_u16()),
            before_send: false,
            reason: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        let c = |s: u16, ra: Option<u64>| {
            FailureClass::of_status(
                StatusCode::from_u16(s).unwrap(),
                ra.map(Duration::from_secs),
            )
        };
        assert_eq!(c(429, None), FailureClass::RateLimited);
        assert_eq!(c(503, Some(3)), FailureClass::RateLimited);
        assert_eq!(c(503, None), FailureClass::Transient);
        for s in [408, 500, 502, 504] {
            assert_eq!(c(s, None), FailureClass::Transient, "{s}");
        }
        for s in [400, 401, 403, 404, 405, 409, 422] {
            assert_eq!(c(s, None), FailureClass::Permanent, "{s}");
        }
    }

    #[test]
    fn in_body_phrases() {
        use FailureClass::*;
        let cases = [
            ("Too Many Request", Some(RateLimited)),
            ("too many requests, slow down", Some(RateLimited)),
            ("exceed qps limit", Some(RateLimited)),
            ("Rate limit exceeded", Some(RateLimited)),
            ("Invalid API Key", Some(Permanent)),
            ("Request IP Not Whitelisted", Some(Permanent)),
            ("Account is locked", Some(Permanent)),
            ("application unapproved", Some(Permanent)),
            ("System upgrade", None),
            ("Server Internal Error", None),
        ];
        for (text, class) in cases {
            assert_eq!(FailureClass::of_message(text), class, "{text}");
        }
    }
}
