//! Secret redaction. Every blob the store writes passes through [`redact`]
//! first, because objects under `refs/cortex/*` may be pushed, and pushed
//! objects cannot be recalled.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::bytes::Regex;

pub const REDACTED: &str = "[REDACTED]";

/// Patterns for credentials that are recognisable by their shape alone.
/// Group 1, when present, is a prefix kept in place (the header name).
static PATTERNS: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    [
        // PEM private keys, also when newlines are JSON-escaped as `\n`.
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?s:.*?)-----END [A-Z0-9 ]*PRIVATE KEY-----",
        // `Authorization: Bearer <token>` in any case; keep the header.
        r"(?i)(authorization:\s*bearer\s+)[A-Za-z0-9._~+/=-]+",
        // OpenAI-style keys: sk-..., sk-proj-...
        r"\bsk-[A-Za-z0-9_-]{20,}",
        // GitHub tokens: classic and fine-grained.
        r"\bgh[pousr]_[A-Za-z0-9]{30,}",
        r"\bgithub_pat_[A-Za-z0-9_]{22,}",
        // AWS access key ids.
        r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
    ]
    .into_iter()
    .map(|pattern| Regex::new(pattern).expect("holds because the patterns are fixed and tested"))
    .collect()
});

/// Returns `bytes` with every recognised secret replaced by `[REDACTED]`,
/// borrowing when there was nothing to replace.
pub fn redact(bytes: &[u8]) -> Cow<'_, [u8]> {
    let mut text = Cow::Borrowed(bytes);
    for pattern in PATTERNS.iter() {
        if pattern.is_match(&text) {
            let replaced = pattern.replace_all(&text, |caps: &regex::bytes::Captures<'_>| {
                let mut out = caps.get(1).map(|m| m.as_bytes().to_vec()).unwrap_or_default();
                out.extend_from_slice(REDACTED.as_bytes());
                out
            });
            text = Cow::Owned(replaced.into_owned());
        }
    }
    text
}

pub fn redact_str(text: &str) -> Cow<'_, str> {
    match redact(text.as_bytes()) {
        Cow::Borrowed(_) => Cow::Borrowed(text),
        Cow::Owned(bytes) => {
            Cow::Owned(String::from_utf8(bytes).expect("holds because only ASCII was replaced in UTF-8 text"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact_str;

    fn check(input: &str, expect: &str) {
        assert_eq!(redact_str(input), expect);
    }

    #[test]
    fn known_secret_shapes_are_replaced() {
        check("key sk-proj-abcdefghijklmnopqrstuvwxyz0123 end", "key [REDACTED] end");
        check("token=ghp_abcdefghijklmnopqrstuvwxyz0123456789", "token=[REDACTED]");
        check("github_pat_11ABCDEFG0123456789_abcdefghijklmnop", "[REDACTED]");
        check("aws AKIAIOSFODNN7EXAMPLE.", "aws [REDACTED].");
        check("Authorization: Bearer eyJhbGciOi.payload.sig", "Authorization: Bearer [REDACTED]");
        check("authorization:bearer abc123", "authorization:bearer [REDACTED]");
        check("a\n-----BEGIN RSA PRIVATE KEY-----\nMIIE\nabc\n-----END RSA PRIVATE KEY-----\nb", "a\n[REDACTED]\nb");
        check(
            r#"{"text":"-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----"}"#,
            r#"{"text":"[REDACTED]"}"#,
        );
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        check("ask-me about the sk- prefix", "ask-me about the sk- prefix");
        check("Bearer of good news", "Bearer of good news");
        check("AKIA is a prefix", "AKIA is a prefix");
    }
}
