//! An artifact's type from its first bytes. Only the raster images the
//! panel may show inline are trusted as such; SVG and HTML are named so they
//! can be refused inline (they can carry scripts).

/// The media type of `bytes`, with `path`'s extension only telling text
/// kinds apart (Markdown from plain text).
pub fn sniff(path: &str, bytes: &[u8]) -> &'static str {
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.starts_with(PNG) {
        return "image/png";
    }
    if bytes.starts_with(b"\xFF\xD8\xFF") {
        return "image/jpeg";
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        return "image/gif";
    }
    if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return "image/webp";
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(text) if !text.contains('\0') => text,
        _ => return "application/octet-stream",
    };
    let head: String = text.trim_start_matches('\u{feff}').trim_start().chars().take(1024).collect();
    let lowered = head.to_ascii_lowercase();
    if lowered.contains("<svg") {
        return "image/svg+xml";
    }
    if lowered.starts_with("<!doctype html") || lowered.starts_with("<html") || lowered.contains("<script") {
        return "text/html";
    }
    if lowered.starts_with("<?xml") || lowered.starts_with('<') {
        return "application/xml";
    }
    let extension = path.rsplit('.').next().unwrap_or_default().to_ascii_lowercase();
    if matches!(extension.as_str(), "md" | "markdown") {
        return "text/markdown";
    }
    "text/plain"
}

/// Whether the panel may show a file of this type inline: raster images only.
pub fn is_inline_image(media_type: &str) -> bool {
    matches!(media_type, "image/png" | "image/jpeg" | "image/gif" | "image/webp")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_the_bytes_not_the_name() {
        assert_eq!(sniff("shot.txt", b"\x89PNG\r\n\x1a\nrest"), "image/png");
        assert_eq!(
            sniff("a.png", b"<svg xmlns='http://www.w3.org/2000/svg'><script>x()</script></svg>"),
            "image/svg+xml"
        );
        assert_eq!(sniff("a.png", b"<!DOCTYPE html><p>hi"), "text/html");
        assert_eq!(sniff("a.gif", b"\n <html><script>x</script>"), "text/html");
        assert_eq!(sniff("report.md", b"# Title\n"), "text/markdown");
        assert_eq!(sniff("junit.xml", b"<?xml version='1.0'?><testsuite/>"), "application/xml");
        assert_eq!(sniff("x.bin", b"\0\x01\x02"), "application/octet-stream");
        assert_eq!(sniff("x.webp", b"RIFF\0\0\0\0WEBPVP8 "), "image/webp");
        assert!(is_inline_image("image/png") && !is_inline_image("image/svg+xml") && !is_inline_image("text/html"));
    }
}
