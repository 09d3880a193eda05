//! An agent's message as Markdown, safely: pulldown-cmark renders it with
//! any raw HTML the agent wrote turned back into text (shown, never
//! interpreted), then ammonia keeps only harmless tags and attributes:
//! links only to http, https and mailto, opened with `rel="noopener
//! noreferrer nofollow"`; no images (an agent's image could be a request
//! the reader did not ask for).

use std::collections::HashSet;
use std::sync::OnceLock;

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

/// Longer messages are shown as plain text: Markdown parsing is linear,
/// but a page need not spend it on a megabyte of agent output.
const MAX_MARKDOWN: usize = 256 * 1024;

fn cleaner() -> &'static ammonia::Builder<'static> {
    static CLEANER: OnceLock<ammonia::Builder<'static>> = OnceLock::new();
    CLEANER.get_or_init(|| {
        let mut builder = ammonia::Builder::default();
        builder
            .url_schemes(HashSet::from(["http", "https", "mailto"]))
            .link_rel(Some("noopener noreferrer nofollow"))
            .rm_tags(["img"]);
        builder
    })
}

/// The message as sanitized HTML, or `None` when it is too long to render
/// (the caller shows it as text).
pub fn render(text: &str) -> Option<String> {
    if text.len() > MAX_MARKDOWN {
        return None;
    }
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let events = Parser::new_ext(text, options).filter_map(|event| match event {
        // Raw HTML is the agent's text, not markup.
        Event::Html(html) | Event::InlineHtml(html) => Some(Event::Text(html)),
        // An image is shown as its description (the text between these).
        Event::Start(Tag::Image { .. }) | Event::End(TagEnd::Image) => None,
        other => Some(other),
    });
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events);
    Some(cleaner().clean(&html).to_string())
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn markdown_renders_and_what_an_agent_writes_as_html_stays_text() {
        let html = render("**Done.** Ran `cargo test`:\n\n```\nok\n```\n\n- one\n- two\n").unwrap();
        assert!(html.contains("<strong>Done.</strong>") && html.contains("<code>cargo test</code>"), "{html}");
        assert!(html.contains("<pre><code>ok\n</code></pre>") && html.contains("<li>one</li>"), "{html}");

        let hostile = render("<script>alert(1)</script> and <img src=x onerror=alert(2)> inline").unwrap();
        assert!(!hostile.contains("<script") && !hostile.contains("<img"), "{hostile}");
        assert!(hostile.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{hostile}");

        let links = render("[ok](https://example.com) [bad](javascript:alert(1)) ![pixel](https://evil.example/t.gif)")
            .unwrap();
        assert!(links.contains("href=\"https://example.com\"") && links.contains("nofollow"), "{links}");
        assert!(!links.contains("javascript:") && !links.contains("evil.example"), "{links}");
        assert!(links.contains("pixel"), "an image leaves its description: {links}");
        assert!(render(&"x".repeat(super::MAX_MARKDOWN + 1)).is_none());
    }
}
