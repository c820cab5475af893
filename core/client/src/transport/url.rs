//! The relay URL and the policy on which URLs a client may use.

use core::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Why a relay URL was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UrlError {
    /// Not of the form `scheme://host[:port][/path]`.
    Malformed,
    /// A scheme other than `https` (or `http` on loopback).
    UnsupportedScheme,
    /// `http` to a host that is not a loopback address: tokens and metadata would travel in
    /// clear. Use `https`.
    InsecureScheme,
    /// No host, or a host that is not a DNS name or an IP address.
    InvalidHost,
    /// A port that is not a number from 1 to 65535.
    InvalidPort,
    /// User information (`user:password@`) in the URL.
    UserInfo,
    /// A query or fragment in the base URL.
    QueryOrFragment,
}

impl UrlError {
    /// A stable identifier for this error.
    pub fn code(self) -> &'static str {
        match self {
            UrlError::Malformed => "url_malformed",
            UrlError::UnsupportedScheme => "url_unsupported_scheme",
            UrlError::InsecureScheme => "url_insecure_scheme",
            UrlError::InvalidHost => "url_invalid_host",
            UrlError::InvalidPort => "url_invalid_port",
            UrlError::UserInfo => "url_user_info",
            UrlError::QueryOrFragment => "url_query_or_fragment",
        }
    }
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UrlError::Malformed => "the relay URL is not of the form scheme://host[:port][/path]",
            UrlError::UnsupportedScheme => "the relay URL must use https (http only on loopback)",
            UrlError::InsecureScheme => {
                "http is allowed only for loopback addresses (localhost, 127.0.0.0/8, ::1); use https"
            }
            UrlError::InvalidHost => "the relay URL has no valid host",
            UrlError::InvalidPort => "the relay URL has an invalid port",
            UrlError::UserInfo => "the relay URL must not contain user information",
            UrlError::QueryOrFragment => "the relay URL must not contain a query or fragment",
        })
    }
}

impl core::error::Error for UrlError {}

/// A relay's base URL that passed the policy: `https`, or `http` on a loopback host.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RelayUrl {
    secure: bool,
    /// `host[:port]`, host lowercased, IPv6 in brackets.
    authority: String,
    /// Empty, or a path prefix starting with `/` and without a trailing `/`.
    path: String,
}

impl RelayUrl {
    /// Checks `url` against the policy (see the [module docs](super)).
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        if url.is_empty() || url.bytes().any(|b| !b.is_ascii_graphic()) {
            return Err(UrlError::Malformed);
        }
        let (scheme, rest) = url.split_once("://").ok_or(UrlError::Malformed)?;
        let secure = match scheme.to_ascii_lowercase().as_str() {
            "https" => true,
            "http" => false,
            _ => return Err(UrlError::UnsupportedScheme),
        };
        if rest.contains(['?', '#']) {
            return Err(UrlError::QueryOrFragment);
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(UrlError::UserInfo);
        }
        let (host, port) = split_host_port(authority)?;
        let host = host.to_ascii_lowercase();
        let loopback = check_host(&host)?;
        if !secure && !loopback {
            return Err(UrlError::InsecureScheme);
        }
        let authority = match port {
            Some(p) => format!("{host}:{p}"),
            None => host,
        };
        let path = path.trim_end_matches('/').to_owned();
        if path.contains("//") {
            return Err(UrlError::Malformed);
        }
        Ok(RelayUrl {
            secure,
            authority,
            path,
        })
    }

    /// Whether the URL uses TLS (false only for loopback development relays).
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// `scheme://host[:port]`: the origin a device signs when it authenticates.
    pub fn origin(&self) -> String {
        let scheme = if self.secure { "https" } else { "http" };
        format!("{scheme}://{}", self.authority)
    }

    /// The HTTP URL of an API path (`path_and_query` starts with `/`).
    pub fn http_url(&self, path_and_query: &str) -> String {
        format!("{}{}{}", self.origin(), self.path, path_and_query)
    }

    /// The WebSocket URL of the push stream: `wss://` (or `ws://` on loopback) and `/v1/ws`.
    pub fn push_url(&self) -> String {
        let scheme = if self.secure { "wss" } else { "ws" };
        format!("{scheme}://{}{}/v1/ws", self.authority, self.path)
    }
}

impl fmt::Display for RelayUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.origin(), self.path)
    }
}

impl fmt::Debug for RelayUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RelayUrl({self})")
    }
}

impl core::str::FromStr for RelayUrl {
    type Err = UrlError;

    fn from_str(s: &str) -> Result<Self, UrlError> {
        RelayUrl::parse(s)
    }
}

fn split_host_port(authority: &str) -> Result<(&str, Option<u16>), UrlError> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let end = rest.find(']').ok_or(UrlError::InvalidHost)?;
        let (inner, after) = rest.split_at(end);
        let after = after.get(1..).unwrap_or("");
        let host = authority.get(..end + 2).ok_or(UrlError::InvalidHost)?;
        if inner.parse::<Ipv6Addr>().is_err() {
            return Err(UrlError::InvalidHost);
        }
        match after {
            "" => (host, None),
            p => (
                host,
                Some(p.strip_prefix(':').ok_or(UrlError::InvalidHost)?),
            ),
        }
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(UrlError::InvalidPort);
            }
            match p.parse::<u16>() {
                Ok(0) | Err(_) => return Err(UrlError::InvalidPort),
                Ok(n) => Some(n),
            }
        }
    };
    Ok((host, port))
}

/// Validates a lowercased host and says whether it is a loopback address.
fn check_host(host: &str) -> Result<bool, UrlError> {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        let ip: Ipv6Addr = inner.parse().map_err(|_| UrlError::InvalidHost)?;
        return Ok(ip.is_loopback());
    }
    if host.is_empty() || host.len() > 253 {
        return Err(UrlError::InvalidHost);
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        // All digits and dots: it must be a dotted IPv4 address, not a DNS name.
        let ip: Ipv4Addr = host.parse().map_err(|_| UrlError::InvalidHost)?;
        return Ok(ip.is_loopback());
    }
    let labels_ok = host.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    if !labels_ok {
        return Err(UrlError::InvalidHost);
    }
    Ok(host == "localhost")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_anywhere_and_http_only_on_loopback() {
        let u = RelayUrl::parse("https://Relay.Example.com/").unwrap();
        assert_eq!(u.origin(), "https://relay.example.com");
        assert_eq!(
            u.http_url("/v1/devices"),
            "https://relay.example.com/v1/devices"
        );
        assert_eq!(u.push_url(), "wss://relay.example.com/v1/ws");
        assert!(u.is_secure());

        for ok in [
            "http://localhost:8080",
            "http://LOCALHOST",
            "http://127.0.0.1:3000",
            "http://127.255.1.9",
            "http://[::1]:9000",
        ] {
            let u = RelayUrl::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert!(!u.is_secure());
            assert!(u.push_url().starts_with("ws://"), "{ok}");
        }
        assert_eq!(
            RelayUrl::parse("http://[::1]:9000").unwrap().origin(),
            "http://[::1]:9000"
        );

        for insecure in [
            "http://relay.example.com",
            "http://10.0.0.1",
            "http://128.0.0.1",
            "http://[::2]",
            "http://localhost.evil.com",
            "http://0.0.0.0",
        ] {
            assert_eq!(
                RelayUrl::parse(insecure),
                Err(UrlError::InsecureScheme),
                "{insecure}"
            );
        }
    }

    #[test]
    fn malformed_urls_are_typed_errors() {
        let cases = [
            ("", UrlError::Malformed),
            ("relay.example.com", UrlError::Malformed),
            ("https://relay example.com", UrlError::Malformed),
            ("ftp://relay.example.com", UrlError::UnsupportedScheme),
            ("ws://localhost", UrlError::UnsupportedScheme),
            ("wss://relay.example.com", UrlError::UnsupportedScheme),
            ("https://", UrlError::InvalidHost),
            ("https://:443", UrlError::InvalidHost),
            ("https://exa_mple.com", UrlError::InvalidHost),
            ("https://-a.com", UrlError::InvalidHost),
            ("https://[::1", UrlError::InvalidHost),
            ("https://[zz]", UrlError::InvalidHost),
            ("https://999.1.1.1", UrlError::InvalidHost),
            ("https://a.com:0", UrlError::InvalidPort),
            ("https://a.com:65536", UrlError::InvalidPort),
            ("https://a.com:", UrlError::InvalidPort),
            ("https://a.com:8x", UrlError::InvalidPort),
            ("https://user:pw@a.com", UrlError::UserInfo),
            ("https://a.com/?x=1", UrlError::QueryOrFragment),
            ("https://a.com#f", UrlError::QueryOrFragment),
        ];
        for (url, expected) in cases {
            assert_eq!(RelayUrl::parse(url), Err(expected), "{url:?}");
        }
    }

    #[test]
    fn a_path_prefix_is_kept() {
        let u = RelayUrl::parse("https://example.com/sotto/").unwrap();
        assert_eq!(u.http_url("/v1/ws"), "https://example.com/sotto/v1/ws");
        assert_eq!(u.push_url(), "wss://example.com/sotto/v1/ws");
        assert_eq!(u.origin(), "https://example.com");
        assert_eq!(u.to_string(), "https://example.com/sotto");
    }

    #[test]
    fn codes_are_distinct() {
        let all = [
            UrlError::Malformed,
            UrlError::UnsupportedScheme,
            UrlError::InsecureScheme,
            UrlError::InvalidHost,
            UrlError::InvalidPort,
            UrlError::UserInfo,
            UrlError::QueryOrFragment,
        ];
        let mut codes: Vec<_> = all.iter().map(|e| e.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
    }
}
