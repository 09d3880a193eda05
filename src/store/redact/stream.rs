//! The one redaction point for events: every string in an event is
//! redacted, and a private key printed over many events (a command's
//! output is one event per line; a model streams deltas) is followed from
//! its `BEGIN` line to its `END` line across events and flushes, each event
//! redacted on its own, so no event is ever swallowed.

use std::collections::HashSet;
use std::sync::LazyLock;

use regex::Regex;

use super::{REDACTED, redact_str};
use crate::protocol::{Event, EventKind};

static BEGIN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----").expect("holds because the pattern is fixed")
});
static END: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----").expect("holds because the pattern is fixed")
});

/// Redacts events one at a time, remembering which output streams are in
/// the middle of a private key. One per session writer.
#[derive(Default)]
pub struct EventRedactor {
    /// Stream keys (`cmd:<id>`, `delta:<id>`, `raw`) inside a key block.
    open: HashSet<String>,
}

impl EventRedactor {
    pub fn new() -> EventRedactor {
        EventRedactor::default()
    }

    /// Redacts `event` in place: its streamed text with the state of its
    /// stream, then every string in it.
    pub fn redact(&mut self, event: &mut Event) {
        self.redact_streams(event);
        redact_strings(event);
    }

    /// [`Self::redact`], returning the event's JSON line too (the store's
    /// hot path: one serialization, and the per-string pass only for the
    /// few events whose line holds something the rules match).
    pub fn redact_to_line(&mut self, event: &mut Event) -> String {
        self.redact_streams(event);
        let line = serde_json::to_string(&*event).expect("holds because events serialize to JSON");
        if let std::borrow::Cow::Borrowed(_) = redact_str(&line) {
            return line;
        }
        redact_strings(event);
        serde_json::to_string(&*event).expect("holds because events serialize to JSON")
    }

    fn redact_streams(&mut self, event: &mut Event) {
        match &mut event.kind {
            EventKind::CommandOutput { command_id, text, .. } => {
                let key = format!("cmd:{command_id}");
                *text = self.stream(key, text);
            }
            EventKind::AssistantDelta { item_id, text } => {
                let key = format!("delta:{item_id}");
                *text = self.stream(key, text);
            }
            EventKind::CommandFinished { command_id, .. } => {
                self.open.remove(&format!("cmd:{command_id}"));
            }
            _ => {}
        }
    }

    /// A provider's raw line, redacted; while a key block is open on the
    /// raw stream, whole lines are replaced (they are kept for
    /// re-normalising, and a redacted raw line stays valid JSON).
    pub fn redact_raw(&mut self, line: &str) -> String {
        let inside = self.open.contains("raw");
        let redacted = redact_str(&self.stream("raw".into(), line)).into_owned();
        if inside && redacted == REDACTED {
            return format!(r#"{{"cortex":"{REDACTED}"}}"#);
        }
        redacted
    }

    /// `text` of the stream `key`: inside a key block it is redacted up to
    /// and including the block's end; a block that starts here and does not
    /// end here leaves the stream open.
    fn stream(&mut self, key: String, text: &str) -> String {
        if self.open.is_empty() && !text.contains("-----BEGIN") {
            // Nothing streams a key now: every string is redacted below.
            return text.to_string();
        }
        let mut rest = text;
        let mut out = String::new();
        if self.open.contains(&key) {
            match END.find(rest) {
                Some(end) => {
                    out.push_str(REDACTED);
                    rest = &rest[end.end()..];
                    self.open.remove(&key);
                }
                None => return REDACTED.to_string(),
            }
        }
        // The last BEGIN without an END after it opens the stream.
        if let Some(begin) = BEGIN.find_iter(rest).last()
            && !END.is_match(&rest[begin.end()..])
        {
            self.open.insert(key);
        }
        out.push_str(&redact_str(rest));
        out
    }
}

/// Every string in the event, redacted on its own.
fn redact_strings(event: &mut Event) {
    let value = serde_json::to_value(&*event).expect("holds because events serialize to JSON");
    let mut changed = false;
    let value = walk(value, &mut changed);
    if changed {
        *event = serde_json::from_value(value).expect("holds because only string contents changed");
    }
}

fn walk(value: serde_json::Value, changed: &mut bool) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(text) => match redact_str(&text) {
            std::borrow::Cow::Borrowed(_) => Value::String(text),
            std::borrow::Cow::Owned(redacted) => {
                *changed = true;
                Value::String(redacted)
            }
        },
        Value::Array(items) => Value::Array(items.into_iter().map(|item| walk(item, changed)).collect()),
        Value::Object(fields) => {
            Value::Object(fields.into_iter().map(|(key, item)| (key, walk(item, changed))).collect())
        }
        other => other,
    }
}
