//! The relay serves the web demo's static files from `--web-root` with strict headers, never
//! anything outside that directory, and its API still answers beside them.

mod common;

use common::*;

#[tokio::test]
async fn serves_the_web_root_with_strict_headers_and_nothing_outside_it() {
    let files = TempDir::new();
    std::fs::create_dir_all(files.path().join("widget")).unwrap();
    std::fs::create_dir_all(files.path().join("console")).unwrap();
    std::fs::write(files.path().join("widget/frame.html"), "<p>frame</p>").unwrap();
    std::fs::write(files.path().join("console/index.html"), "<p>console</p>").unwrap();
    std::fs::write(files.path().join("pkg.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(files.path().join("notes.sqlite"), "secret").unwrap();
    std::fs::write(files.path().join(".env"), "secret").unwrap();
    let root = files.path().to_path_buf();
    let relay = TestRelay::start_sqlite(|a| a.web_root = Some(root)).await;
    let get = |path: &str| relay.http.get(format!("{}{path}", relay.base)).send();

    let frame = get("/widget/frame.html").await.unwrap();
    assert_eq!(frame.status(), 200);
    let csp = frame.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    // Without a known widget id, only the relay's own pages may frame it.
    assert!(csp.ends_with("frame-ancestors 'self'") && csp.contains("connect-src 'self'"));
    assert_eq!(frame.headers()["x-content-type-options"], "nosniff");
    assert_eq!(frame.text().await.unwrap(), "<p>frame</p>");

    let console = get("/console/").await.unwrap();
    assert_eq!(console.status(), 200);
    let csp = console.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("frame-ancestors 'self'"));

    let wasm = get("/pkg.wasm").await.unwrap();
    assert_eq!(wasm.headers()["content-type"], "application/wasm");

    for hidden in [
        "/notes.sqlite",
        "/.env",
        "/widget/../notes.sqlite",
        "/%2e%2e/etc/passwd",
        "/missing.js",
    ] {
        let r = get(hidden).await.unwrap();
        assert_eq!(r.status(), 404, "{hidden}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{hidden}");
    }
    let health: serde_json::Value = get("/health").await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ok");
}

#[tokio::test]
async fn without_a_web_root_nothing_static_is_served() {
    let relay = TestRelay::start_sqlite(|_| {}).await;
    let r = relay
        .http
        .get(format!("{}/widget/frame.html", relay.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
