//! The embedded pages (`web-ui/`, compiled in by `build.rs`): looked up by path, served with
//! their content type and an ETag. Names are not versioned, so every answer says `no-cache`:
//! the browser keeps its copy and asks again with `If-None-Match`, and a firmware update is
//! seen at the next page load (a 304 costs a few bytes on the LAN).

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// One embedded file.
pub struct Asset {
    /// Path under `web-ui/`, e.g. `login.html`, `js/app.js`.
    pub path: &'static str,
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// A quoted ETag derived from the bytes.
    pub etag: &'static str,
    /// The bytes.
    pub body: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// The file at `path` (no leading `/`); `""` is the start page.
pub fn find(path: &str) -> Option<&'static Asset> {
    let path = if path.is_empty() { "index.html" } else { path };
    ASSETS.binary_search_by(|a| a.path.cmp(path)).ok().and_then(|i| ASSETS.get(i))
}

/// The answer for `path`: 200 with the file, 304 when the browser's copy is current, 404.
pub fn respond(path: &str, headers: &HeaderMap) -> Response {
    let Some(asset) = find(path) else {
        return (StatusCode::NOT_FOUND, [(header::CACHE_CONTROL, "no-store")], "not found\n").into_response();
    };
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == asset.etag));
    let common = [
        (header::ETAG, HeaderValue::from_static(asset.etag)),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        StatusCode::OK,
        common,
        [(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type))],
        asset.body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_so_lookup_finds_every_file() {
        assert!(ASSETS.windows(2).all(|w| w[0].path < w[1].path));
        for a in ASSETS {
            assert!(std::ptr::eq(find(a.path).unwrap(), a));
        }
    }

    #[test]
    fn the_pages_are_embedded_with_their_types() {
        for (path, ty) in [
            ("index.html", "text/html; charset=utf-8"),
            ("login.html", "text/html; charset=utf-8"),
            ("password.html", "text/html; charset=utf-8"),
            ("dashboard.html", "text/html; charset=utf-8"),
            ("users.html", "text/html; charset=utf-8"),
            ("app.js", "text/javascript; charset=utf-8"),
            ("style.css", "text/css; charset=utf-8"),
        ] {
            assert_eq!(find(path).map(|a| a.content_type), Some(ty), "{path}");
        }
        assert!(find("README.md").is_none());
        assert!(find("../Cargo.toml").is_none());
    }

    #[test]
    fn a_matching_etag_gets_304() {
        let a = find("app.js").unwrap();
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static(a.etag));
        assert_eq!(respond("app.js", &h).status(), StatusCode::NOT_MODIFIED);
        assert_eq!(respond("app.js", &HeaderMap::new()).status(), StatusCode::OK);
        assert_eq!(respond("nope.js", &HeaderMap::new()).status(), StatusCode::NOT_FOUND);
    }
}
