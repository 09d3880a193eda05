//! Syntax highlighting on the server, for the diff and the inspector's
//! viewer: syntect's grammars (chosen by the file's extension) parse each
//! line, and each token becomes a `<span>` with one of a few short classes
//! (`k` keyword, `s` string, `c` comment, `n` number or constant, `t` type,
//! `f` function), so the page needs no inline style and the CSP stays
//! `'self'`. Words that differ between a removed line and the added line
//! facing it are marked `w` on top of their token class.
//!
//! Everything here is built from hostile text: every byte goes through
//! [`escape`], lines longer than [`MAX_LINE`] are shown plain, and a page
//! highlights at most [`Budget`] lines; the rest is plain text. Highlighted
//! runs are cached by content, so a diff seen once renders fast again.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock};

use sha2::{Digest, Sha256};
use syntect::parsing::{ParseState, Scope, ScopeStack, SyntaxReference, SyntaxSet};

/// Longer lines are shown plain: a grammar's regexes on a minified file are slow.
pub const MAX_LINE: usize = 2_000;
/// Highlighted bytes kept in the cache; past it, the cache starts over.
const CACHE_BYTES: usize = 64 * 1024 * 1024;

fn syntaxes() -> &'static SyntaxSet {
    static SET: OnceLock<SyntaxSet> = OnceLock::new();
    SET.get_or_init(SyntaxSet::load_defaults_newlines)
}

/// The classes, from the most specific scope prefix to the broadest.
fn categories() -> &'static [(Scope, &'static str)] {
    static TABLE: OnceLock<Vec<(Scope, &'static str)>> = OnceLock::new();
    TABLE.get_or_init(|| {
        [
            ("comment", "c"),
            ("string", "s"),
            ("constant.numeric", "n"),
            ("constant.language", "n"),
            ("constant.character", "s"),
            ("constant.other", "n"),
            ("entity.name.function", "f"),
            ("support.function", "f"),
            ("variable.function", "f"),
            ("entity.name.type", "t"),
            ("entity.name.class", "t"),
            ("entity.name.struct", "t"),
            ("entity.name.enum", "t"),
            ("support.type", "t"),
            ("support.class", "t"),
            ("storage.type", "k"),
            ("storage.modifier", "k"),
            ("keyword", "k"),
        ]
        .into_iter()
        .filter_map(|(name, class)| Scope::new(name).ok().map(|scope| (scope, class)))
        .collect()
    })
}

/// The class of the innermost scope that has one.
fn class_of(stack: &ScopeStack) -> Option<&'static str> {
    stack
        .as_slice()
        .iter()
        .rev()
        .find_map(|scope| categories().iter().find(|(prefix, _)| prefix.is_prefix_of(*scope)).map(|(_, class)| *class))
}

/// The grammar for a path, by its extension or its whole name (`Makefile`).
pub fn syntax_for(path: &str) -> Option<&'static SyntaxReference> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let set = syntaxes();
    let by_extension = name.rsplit_once('.').and_then(|(_, extension)| set.find_syntax_by_extension(extension));
    by_extension.or_else(|| set.find_syntax_by_extension(name)).filter(|syntax| syntax.name != "Plain Text")
}

/// One line's tokens: byte ranges with their class, in order.
pub type Tokens = Vec<(Range<usize>, &'static str)>;

/// How many more lines a page may highlight.
pub struct Budget(pub usize);

/// Highlights a run of consecutive lines (one side of a hunk, or a file)
/// with one parse state; `None` for a line left plain.
pub fn run(syntax: Option<&'static SyntaxReference>, lines: &[&str], budget: &mut Budget) -> Vec<Option<Tokens>> {
    let Some(syntax) = syntax else { return vec![None; lines.len()] };
    if budget.0 < lines.len() {
        return vec![None; lines.len()];
    }
    budget.0 -= lines.len();
    let key = cache_key(&syntax.name, lines);
    if let Some(hit) = cache().lock().expect("cache lock").map.get(&key) {
        return hit.as_ref().clone();
    }
    let mut state = ParseState::new(syntax);
    let mut stack = ScopeStack::new();
    let mut out = Vec::with_capacity(lines.len());
    let mut scratch = String::new();
    for line in lines {
        if line.len() > MAX_LINE {
            out.push(None);
            continue;
        }
        scratch.clear();
        scratch.push_str(line);
        scratch.push('\n');
        let Ok(ops) = state.parse_line(&scratch, syntaxes()) else {
            out.push(None);
            continue;
        };
        let mut tokens = Tokens::new();
        let mut at = 0;
        for (offset, op) in ops {
            let offset = offset.min(line.len());
            if offset > at
                && let Some(class) = class_of(&stack)
            {
                tokens.push((at..offset, class));
            }
            at = at.max(offset);
            if stack.apply(&op).is_err() {
                break;
            }
        }
        if at < line.len()
            && let Some(class) = class_of(&stack)
        {
            tokens.push((at..line.len(), class));
        }
        out.push(Some(tokens));
    }
    remember(key, &out);
    out
}

struct Cache {
    map: HashMap<[u8; 32], Arc<Vec<Option<Tokens>>>>,
    bytes: usize,
}

fn cache() -> &'static Mutex<Cache> {
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(Cache { map: HashMap::new(), bytes: 0 }))
}

fn cache_key(syntax: &str, lines: &[&str]) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(syntax.as_bytes());
    for line in lines {
        hash.update([0]);
        hash.update(line.as_bytes());
    }
    hash.finalize().into()
}

fn remember(key: [u8; 32], tokens: &[Option<Tokens>]) {
    let size = tokens.iter().map(|line| line.as_ref().map_or(0, Vec::len) * 24 + 24).sum::<usize>();
    let mut cache = cache().lock().expect("cache lock");
    if cache.bytes + size > CACHE_BYTES {
        cache.map.clear();
        cache.bytes = 0;
    }
    cache.bytes += size;
    cache.map.insert(key, Arc::new(tokens.to_vec()));
}

/// The words that differ between a removed line and the added line that
/// replaces it, as byte ranges of each; nothing when the lines share too
/// little for a word diff to help.
pub fn changed_words(old: &str, new: &str) -> (Vec<Range<usize>>, Vec<Range<usize>>) {
    if old.len() > MAX_LINE || new.len() > MAX_LINE {
        return (Vec::new(), Vec::new());
    }
    let diff = similar::TextDiff::configure().diff_unicode_words(old, new);
    if diff.ratio() < 0.4 {
        return (Vec::new(), Vec::new());
    }
    let (old_words, new_words) = (diff.old_slices(), diff.new_slices());
    let bytes = |words: Range<usize>, side: &[&str]| -> Range<usize> {
        let start: usize = side[..words.start].iter().map(|word| word.len()).sum();
        let len: usize = side[words].iter().map(|word| word.len()).sum();
        start..start + len
    };
    let (mut removed, mut added) = (Vec::new(), Vec::new());
    for op in diff.ops() {
        let (tag, old_range, new_range) = op.as_tag_tuple();
        if tag == similar::DiffTag::Equal {
            continue;
        }
        if !old_range.is_empty() {
            removed.push(bytes(old_range, old_words));
        }
        if !new_range.is_empty() {
            added.push(bytes(new_range, new_words));
        }
    }
    (removed, added)
}

/// Escapes text for HTML element content and attribute values, with the
/// entities askama's templates write, so a page escapes one way.
pub fn escape(text: &str, out: &mut String) {
    for char in text.chars() {
        match char {
            '&' => out.push_str("&#38;"),
            '<' => out.push_str("&#60;"),
            '>' => out.push_str("&#62;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            char => out.push(char),
        }
    }
}

/// A line as escaped HTML: its tokens as classed spans, changed words
/// marked `w`. Ranges off a char boundary (a grammar's or a diff's bug)
/// leave the line plain rather than split a character.
pub fn render(text: &str, tokens: Option<&Tokens>, changed: &[Range<usize>]) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let tokens = tokens.map(Vec::as_slice).unwrap_or_default();
    let fits = |range: &Range<usize>| {
        range.start <= range.end
            && range.end <= text.len()
            && text.is_char_boundary(range.start)
            && text.is_char_boundary(range.end)
    };
    if !tokens.iter().all(|(range, _)| fits(range)) || !changed.iter().all(fits) {
        escape(text, &mut out);
        return out;
    }
    let mut cuts: Vec<usize> = vec![0, text.len()];
    cuts.extend(tokens.iter().flat_map(|(range, _)| [range.start, range.end]));
    cuts.extend(changed.iter().flat_map(|range| [range.start, range.end]));
    cuts.sort_unstable();
    cuts.dedup();
    let class_at = |at: usize| tokens.iter().find(|(range, _)| range.contains(&at)).map(|(_, class)| *class);
    let changed_at = |at: usize| changed.iter().any(|range| range.contains(&at));
    let mut open: Option<(Option<&str>, bool)> = None;
    for pair in cuts.windows(2) {
        let (start, end) = (pair[0], pair[1]);
        let look = (class_at(start), changed_at(start));
        if open != Some(look) {
            if matches!(open, Some((Some(_), _) | (None, true))) {
                out.push_str("</span>");
            }
            match look {
                (Some(class), true) => out.push_str(&format!("<span class=\"{class} w\">")),
                (Some(class), false) => out.push_str(&format!("<span class=\"{class}\">")),
                (None, true) => out.push_str("<span class=\"w\">"),
                (None, false) => {}
            }
            open = Some(look);
        }
        escape(&text[start..end], &mut out);
    }
    if matches!(open, Some((Some(_), _) | (None, true))) {
        out.push_str("</span>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(path: &str, text: &str) -> String {
        let tokens = run(syntax_for(path), &[text], &mut Budget(10));
        render(text, tokens[0].as_ref(), &[])
    }

    #[test]
    fn tokens_become_classed_spans_and_every_byte_is_escaped() {
        let html = line("src/main.rs", "fn main() { let s = \"<script>alert(1)</script>\"; } // done");
        assert!(html.contains("<span class=\"k\">fn</span>"), "{html}");
        assert!(html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"), "{html}");
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("<span class=\"c\">// done</span>"), "{html}");
        assert_eq!(line("notes.unknown-extension", "a < b & \"c\""), "a &#60; b &#38; &#34;c&#34;");
    }

    #[test]
    fn changed_words_are_marked_inside_their_tokens() {
        let (old, new) = changed_words("let total = count + 1;", "let total = count + 2;");
        assert_eq!(old, vec![20..21]);
        assert_eq!(new, vec![20..21]);
        let html = render("let total = count + 2;", None, &new);
        assert_eq!(html, "let total = count + <span class=\"w\">2</span>;");
        let (old, new) = changed_words("completely different", "nothing alike at all here");
        assert!(old.is_empty() && new.is_empty(), "no word diff between unrelated lines");
    }

    #[test]
    fn hostile_lines_stay_plain_text() {
        let long = "x".repeat(MAX_LINE + 1);
        let tokens = run(syntax_for("a.rs"), &[long.as_str()], &mut Budget(10));
        assert!(tokens[0].is_none());
        let tokens = run(syntax_for("a.rs"), &["fn a() {}"], &mut Budget(0));
        assert!(tokens[0].is_none(), "past the page's budget, lines are plain");
        let broken: Tokens = vec![(0..2, "k")];
        assert_eq!(render("é<", Some(&vec![(0..1, "k")]), &[]), "é&#60;", "a range inside a character is ignored");
        let beyond: Vec<Range<usize>> = std::iter::once(0..9).collect();
        assert_eq!(render("ab", Some(&broken), &beyond), "ab");
    }
}
