//! Token-bucket rate limits, per client address and per authenticated device, in memory.
//!
//! A bucket holds up to `burst` tokens and refills at `rate` tokens per second; each request
//! takes one. An empty bucket answers 429 with `Retry-After` set to the seconds until a token is
//! back. Buckets live in memory on each node (a client hitting several nodes gets each node's
//! allowance); idle, full buckets are dropped by [`RateLimiter::prune`] so memory stays bounded by
//! the number of recently active clients.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// A set of token buckets keyed by `K`.
#[derive(Debug)]
pub struct RateLimiter<K> {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Eq + Hash + Clone> RateLimiter<K> {
    /// `rate` tokens per second up to `burst`; a rate of 0 (or less) disables the limit.
    pub fn new(rate: f64, burst: u32) -> Self {
        RateLimiter {
            rate,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `key` at `now`; `Err(seconds)` to wait when the bucket is empty.
    pub fn check_at(&self, key: &K, now: Instant) -> Result<(), u64> {
        if self.rate <= 0.0 || !self.rate.is_finite() {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = ((1.0 - bucket.tokens) / self.rate).ceil();
            Err(if wait.is_finite() && wait >= 1.0 {
                wait as u64
            } else {
                1
            })
        }
    }

    /// [`RateLimiter::check_at`] now.
    pub fn check(&self, key: &K) -> Result<(), u64> {
        self.check_at(key, Instant::now())
    }

    /// Drops buckets that have refilled completely: they behave exactly like absent ones.
    pub fn prune(&self) {
        let now = Instant::now();
        let (rate, burst) = (self.rate, self.burst);
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        buckets.retain(|_, b| {
            let elapsed = now.saturating_duration_since(b.updated).as_secs_f64();
            b.tokens + elapsed * rate < burst
        });
    }

    /// How many buckets are held.
    pub fn len(&self) -> usize {
        self.buckets.lock().map(|b| b.len()).unwrap_or(0)
    }

    /// Whether no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The client address of a request: the peer, or with `--trust-forwarded-for` the last entry of
/// `X-Forwarded-For` (the address the trusted proxy saw).
pub fn client_address(req: &Request, trust_forwarded_for: bool) -> Option<IpAddr> {
    address_of(req.headers(), req.extensions(), trust_forwarded_for)
}

fn address_of(
    headers: &HeaderMap,
    extensions: &Extensions,
    trust_forwarded_for: bool,
) -> Option<IpAddr> {
    if trust_forwarded_for
        && let Some(ip) = headers
            .get_all("x-forwarded-for")
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse::<IpAddr>().ok())
    {
        return Some(ip);
    }
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// The client address as an extractor (see [`client_address`]); the unspecified address when
/// the relay cannot tell (an embedding without connection info).
pub struct ClientAddress(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientAddress(
            address_of(
                &parts.headers,
                &parts.extensions,
                state.settings.trust_forwarded_for,
            )
            .unwrap_or(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)),
        ))
    }
}

/// Middleware applying the per-address limit to every request.
pub async fn per_address(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(ip) = client_address(&req, state.settings.trust_forwarded_for)
        && let Err(wait) = state.address_limits.check(&ip)
    {
        return ApiError::rate_limited(wait).into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn bucket_allows_burst_then_refills() {
        let l = RateLimiter::new(2.0, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.check_at(&"a", t0).is_ok());
        }
        assert_eq!(l.check_at(&"a", t0), Err(1));
        assert!(l.check_at(&"b", t0).is_ok(), "keys are independent");
        assert!(l.check_at(&"a", t0 + Duration::from_millis(500)).is_ok());
        assert!(l.check_at(&"a", t0 + Duration::from_millis(500)).is_err());
    }

    #[test]
    fn zero_rate_disables_and_prune_forgets_full_buckets() {
        let off = RateLimiter::new(0.0, 1);
        for _ in 0..10 {
            assert!(off.check(&1).is_ok());
        }
        let l = RateLimiter::new(1000.0, 1);
        l.check(&1).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        l.prune();
        assert!(l.is_empty());
    }
}
