//! Secrets (API keys, passwords) live only inside [`Secret`]: it never prints, and helpers scrub
//! its value out of any text that came back from a platform before that text is logged or stored.

use std::borrow::Cow;
use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for building an Authorization header or a signed request. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of this secret replaced by `***`.
    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if self.0.len() >= 4 && text.contains(&self.0) {
            Cow::Owned(text.replace(&self.0, "***"))
        } else {
            Cow::Borrowed(text)
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_formats_and_scrubs() {
        let s = Secret::new("trk_abcdef");
        assert_eq!(format!("{s} {s:?}"), "*** Secret(***)");
        assert_eq!(s.scrub("bad key trk_abcdef!"), "bad key ***!");
    }
}
