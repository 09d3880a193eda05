//! Secret redaction: the rule set (`rules.toml`, in the gitleaks rule
//! format) and the passes that apply it. Events are redacted once, one at
//! a time, by [`EventRedactor`] before they are spooled, stored, indexed or
//! sent; blobs the store writes get a second, line-safe pass, because
//! objects under `refs/cortex/*` may be pushed and pushed objects cannot be
//! recalled. A pass never crosses an event boundary: event chunks are
//! redacted line by line.

mod stream;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::bytes::Regex;
use serde::Deserialize;

pub use stream::EventRedactor;

pub const REDACTED: &str = "[REDACTED]";

/// The rule set as written, in the gitleaks format.
const RULES_TOML: &str = include_str!("rules.toml");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    allowlist: AllowlistSpec,
    rules: Vec<RuleSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowlistSpec {
    #[allow(dead_code)]
    description: String,
    regexes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RuleSpec {
    id: String,
    #[allow(dead_code)]
    description: String,
    regex: String,
    #[serde(default)]
    secret_group: usize,
    #[serde(default)]
    entropy: Option<f64>,
    keywords: Vec<String>,
    #[serde(default)]
    allowlist: Option<AllowlistSpec>,
}

/// One compiled rule.
pub(crate) struct Rule {
    pub(crate) id: String,
    regex: Regex,
    secret_group: usize,
    entropy: Option<f64>,
    keywords: Vec<Vec<u8>>,
    allow: Vec<Regex>,
}

pub(crate) struct RuleSet {
    pub(crate) rules: Vec<Rule>,
    allow: Vec<Regex>,
    /// Every rule's pattern in one automaton: one pass over clean text (the
    /// common case) says that no rule can match.
    any: regex::bytes::RegexSet,
}

fn compile(pattern: &str, id: &str) -> Regex {
    regex::bytes::RegexBuilder::new(pattern)
        .size_limit(32 * 1024 * 1024)
        .build()
        .unwrap_or_else(|error| panic!("rule `{id}` does not compile (a test checks every rule): {error}"))
}

pub(crate) static RULES: LazyLock<RuleSet> = LazyLock::new(|| {
    let file: RuleFile = toml::from_str(RULES_TOML).expect("holds because rules.toml is fixed and tested");
    let allow = file.allowlist.regexes.iter().map(|pattern| compile(pattern, "allowlist")).collect();
    let any = regex::bytes::RegexSetBuilder::new(file.rules.iter().map(|rule| rule.regex.as_str()))
        .size_limit(64 * 1024 * 1024)
        .dfa_size_limit(64 * 1024 * 1024)
        .build()
        .expect("holds because every rule compiles (a test checks)");
    let rules: Vec<Rule> = file
        .rules
        .into_iter()
        .map(|spec| Rule {
            regex: compile(&spec.regex, &spec.id),
            secret_group: spec.secret_group,
            entropy: spec.entropy,
            keywords: spec.keywords.iter().map(|keyword| keyword.to_ascii_lowercase().into_bytes()).collect(),
            allow: spec
                .allowlist
                .map(|list| list.regexes.iter().map(|pattern| compile(pattern, &spec.id)).collect())
                .unwrap_or_default(),
            id: spec.id,
        })
        .collect();
    RuleSet { rules, allow, any }
});

/// Shannon entropy of `bytes`, in bits per byte.
fn entropy(bytes: &[u8]) -> f64 {
    let mut counts = [0usize; 256];
    for byte in bytes {
        counts[*byte as usize] += 1;
    }
    let len = bytes.len() as f64;
    counts.iter().filter(|count| **count > 0).map(|count| *count as f64 / len).map(|p| -p * p.log2()).sum()
}

impl Rule {
    /// The spans of secrets this rule finds in `text`.
    fn spans(&self, text: &[u8], global_allow: &[Regex]) -> Vec<(usize, usize)> {
        let mut spans = Vec::new();
        for caps in self.regex.captures_iter(text) {
            let Some(secret) = caps.get(self.secret_group) else {
                continue;
            };
            let value = secret.as_bytes();
            if global_allow.iter().chain(&self.allow).any(|allow| allow.is_match(value)) {
                continue;
            }
            if self.entropy.is_some_and(|min| entropy(value) < min) {
                continue;
            }
            spans.push((secret.start(), secret.end()));
        }
        spans
    }

    fn may_match(&self, lowered: &[u8]) -> bool {
        self.keywords.is_empty() || self.keywords.iter().any(|keyword| memchr::memmem::find(lowered, keyword).is_some())
    }
}

/// Returns `bytes` with every recognised secret replaced by `[REDACTED]`,
/// borrowing when there was nothing to replace.
pub fn redact(bytes: &[u8]) -> Cow<'_, [u8]> {
    let set = &*RULES;
    let matching = set.any.matches(bytes);
    if !matching.matched_any() {
        return Cow::Borrowed(bytes);
    }
    let lowered = bytes.to_ascii_lowercase();
    let mut text = Cow::Borrowed(bytes);
    // Rules in their order (a later one may match what an earlier left);
    // a rule the set did not match can only match text an earlier rule
    // rewrote, which its keywords still say.
    for (idx, rule) in set.rules.iter().enumerate() {
        if !(matching.matched(idx) || (matches!(text, Cow::Owned(_)) && rule.may_match(&lowered))) {
            continue;
        }
        let spans = rule.spans(&text, &set.allow);
        if spans.is_empty() {
            continue;
        }
        tracing::debug!(rule = %rule.id, found = spans.len(), "redacted secrets");
        let mut out = Vec::with_capacity(text.len());
        let mut at = 0;
        for (start, end) in spans {
            out.extend_from_slice(&text[at..start]);
            out.extend_from_slice(REDACTED.as_bytes());
            at = end;
        }
        out.extend_from_slice(&text[at..]);
        text = Cow::Owned(out);
    }
    text
}

pub fn redact_str(text: &str) -> Cow<'_, str> {
    match redact(text.as_bytes()) {
        Cow::Borrowed(_) => Cow::Borrowed(text),
        Cow::Owned(bytes) => Cow::Owned(String::from_utf8_lossy(&bytes).into_owned()),
    }
}

/// Redacts each line of `bytes` on its own, so no match spans two lines:
/// the pass for JSON-lines chunks, where a line is one event.
pub fn redact_lines(bytes: &[u8]) -> Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    let mut at = 0;
    for line in bytes.split_inclusive(|byte| *byte == b'\n') {
        let redacted = redact(line);
        if let (Cow::Owned(new), None) = (&redacted, &out) {
            let _ = new;
            out = Some(bytes[..at].to_vec());
        }
        if let Some(out) = &mut out {
            out.extend_from_slice(&redacted);
        }
        at += line.len();
    }
    out.map_or(Cow::Borrowed(bytes), Cow::Owned)
}

/// Whether `path` names a dotenv file (`.env`, `.env.local`, `prod.env`):
/// every value in it is a secret until shown otherwise.
pub fn is_dotenv(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name == ".env" || name.starts_with(".env.") || name.ends_with(".env")
}

/// A working-tree file as it may be stored: the rules, and for a dotenv
/// file every `NAME=value` value too.
pub fn redact_file<'a>(path: &str, bytes: &'a [u8]) -> Cow<'a, [u8]> {
    if !is_dotenv(path) {
        return redact(bytes);
    }
    static ASSIGNMENT: LazyLock<Regex> = LazyLock::new(|| {
        compile(
            r#"(?m)^([ \t]*(?:export[ \t]+)?[A-Za-z_][A-Za-z0-9_.-]*[ \t]*=[ \t]*)(["']?)([^\r\n]*?)(["']?)[ \t]*\r?$"#,
            "dotenv",
        )
    });
    let set = &*RULES;
    let replaced = ASSIGNMENT.replace_all(bytes, |caps: &regex::bytes::Captures<'_>| {
        let value = &caps[3];
        let keep = value.is_empty() || set.allow.iter().any(|allow| allow.is_match(value));
        let mut out = caps[1].to_vec();
        out.extend_from_slice(&caps[2]);
        out.extend_from_slice(if keep { value } else { REDACTED.as_bytes() });
        out.extend_from_slice(&caps[4]);
        out
    });
    match redact(&replaced) {
        Cow::Owned(out) => Cow::Owned(out),
        Cow::Borrowed(_) if replaced.as_ref() == bytes => Cow::Borrowed(bytes),
        Cow::Borrowed(_) => Cow::Owned(replaced.into_owned()),
    }
}
