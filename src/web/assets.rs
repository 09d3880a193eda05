//! Static files, embedded in the binary: vendored htmx (versioned paths,
//! cached forever) and Cortex's stylesheet and script (revalidated by ETag).

use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

struct Asset {
    name: &'static str,
    bytes: &'static [u8],
    content_type: &'static str,
    immutable: bool,
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "vendor/htmx-2.0.11.min.js",
        bytes: include_bytes!("../../static/vendor/htmx-2.0.11.min.js"),
        content_type: "text/javascript; charset=utf-8",
        immutable: true,
    },
    Asset {
        name: "vendor/htmx-ext-sse-2.2.4.min.js",
        bytes: include_bytes!("../../static/vendor/htmx-ext-sse-2.2.4.min.js"),
        content_type: "text/javascript; charset=utf-8",
        immutable: true,
    },
    Asset {
        name: "vendor/xterm-6.0.0.js",
        bytes: include_bytes!("../../static/vendor/xterm-6.0.0.js"),
        content_type: "text/javascript; charset=utf-8",
        immutable: true,
    },
    Asset {
        name: "vendor/xterm-6.0.0.css",
        bytes: include_bytes!("../../static/vendor/xterm-6.0.0.css"),
        content_type: "text/css; charset=utf-8",
        immutable: true,
    },
    Asset {
        name: "vendor/xterm-addon-fit-0.11.0.js",
        bytes: include_bytes!("../../static/vendor/xterm-addon-fit-0.11.0.js"),
        content_type: "text/javascript; charset=utf-8",
        immutable: true,
    },
    Asset {
        name: "terminal.js",
        bytes: include_bytes!("../../static/terminal.js"),
        content_type: "text/javascript; charset=utf-8",
        immutable: false,
    },
    Asset {
        name: "favicon.svg",
        bytes: include_bytes!("../../static/favicon.svg"),
        content_type: "image/svg+xml",
        immutable: false,
    },
    Asset {
        name: "cortex.js",
        bytes: include_bytes!("../../static/cortex.js"),
        content_type: "text/javascript; charset=utf-8",
        immutable: false,
    },
    Asset {
        name: "cortex.css",
        bytes: include_bytes!("../../static/cortex.css"),
        content_type: "text/css; charset=utf-8",
        immutable: false,
    },
];

fn etag(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("\"{}\"", &hex::encode(Sha256::digest(bytes))[..16])
}

pub(super) async fn get_static(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some(asset) = ASSETS.iter().find(|asset| asset.name == name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let tag = etag(asset.bytes);
    let cache = if asset.immutable { "public, max-age=31536000, immutable" } else { "no-cache" };
    if headers.get(header::IF_NONE_MATCH).and_then(|value| value.to_str().ok()) == Some(tag.as_str()) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, tag), (header::CACHE_CONTROL, cache.to_string())])
            .into_response();
    }
    (
        [
            (header::CONTENT_TYPE, asset.content_type.to_string()),
            (header::ETAG, tag),
            (header::CACHE_CONTROL, cache.to_string()),
        ],
        asset.bytes,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    #[test]
    fn vendored_files_match_their_recorded_hashes() {
        let record = include_str!("../../static/vendor/VENDOR.md");
        for asset in super::ASSETS.iter().filter(|asset| asset.name.starts_with("vendor/")) {
            let file = asset.name.trim_start_matches("vendor/");
            let row = record
                .lines()
                .find(|line| line.starts_with(&format!("| {file} ")))
                .unwrap_or_else(|| panic!("{file} not in VENDOR.md"));
            let digest = hex::encode(Sha256::digest(asset.bytes));
            assert!(row.contains(&digest), "{file}: sha256 {digest} differs from VENDOR.md");
        }
    }
}
