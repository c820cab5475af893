//! Cross-origin access (`--cors-origins`): only the configured page origins may call the API
//! from a browser, preflights are answered for them, a rate-limited answer stays readable, and
//! without the option no origin is allowed.

mod common;

use common::*;
use sotto_relay::cors::AllowedOrigins;

const PAGE: &str = "http://127.0.0.1:8081";

async fn preflight(relay: &TestRelay, origin: &str, path: &str) -> reqwest::Response {
    relay
        .http
        .request(reqwest::Method::OPTIONS, format!("{}{path}", relay.base))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap()
}

async fn post_from(relay: &TestRelay, origin: &str, path: &str) -> reqwest::Response {
    relay
        .http
        .post(format!("{}{path}", relay.base))
        .header("origin", origin)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap()
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn only_configured_origins_may_call_the_api_from_a_browser() {
    let origins = AllowedOrigins::parse(PAGE).unwrap();
    let relay = TestRelay::start_sqlite(|a| a.cors_origins = origins).await;

    let answer = preflight(&relay, PAGE, "/v1/auth/challenge").await;
    assert_eq!(answer.status(), 204);
    assert_eq!(header(&answer, "access-control-allow-origin"), Some(PAGE));
    assert!(
        header(&answer, "access-control-allow-methods")
            .unwrap()
            .contains("POST")
    );
    let allowed_headers = header(&answer, "access-control-allow-headers").unwrap();
    assert!(allowed_headers.contains("authorization") && allowed_headers.contains("content-type"));
    assert_eq!(header(&answer, "access-control-max-age"), Some("600"));
    assert_eq!(header(&answer, "vary"), Some("origin"));

    // The request itself (refused for its empty body) is readable by the page, Retry-After too.
    let answer = post_from(&relay, PAGE, "/v1/auth/challenge").await;
    assert!(answer.status().is_client_error());
    assert_eq!(header(&answer, "access-control-allow-origin"), Some(PAGE));
    assert_eq!(
        header(&answer, "access-control-expose-headers"),
        Some("retry-after")
    );

    // Another site gets no permission: no preflight answer, nothing readable.
    let evil = "https://evil.example";
    let answer = preflight(&relay, evil, "/v1/auth/challenge").await;
    assert_ne!(answer.status(), 204);
    assert_eq!(header(&answer, "access-control-allow-origin"), None);
    let answer = post_from(&relay, evil, "/v1/auth/challenge").await;
    assert_eq!(header(&answer, "access-control-allow-origin"), None);
    // Nor does anything outside the API.
    let answer = relay
        .http
        .get(format!("{}/health", relay.base))
        .header("origin", PAGE)
        .send()
        .await
        .unwrap();
    assert_eq!(header(&answer, "access-control-allow-origin"), None);
}

#[tokio::test]
async fn no_origin_is_allowed_by_default_and_any_when_asked() {
    let relay = TestRelay::start_sqlite(|_| {}).await;
    assert_ne!(preflight(&relay, PAGE, "/v1/devices").await.status(), 204);
    let answer = post_from(&relay, PAGE, "/v1/devices").await;
    assert_eq!(header(&answer, "access-control-allow-origin"), None);

    let relay = TestRelay::start_sqlite(|a| a.cors_origins = AllowedOrigins::Any).await;
    let answer = preflight(&relay, "https://anywhere.example", "/v1/devices").await;
    assert_eq!(answer.status(), 204);
    assert_eq!(header(&answer, "access-control-allow-origin"), Some("*"));
}

#[tokio::test]
async fn a_rate_limited_answer_stays_readable_with_its_retry_after() {
    let origins = AllowedOrigins::parse(PAGE).unwrap();
    let relay = TestRelay::start_sqlite(|a| {
        a.cors_origins = origins;
        a.rate_per_address = 0.5;
        a.burst_per_address = 1;
    })
    .await;
    let mut limited = None;
    for _ in 0..5 {
        let answer = post_from(&relay, PAGE, "/v1/auth/challenge").await;
        if answer.status() == 429 {
            limited = Some(answer);
            break;
        }
    }
    let answer = limited.expect("the second request within the burst is limited");
    assert_eq!(header(&answer, "access-control-allow-origin"), Some(PAGE));
    assert!(header(&answer, "retry-after").is_some());
    assert_eq!(
        header(&answer, "access-control-expose-headers"),
        Some("retry-after")
    );
}
