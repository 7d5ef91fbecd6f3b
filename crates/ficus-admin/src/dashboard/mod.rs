//! The dashboard: a live migration map, route pages with charts, the events timeline and
//! the config versions, served by the admin listener from three static files embedded in
//! the binary (plain HTML, vanilla JavaScript and CSS: no build step, no CDN, no fonts to
//! fetch, so it works offline and on an air-gapped host). The page reads the same
//! `/api/v1` the CLI uses and sends mutations with the bearer token the operator types in;
//! see `docs/dashboard.md`.

use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// The page shell: header, navigation, token dialog; the views are drawn by `app.js`.
pub const INDEX_HTML: &str = include_str!("index.html");
/// The whole client: hash routing, polling, SVG charts, actions.
pub const APP_JS: &str = include_str!("app.js");
pub const APP_CSS: &str = include_str!("app.css");

/// Where the page loads its script and style from.
pub const APP_JS_PATH: &str = "/ui/app.js";
pub const APP_CSS_PATH: &str = "/ui/app.css";

/// Only this origin's own files, no inline script, no framing (the page has buttons that
/// change routing: nobody should be able to overlay it), no form posts anywhere.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The dashboard's routes, to merge into the admin router.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            APP_JS_PATH,
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            APP_CSS_PATH,
            get(|| async { asset("text/css; charset=utf-8", APP_CSS) }),
        )
}

/// A static file. `no-cache`: the browser revalidates every time, so a ficus upgrade never
/// leaves an operator on an old script talking to a new API.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    let h = |v: &'static str| HeaderValue::from_static(v);
    let mut resp = body.into_response();
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, h(content_type));
    headers.insert(header::CACHE_CONTROL, h("no-cache"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, h("nosniff"));
    headers.insert(header::REFERRER_POLICY, h("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, h("DENY"));
    headers.insert(header::CONTENT_SECURITY_POLICY, h(CSP));
    headers.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        h("same-origin"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_its_own_files() {
        assert!(INDEX_HTML.contains(&format!("src=\"{APP_JS_PATH}\"")));
        assert!(INDEX_HTML.contains(&format!("href=\"{APP_CSS_PATH}\"")));
        for text in [INDEX_HTML, APP_JS, APP_CSS] {
            // The SVG namespace is a name, not something fetched.
            let text = text.replace("http://www.w3.org/2000/svg", "");
            for remote in ["http://", "https://", "//fonts.", "@import"] {
                assert!(
                    !text.contains(remote),
                    "the dashboard must work offline: found {remote:?}"
                );
            }
        }
        assert!(!INDEX_HTML.contains("<script>"), "no inline script (CSP)");
    }
}
