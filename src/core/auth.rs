//! Credentials on HTTP requests, read one way everywhere: the bearer token
//! (the scheme in any case, as RFC 9110 says), compared in constant time,
//! and the Host a request names, which must be one this Core answers to
//! (a page fetched through a rebound DNS name is refused).

use std::net::SocketAddr;

use axum::http::{HeaderMap, header};
use sha2::{Digest, Sha256};

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(char::is_whitespace)?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|token| !token.is_empty())
}

/// Whether `presented` is `expected`, in time that does not depend on where
/// they differ (both are hashed first, so their lengths do not show either).
pub fn tokens_match(presented: &str, expected: &str) -> bool {
    let (a, b) = (Sha256::digest(presented.as_bytes()), Sha256::digest(expected.as_bytes()));
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether `host` (a Host header) may name this Core. A Core on loopback
/// (the default) answers only to loopback names and addresses, on any port
/// (a local proxy may forward to it): a page whose DNS name was rebound to
/// 127.0.0.1 names the attacker's host, and is refused. A Core bound
/// beyond loopback answers to any name (it says so when it starts).
pub fn host_allowed(bind: SocketAddr, host: &str) -> bool {
    if !bind.ip().is_loopback() {
        return true;
    }
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) && !name.is_empty() => name,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_read_in_any_case() {
        let mut headers = HeaderMap::new();
        for (value, expect) in [
            ("Bearer abc", Some("abc")),
            ("bearer abc", Some("abc")),
            ("BEARER  abc ", Some("abc")),
            ("Basic abc", None),
            ("Bearer", None),
            ("Bearerabc", None),
        ] {
            headers.insert(header::AUTHORIZATION, value.parse().unwrap());
            assert_eq!(bearer(&headers), expect, "{value}");
        }
    }

    #[test]
    fn tokens_match_only_themselves() {
        assert!(tokens_match("cat_secret", "cat_secret"));
        assert!(!tokens_match("cat_secreT", "cat_secret"));
        assert!(!tokens_match("", "cat_secret"));
    }

    #[test]
    fn only_this_cores_names_are_hosts() {
        let loopback: SocketAddr = "127.0.0.1:7777".parse().unwrap();
        for (host, expect) in [
            ("127.0.0.1:7777", true),
            ("localhost:7777", true),
            ("[::1]:7777", true),
            ("127.0.0.1:8888", true),
            ("127.0.0.1", true),
            ("evil.example:7777", false),
            ("localhost.evil.example:7777", false),
            ("127.0.0.1.nip.io:7777", false),
            ("", false),
        ] {
            assert_eq!(host_allowed(loopback, host), expect, "{host}");
        }
        let exposed: SocketAddr = "0.0.0.0:7777".parse().unwrap();
        assert!(host_allowed(exposed, "devbox.lan:7777"));
    }
}
