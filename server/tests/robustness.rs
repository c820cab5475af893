//! Bad input never gives a 5xx and every error has the documented JSON shape; rate limits answer
//! 429 with Retry-After; the OpenAPI document describes every route the relay serves.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sotto_core::conversation::MessageKind;
use sotto_core::device::DeviceKind;
use sotto_core::team::Change;
use sotto_core::wire::WireObject;

fn document() -> Value {
    serde_json::from_str(sotto_relay::openapi::DOCUMENT).expect("the OpenAPI document parses")
}

/// Every (method, path template) in the document.
fn operations() -> Vec<(Method, String)> {
    let doc = document();
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            ops.push((
                Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                path.clone(),
            ));
        }
    }
    ops
}

/// Sends raw bytes and checks the answer: never 5xx, and every error is the JSON error shape.
async fn check(
    http: &reqwest::Client,
    method: Method,
    url: &str,
    token: Option<&str>,
    body: Option<Vec<u8>>,
) -> StatusCode {
    let mut req = http.request(method.clone(), url);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = resp.text().await.unwrap();
    assert!(status.as_u16() < 500, "{method} {url}: {status} {text}");
    if status.is_client_error() {
        assert_eq!(content_type, "application/json", "{method} {url}: {status}");
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{method} {url}: error is not JSON: {text}"));
        let e = v["error"].as_object().expect("error object");
        assert!(e["code"].is_string() && e["message"].is_string(), "{v}");
        assert_eq!(e.len(), 2, "{v}");
        assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
    }
    status
}

#[tokio::test]
async fn garbage_input_on_every_route_gives_json_4xx_never_5xx() {
    let relay = TestRelay::start().await;
    let w = World::new(&relay, "acme").await;
    let token = w.team.owner.token.clone().unwrap();
    let http = http_client();
    let conv = w.conversation.hex();
    let team = w.team.team_hex();
    let agent_id = w.agent.id_hex();

    let long = "a".repeat(5000);
    let path_values: Vec<(&str, String)> = vec![
        ("real", String::new()),
        ("bad hex", "zz".into()),
        ("unknown", "0".repeat(32)),
        ("unknown32", "0".repeat(64)),
        ("escaped", "%FF%FE%00".into()),
        ("long", long),
    ];
    let bodies: Vec<Option<Vec<u8>>> = vec![
        None,
        Some(Vec::new()),
        Some(b"not json".to_vec()),
        Some(b"{".to_vec()),
        Some(b"null".to_vec()),
        Some(b"[]".to_vec()),
        Some(b"{}".to_vec()),
        Some(b"{\"unknown\":1}".to_vec()),
        Some(vec![0xff, 0xfe, 0x00]),
        Some(format!("{}{}", "[".repeat(5000), "]".repeat(5000)).into_bytes()),
        Some(br#"{"link":"!!","record":"!!","message":"!!","attestation":"!!","widget_id":"!!","device_id":"!!","challenge":"!!","signature":"!!","data":"!!","kind":"backup","cursor":-1}"#.to_vec()),
        Some(format!(r#"{{"link":"{g}"}}"#, g = b64(b"garbage")).into_bytes()),
        Some(format!(r#"{{"record":"{g}"}}"#, g = b64(&[1, 1, 7, 0, 0])).into_bytes()),
        Some(format!(r#"{{"message":"{g}"}}"#, g = b64(&[1, 1, 8, 9, 9, 9])).into_bytes()),
        Some(format!(r#"{{"attestation":"{g}"}}"#, g = b64(&[1, 1, 6])).into_bytes()),
        Some(br#"{"widget_id":"00","record":"AAAA","bootstrap_code":"zz"}"#.to_vec()),
        Some(br#"{"kind":"attachment","data":"AAAA","conversation_id":"00"}"#.to_vec()),
        Some(br#"{"cursor":18446744073709551615}"#.to_vec()),
        Some(br#"{"cursor":1e400}"#.to_vec()),
    ];
    let queries = [
        "",
        "?limit=-1",
        "?limit=abc",
        "?from=99999999999999999999999",
        "?after=1&x=2",
        "?token=zz",
        "?%zz",
    ];

    let mut seen = std::collections::BTreeMap::<u16, usize>::new();
    for (method, template) in operations() {
        for (label, value) in &path_values {
            let path = template
                .replace("{team_id}", if label == &"real" { &team } else { value })
                .replace(
                    "{conversation_id}",
                    if label == &"real" { &conv } else { value },
                )
                .replace(
                    "{blob_id}",
                    if label == &"real" {
                        "0123456789abcdef0123456789abcdef"
                    } else {
                        value
                    },
                )
                .replace(
                    "{device_id}",
                    if label == &"real" { &agent_id } else { value },
                );
            if !template.contains('{') && label != &"real" {
                continue;
            }
            let base = format!("{}{path}", relay.base);
            // Every path value with a real, a missing and a garbage token.
            for t in [Some(token.as_str()), None, Some("garbage")] {
                let s = check(&http, method.clone(), &base, t, None).await;
                *seen.entry(s.as_u16()).or_default() += 1;
            }
            if label != &"real" {
                continue;
            }
            for query in queries {
                let url = format!("{base}{query}");
                let s = check(&http, method.clone(), &url, Some(&token), None).await;
                *seen.entry(s.as_u16()).or_default() += 1;
            }
            if method == Method::POST || method == Method::PUT {
                for body in &bodies {
                    for t in [Some(token.as_str()), None] {
                        let s = check(&http, method.clone(), &base, t, body.clone()).await;
                        *seen.entry(s.as_u16()).or_default() += 1;
                    }
                }
            }
        }
        // Methods the route does not have are 405 with the JSON shape.
        for other in [Method::PATCH, Method::OPTIONS] {
            let path = template
                .replace("{team_id}", &team)
                .replace("{conversation_id}", &conv)
                .replace("{blob_id}", &"0".repeat(32))
                .replace("{device_id}", &w.agent.id_hex());
            let s = check(
                &http,
                other,
                &format!("{}{path}", relay.base),
                Some(&token),
                None,
            )
            .await;
            assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
        }
    }
    for path in ["/", "/v1", "/v2/teams", "/v1/teams/a/b/c", "/%00"] {
        let s = check(
            &http,
            Method::GET,
            &format!("{}{path}", relay.base),
            None,
            None,
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}");
    }
    // The relay still works, and the garbage exercised the error paths.
    for code in [400, 401, 404] {
        assert!(seen.get(&code).copied().unwrap_or(0) > 0, "{seen:?}");
    }
    w.team.owner.get("/v1/teams").await.expect(200);
}

#[tokio::test]
async fn mutated_wire_objects_are_refused_without_5xx() {
    let relay = TestRelay::start().await;
    let mut w = World::new(&relay, "acme").await;
    let conv = w.conversation.hex();
    let team = w.team.team_hex();
    let mut chain = w.conversation.chain(&w.visitor.device, MessageKind::Text);
    let message = seal(
        &mut chain,
        &w.visitor.device,
        MessageKind::Text,
        b"original",
    );
    let link = w.team.propose(Change::RotateKey);
    let link_bytes = link.to_wire();

    // Every truncation and every single-byte change of a message and of a link.
    for i in 0..message.len() {
        let r = post_message(&w.visitor, &conv, &message[..i]).await;
        assert_eq!(r.status.as_u16(), 400, "truncated at {i}");
        let mut m = message.clone();
        m[i] ^= 0x01;
        let r = post_message(&w.visitor, &conv, &m).await;
        assert!(
            matches!(r.status.as_u16(), 400 | 403),
            "byte {i}: {:?}",
            r.body
        );
    }
    for i in (0..link_bytes.len()).step_by(7) {
        let mut l = link_bytes.clone();
        l[i] ^= 0x80;
        let r = w
            .team
            .owner
            .post(&format!("/v1/teams/{team}/links"), json!({"link": b64(&l)}))
            .await;
        assert!(
            matches!(r.status.as_u16(), 400 | 403 | 409),
            "byte {i}: {:?}",
            r.body
        );
    }
    // The untouched ones are accepted.
    post_message(&w.visitor, &conv, &message).await.expect(201);
    w.team.owner.post_link(&team, &link).await.expect(201);
    w.team.accept(link);
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    // Per address: a burst of 5, then one request per second.
    let relay = TestRelay::start_with(|a| {
        a.rate_per_address = 1.0;
        a.burst_per_address = 5;
    })
    .await;
    let http = http_client();
    for _ in 0..5 {
        send(
            &http,
            Method::GET,
            &format!("{}/health", relay.base),
            None,
            None,
        )
        .await
        .expect(200);
    }
    let r = send(
        &http,
        Method::GET,
        &format!("{}/health", relay.base),
        None,
        None,
    )
    .await;
    assert_eq!((r.status.as_u16(), r.code()), (429, "rate_limited"));
    assert_eq!(r.retry_after.as_deref(), Some("1"));
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    send(
        &http,
        Method::GET,
        &format!("{}/health", relay.base),
        None,
        None,
    )
    .await
    .expect(200);

    // Per device: a burst of 3; another device keeps its own allowance.
    let relay = TestRelay::start_with(|a| {
        a.rate_per_device = 0.5;
        a.burst_per_device = 3;
    })
    .await;
    let tenant = relay.tenant("acme").await;
    let mut one = relay.client(&tenant, DeviceKind::Visitor);
    one.join(None).await;
    let mut two = relay.client(&tenant, DeviceKind::Visitor);
    two.join(None).await;
    for _ in 0..3 {
        one.get("/v1/devices/me").await.expect(200);
    }
    let r = one.get("/v1/devices/me").await;
    assert_eq!((r.status.as_u16(), r.code()), (429, "rate_limited"));
    assert_eq!(r.retry_after.as_deref(), Some("2"));
    two.get("/v1/devices/me").await.expect(200);
    let metrics = metrics(&relay.base).await;
    assert!(metrics.contains(
        "sotto_relay_http_requests_total{route=\"/v1/devices/me\",method=\"GET\",status=\"429\"} 1"
    ));
}

#[tokio::test]
async fn openapi_document_describes_every_route_and_error() {
    let relay = TestRelay::start().await;
    let served = send(
        &http_client(),
        Method::GET,
        &format!("{}/openapi.json", relay.base),
        None,
        None,
    )
    .await
    .expect(200);
    assert_eq!(served, document());
    assert_eq!(served["openapi"], "3.0.3");

    let doc = document();
    let http = http_client();
    let all_methods = [Method::GET, Method::POST, Method::PUT, Method::DELETE];
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = path
            .replace("{team_id}", &"0".repeat(32))
            .replace("{conversation_id}", &"0".repeat(32))
            .replace("{blob_id}", &"0".repeat(32))
            .replace("{device_id}", &"0".repeat(64));
        let url = format!("{}{concrete}", relay.base);
        for method in &all_methods {
            let documented = item.get(method.as_str().to_lowercase()).is_some();
            let resp = http.request(method.clone(), &url).send().await.unwrap();
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap();
            if documented {
                // The route exists: never the router's 404 or 405.
                assert!(
                    status != 405 && !(status == 404 && text.contains("no such route")),
                    "{method} {path} is documented but not served: {text}"
                );
            } else {
                assert_eq!(status, 405, "{method} {path} is served but not documented");
            }
        }
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.contains_key("429"), "{method} {path}: 429");
            let authenticated = op["security"].as_array().is_some_and(|s| !s.is_empty());
            if authenticated {
                assert!(responses.contains_key("401"), "{method} {path}: 401");
            }
            if op.get("requestBody").is_some() {
                assert!(responses.contains_key("400"), "{method} {path}: 400");
                assert!(responses.contains_key("413"), "{method} {path}: 413");
            }
            if path.contains('{') {
                assert!(responses.contains_key("404"), "{method} {path}: 404");
            }
        }
    }
    // Every $ref resolves.
    let text = sotto_relay::openapi::DOCUMENT;
    for part in text.split("\"$ref\": \"#/").skip(1) {
        let target = part.split('"').next().unwrap();
        let mut node = &doc;
        for seg in target.split('/') {
            node = node
                .get(seg)
                .unwrap_or_else(|| panic!("dangling $ref {target}"));
        }
    }
}
