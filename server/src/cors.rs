//! Cross-origin access to the API for pages the operator allows (`--cors-origins`).
//!
//! The API authenticates with bearer tokens that the page's own code attaches; browsers send
//! no cookie or other ambient credential to it. So CORS here does not protect the API from
//! forged requests: it decides which sites' pages may call it from a browser at all (the npm
//! package in an integrator's own agent console, for example). No origin is allowed by default;
//! the relay's own pages (`--web-root`) are same-origin and need none.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

/// Which page origins may call the API from a browser.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AllowedOrigins {
    /// None: only same-origin pages (the default).
    #[default]
    None,
    /// Any origin (`*`).
    Any,
    /// These exact origins (`https://support.example.com`), compared byte for byte.
    List(Vec<String>),
}

impl AllowedOrigins {
    /// Parses `--cors-origins`: empty for none, `*` for any, or a comma-separated list of
    /// origins (scheme, host and optional port; no path).
    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(AllowedOrigins::None);
        }
        if value == "*" {
            return Ok(AllowedOrigins::Any);
        }
        let mut origins = Vec::new();
        for origin in value.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            let rest = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"))
                .ok_or_else(|| format!("CORS origin {origin:?} is not http(s)://host[:port]"))?;
            if rest.is_empty() || rest.contains(['/', '?', '#', '*', ' ']) {
                return Err(format!(
                    "CORS origin {origin:?} is not http(s)://host[:port]"
                ));
            }
            origins.push(origin.to_ascii_lowercase());
        }
        Ok(AllowedOrigins::List(origins))
    }

    /// The `Access-Control-Allow-Origin` value for a request from `origin`, if it is allowed.
    fn allow(&self, origin: &HeaderValue) -> Option<HeaderValue> {
        match self {
            AllowedOrigins::None => None,
            AllowedOrigins::Any => Some(HeaderValue::from_static("*")),
            AllowedOrigins::List(list) => {
                let origin_str = origin.to_str().ok()?;
                list.iter()
                    .any(|o| o.eq_ignore_ascii_case(origin_str))
                    .then(|| origin.clone())
            }
        }
    }
}

/// How long a browser may cache a preflight answer, seconds.
const PREFLIGHT_MAX_AGE: &str = "600";

/// Answers preflight requests for the API and marks allowed origins' responses readable.
pub async fn cors(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let allowed = req
        .headers()
        .get(header::ORIGIN)
        .filter(|_| req.uri().path().starts_with("/v1/"))
        .and_then(|origin| state.settings.cors_origins.allow(origin));
    let Some(allow_origin) = allowed else {
        return next.run(req).await;
    };
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        common_headers(headers, allow_origin);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, PUT, DELETE"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type"),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static(PREFLIGHT_MAX_AGE),
        );
        return response;
    }
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    common_headers(headers, allow_origin);
    // The client waits as long as a 429 or 503 asks.
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("retry-after"),
    );
    response
}

fn common_headers(headers: &mut HeaderMap, allow_origin: HeaderValue) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
    // Answers differ by origin, so caches must keep them apart.
    headers.append(header::VARY, HeaderValue::from_static("origin"));
}

#[cfg(test)]
mod tests {
    use super::AllowedOrigins;

    #[test]
    fn origins_parse_strictly() {
        assert_eq!(AllowedOrigins::parse("").unwrap(), AllowedOrigins::None);
        assert_eq!(AllowedOrigins::parse(" * ").unwrap(), AllowedOrigins::Any);
        assert_eq!(
            AllowedOrigins::parse("https://Support.example.com, http://127.0.0.1:8081").unwrap(),
            AllowedOrigins::List(vec![
                "https://support.example.com".into(),
                "http://127.0.0.1:8081".into()
            ])
        );
        for bad in [
            "support.example.com",
            "https://",
            "https://example.com/",
            "https://*.example.com",
            "ftp://example.com",
        ] {
            assert!(AllowedOrigins::parse(bad).is_err(), "{bad}");
        }
    }
}
