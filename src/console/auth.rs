//! The console's security state: logins (the token compared in constant time), sessions (a
//! random id in an HttpOnly, SameSite=Strict cookie, held in memory with a sliding expiry; a
//! restart logs everyone out), the CSRF token bound to each session, and the failed-login limit.
//!
//! Failed logins are limited per client address: after [`FREE_FAILURES`] failures in a row, each
//! further attempt must wait twice as long as the previous one (1 s, 2 s, 4 s, ... at most
//! [`MAX_LOCK`]); a success clears the address. Across all addresses, at most
//! [`GLOBAL_FAILURES_PER_MINUTE`] failures a minute are examined, so spreading a guess over
//! many addresses is no faster. Attempts over either limit are answered 429 without looking at
//! the token.

use crate::config::Secret;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const SESSION_COOKIE: &str = "offersync_session";
/// The pre-login cookie the login form's CSRF field must match.
pub const LOGIN_COOKIE: &str = "offersync_login";
pub const FREE_FAILURES: u32 = 5;
pub const MAX_LOCK: Duration = Duration::from_secs(300);
pub const GLOBAL_FAILURES_PER_MINUTE: usize = 30;
/// Client addresses whose failures are remembered before the unlocked ones are forgotten (the
/// global limit admits at most 30 new ones a minute).
const MAX_TRACKED_ADDRESSES: usize = 10_000;
/// Sessions kept at most; the one closest to expiry goes first.
const MAX_SESSIONS: usize = 1000;

/// 32 random bytes from the kernel, as hex.
pub fn random_token() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("the kernel's random source /dev/urandom is readable");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Equality that takes the same time wherever the strings differ (their length aside).
pub fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut diff = (a.len() != b.len()) as u8;
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

#[derive(Debug, Clone)]
struct Session {
    csrf: String,
    expires: Instant,
}

#[derive(Debug, Default, Clone, Copy)]
struct Failures {
    in_a_row: u32,
    locked_until: Option<Instant>,
}

/// Why a login was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum LoginError {
    /// Over the failure limit: try again after this long.
    Limited(Duration),
    /// The token is wrong.
    Wrong,
}

pub struct Auth {
    token: Secret,
    ttl: Duration,
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<IpAddr, Failures>>,
    recent_failures: Mutex<Vec<Instant>>,
}

impl Auth {
    pub fn new(token: Secret, ttl: Duration) -> Auth {
        Auth {
            token,
            ttl,
            sessions: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            recent_failures: Mutex::new(Vec::new()),
        }
    }

    /// The CSRF token of a live session (its expiry slides), or `None`.
    pub fn session(&self, id: &str) -> Option<String> {
        let mut sessions = self.sessions.lock().unwrap();
        let now = Instant::now();
        let s = sessions.get_mut(id)?;
        if s.expires <= now {
            sessions.remove(id);
            return None;
        }
        s.expires = now + self.ttl;
        Some(s.csrf.clone())
    }

    pub fn logout(&self, id: &str) {
        self.sessions.lock().unwrap().remove(id);
    }

    pub fn token(&self) -> &Secret {
        &self.token
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Check `token` for a client at `ip`: a new session id on success.
    pub fn login(&self, ip: IpAddr, token: &str) -> Result<String, LoginError> {
        let now = Instant::now();
        {
            let failures = self.failures.lock().unwrap();
            if let Some(until) = failures.get(&ip).and_then(|f| f.locked_until) {
                if until > now {
                    return Err(LoginError::Limited(until - now));
                }
            }
            let mut recent = self.recent_failures.lock().unwrap();
            recent.retain(|t| now.duration_since(*t) < Duration::from_secs(60));
            if recent.len() >= GLOBAL_FAILURES_PER_MINUTE {
                let wait = Duration::from_secs(60) - now.duration_since(recent[0]);
                return Err(LoginError::Limited(wait));
            }
        }
        if !same(token.trim(), self.token.expose()) {
            self.recent_failures.lock().unwrap().push(now);
            let mut failures = self.failures.lock().unwrap();
            if failures.len() >= MAX_TRACKED_ADDRESSES {
                // Addresses whose lock has run out start again from zero.
                failures.retain(|_, f| f.locked_until.is_some_and(|t| t > now));
            }
            let f = failures.entry(ip).or_default();
            f.in_a_row += 1;
            if f.in_a_row >= FREE_FAILURES {
                let wait =
                    Duration::from_secs(1 << (f.in_a_row - FREE_FAILURES).min(9)).min(MAX_LOCK);
                f.locked_until = Some(now + wait);
            }
            return Err(LoginError::Wrong);
        }
        self.failures.lock().unwrap().remove(&ip);
        let id = random_token();
        let mut sessions = self.sessions.lock().unwrap();
        sessions.retain(|_, s| s.expires > now);
        if sessions.len() >= MAX_SESSIONS {
            if let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
            {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(
            id.clone(),
            Session {
                csrf: random_token(),
                expires: now + self.ttl,
            },
        );
        Ok(id)
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_in_full_and_logins_back_off() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd") && !same("abc", "abcd") && !same("", "a"));
        let auth = Auth::new(Secret::new("0123456789abcdef"), Duration::from_secs(60));
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..FREE_FAILURES {
            assert_eq!(auth.login(ip, "nope"), Err(LoginError::Wrong));
        }
        // Locked now, even with the right token.
        assert!(matches!(
            auth.login(ip, "0123456789abcdef"),
            Err(LoginError::Limited(_))
        ));
        // Another address is not.
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let id = auth.login(other, "0123456789abcdef").unwrap();
        assert_eq!(id.len(), 64);
        let csrf = auth.session(&id).unwrap();
        assert_ne!(csrf, id);
        auth.logout(&id);
        assert!(auth.session(&id).is_none());
        assert_eq!(
            cookie("a=1; offersync_session=xyz", SESSION_COOKIE),
            Some("xyz")
        );
    }

    /// The failures of many addresses are not kept forever: past the bound, only addresses
    /// still locked are remembered.
    #[test]
    fn failures_of_unlocked_addresses_are_forgotten_past_the_bound() {
        let auth = Auth::new(Secret::new("0123456789abcdef"), Duration::from_secs(60));
        {
            let mut f = auth.failures.lock().unwrap();
            for i in 0..MAX_TRACKED_ADDRESSES as u32 {
                f.insert(
                    IpAddr::from(i.to_be_bytes()),
                    Failures {
                        in_a_row: 1,
                        locked_until: None,
                    },
                );
            }
            let locked = Failures {
                in_a_row: 9,
                locked_until: Some(Instant::now() + MAX_LOCK),
            };
            f.insert("10.9.9.9".parse().unwrap(), locked);
        }
        assert_eq!(
            auth.login("10.1.1.1".parse().unwrap(), "nope"),
            Err(LoginError::Wrong)
        );
        let f = auth.failures.lock().unwrap();
        assert_eq!(f.len(), 2, "the locked address and the new failure");
        assert!(f.contains_key(&"10.9.9.9".parse::<IpAddr>().unwrap()));
    }
}
