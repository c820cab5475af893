//! Static files for the web demo (`--web-root`): the widget's iframe, the agent console and the
//! browser package, served from the relay's own origin so the widget's storage and keys live on
//! an origin the host page cannot script.
//!
//! Only `GET` and `HEAD` of files whose names are plain (letters, digits, `.`, `-`, `_`, no
//! dot-files, no `..`) and whose extension has a known type are served; anything else falls
//! through to the API's JSON 404.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error;
use crate::state::AppState;

/// Largest file served; the demo's biggest is the wasm module.
const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// Pages that may be framed by the tenant's own sites: the widget's iframe.
const FRAMEABLE_PREFIX: &str = "widget/";
/// The agent console, served only on the console listener when there is one.
const CONSOLE_PREFIX: &str = "console/";

/// The fallback handler: a file under the web root, or the API's 404.
pub async fn serve(State(state): State<AppState>, req: Request) -> Response {
    let Some(root) = state.settings.web_root.as_deref() else {
        return error::not_found_fallback().await.into_response();
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return error::not_found_fallback().await.into_response();
    }
    let Some((relative, path)) = resolve(root, req.uri().path()) else {
        return error::not_found_fallback().await.into_response();
    };
    // With a console listener, the widget and the console never share an origin.
    if state.settings.console_origin.is_some() {
        let on_console = req.extensions().get::<crate::server::Listener>().is_some();
        let other_side = if on_console {
            relative.starts_with(FRAMEABLE_PREFIX)
        } else {
            relative.starts_with(CONSOLE_PREFIX)
        };
        if other_side {
            return error::not_found_fallback().await.into_response();
        }
    }
    let Some(content_type) = content_type(&path) else {
        return error::not_found_fallback().await.into_response();
    };
    match tokio::fs::metadata(&path).await {
        Ok(meta) if meta.is_file() && meta.len() <= MAX_FILE_BYTES => {}
        _ => return error::not_found_fallback().await.into_response(),
    }
    let Ok(bytes) = tokio::fs::read(&path).await else {
        return error::not_found_fallback().await.into_response();
    };
    let body = if req.method() == Method::HEAD {
        Body::empty()
    } else {
        Body::from(bytes)
    };
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if content_type.starts_with("text/html") {
        let ancestors = if relative.starts_with(FRAMEABLE_PREFIX) {
            frame_ancestors(&state, req.uri().query()).await
        } else {
            "'self'".to_owned()
        };
        if let Ok(v) = HeaderValue::from_str(&page_policy(&relative, &ancestors)) {
            headers.insert(header::CONTENT_SECURITY_POLICY, v);
        }
    }
    if relative.starts_with(FRAMEABLE_PREFIX) && relative.ends_with(".js") {
        // The launcher script is loaded by host pages on other origins.
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
    }
    response
}

/// Who may frame a widget page: the relay's own pages and the origins the tenant named by the
/// `w` query parameter (its widget id) allows (`sotto-relay tenant embed-origins`). Without a
/// known widget id, only the relay's own pages: a widget any site could frame is a widget any
/// site could drive, registering devices for the tenant.
async fn frame_ancestors(state: &AppState, query: Option<&str>) -> String {
    let widget = query
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("w="))
        .and_then(|w| crate::extract::from_hex::<16>("w", w).ok());
    let mut ancestors = "'self'".to_owned();
    if let Some(w) = widget
        && let Ok(Some(origins)) = crate::tenant::embed_origins(&state.db, &w).await
    {
        for o in origins {
            // Stored origins were normalized on the way in; checked again since they go into
            // a header verbatim.
            if crate::tenant::normalize_origin(&o).is_ok_and(|n| n == o) {
                ancestors.push(' ');
                ancestors.push_str(&o);
            }
        }
    }
    ancestors
}

/// The content security policy of a page: scripts and connections only to this origin (wasm
/// compiled from it), images also from decrypted blobs; framed only by `ancestors`.
fn page_policy(relative: &str, ancestors: &str) -> String {
    let frames = if relative.starts_with(FRAMEABLE_PREFIX) {
        ""
    } else {
        "frame-src 'self'; "
    };
    format!(
        "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'; \
         img-src 'self' blob: data:; style-src 'self'; base-uri 'none'; form-action 'none'; \
         {frames}frame-ancestors {ancestors}"
    )
}

/// Maps a request path to a file under `root`, refusing anything but plain names. A path
/// ending in `/` (or empty) means its `index.html`.
fn resolve(root: &Path, uri_path: &str) -> Option<(String, PathBuf)> {
    let trimmed = uri_path.strip_prefix('/')?;
    let mut relative = trimmed.to_owned();
    if relative.is_empty() || relative.ends_with('/') {
        relative.push_str("index.html");
    }
    let mut path = root.to_path_buf();
    for part in relative.split('/') {
        let plain = !part.is_empty()
            && !part.starts_with('.')
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        if !plain {
            return None;
        }
        path.push(part);
    }
    Some((relative, path))
}

fn content_type(path: &Path) -> Option<&'static str> {
    Some(match path.extension()?.to_str()? {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "wasm" => "application/wasm",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_under_the_root_resolve() {
        let root = Path::new("/srv/web");
        let ok = |p: &str| resolve(root, p).map(|(r, path)| (r, path.display().to_string()));
        assert_eq!(
            ok("/widget/frame.html"),
            Some((
                "widget/frame.html".into(),
                "/srv/web/widget/frame.html".into()
            ))
        );
        assert_eq!(
            ok("/console/"),
            Some((
                "console/index.html".into(),
                "/srv/web/console/index.html".into()
            ))
        );
        for bad in [
            "/../etc/passwd",
            "/widget/../../x.html",
            "/.git/config",
            "/a//b.js",
            "/a%2e%2e/b.js",
            "/a\\b.js",
            "relative.js",
        ] {
            assert_eq!(ok(bad), None, "{bad}");
        }
    }

    #[test]
    fn unknown_extensions_are_not_served() {
        assert_eq!(content_type(Path::new("a.wasm")), Some("application/wasm"));
        assert_eq!(content_type(Path::new("a.sqlite")), None);
        assert_eq!(content_type(Path::new("Makefile")), None);
    }

    #[test]
    fn only_the_widget_may_be_framed_by_other_sites() {
        let widget = page_policy("widget/frame.html", "'self' https://shop.example.com");
        assert!(widget.ends_with("frame-ancestors 'self' https://shop.example.com"));
        assert!(!widget.contains("frame-src"));
        let console = page_policy("console/index.html", "'self'");
        assert!(console.contains("frame-src 'self'; frame-ancestors 'self'"));
    }
}
