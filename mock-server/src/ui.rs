//! The QA dashboard at `GET /__admin/ui`: one HTML page, its stylesheet and its script embedded in
//! the binary, so it works offline with nothing to build or fetch.
//!
//! The page is a client of the admin API like any other: it reads `/__admin/jobs`, `/__admin/journal`
//! and the rest with `fetch`, acts through the same routes a test would, and follows
//! `/__admin/events` instead of polling. It adds no route of its own besides itself.
//!
//! The stylesheet and script are inlined into the page when it is first served, and the
//! `Content-Security-Policy` allows exactly those two by hash: nothing else may run, no other
//! origin may be reached but for images (CDN links under `--public-url`), and no other site may
//! frame it.

use std::sync::LazyLock;

use base64::Engine as _;
use http::{HeaderValue, Response, StatusCode, header};
use sha2::{Digest as _, Sha256};

use crate::http::{Body, full};

const HTML: &str = include_str!("ui/index.html");
const CSS: &str = include_str!("ui/ui.css");
const JS: &str = include_str!("ui/ui.js");

/// The page with its stylesheet and script inlined, and the policy that admits exactly them.
struct Page {
    html: String,
    policy: HeaderValue,
}

static PAGE: LazyLock<Page> = LazyLock::new(|| {
    let hash = |text: &str| base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text));
    let html = HTML
        .replacen("/*STYLE*/", CSS, 1)
        .replacen("/*SCRIPT*/", JS, 1);
    let policy = format!(
        "default-src 'none'; script-src 'sha256-{}'; style-src 'sha256-{}'; img-src 'self' http: https:; \
         connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        hash(JS),
        hash(CSS)
    );
    Page {
        html,
        policy: HeaderValue::from_str(&policy).expect("a policy of ASCII text is a valid header"),
    }
});

/// The dashboard page.
pub(crate) fn page() -> Response<Body> {
    let page = &*PAGE;
    let mut response = Response::new(full(page.html.clone()));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CONTENT_SECURITY_POLICY, page.policy.clone());
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // The page's URL may carry the admin token: no referrer leaves it.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_inlines_its_assets_and_loads_nothing_from_elsewhere() {
        let html = &PAGE.html;
        assert!(!html.contains("/*STYLE*/") && !html.contains("/*SCRIPT*/"));
        assert!(html.contains(JS) && html.contains(CSS));
        for external in ["<script src", "<link", "@import", "url(http", "//fonts."] {
            assert!(!html.contains(external), "the page refers to {external:?}");
        }
    }
}
