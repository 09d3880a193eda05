//! The fake provider's script format: TOML, one `[[turn]]` table per turn,
//! each a list of `[[turn.step]]` tables with exactly one key (a top-level
//! `[[step]]` list is shorthand for a one-turn script). Documented in
//! `docs/fake-provider.md`. Every problem is found here, before a session
//! starts, and named by turn and step.

use std::path::{Component, Path};

#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    Message(String),
    Reasoning(String),
    Command(String),
    WriteFile {
        path: String,
        content: String,
    },
    DeleteFile(String),
    Approval(String),
    SleepMs(u64),
    Fail(String),
    /// A model request's use, as a real agent reports it: added to the turn's.
    Usage(crate::provider::Usage),
}

pub const STEP_KINDS: &[&str] =
    &["message", "reasoning", "command", "write_file", "delete_file", "approval", "sleep_ms", "fail", "usage"];

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Script {
    pub turns: Vec<Vec<Step>>,
}

#[derive(Debug, thiserror::Error)]
#[error("script `{source_name}`: {detail}")]
pub struct ScriptError {
    pub source_name: String,
    pub detail: String,
}

impl Script {
    pub fn load(path: &Path) -> Result<Script, ScriptError> {
        let name = path.display().to_string();
        let text = fs_err::read_to_string(path)
            .map_err(|error| ScriptError { source_name: name.clone(), detail: format!("cannot read it: {error}") })?;
        Script::parse(&text, &name)
    }

    pub fn parse(text: &str, source_name: &str) -> Result<Script, ScriptError> {
        let fail = |detail: String| ScriptError { source_name: source_name.to_string(), detail };
        let table: toml::Table = toml::from_str(text).map_err(|error| {
            let line = error.span().map_or(1, |span| text[..span.start].matches('\n').count() + 1);
            fail(format!("not valid TOML at line {line}: {}", error.message()))
        })?;
        let mut turns = Vec::new();
        for (key, value) in &table {
            match key.as_str() {
                "turn" => {
                    let list =
                        value.as_array().ok_or_else(|| fail("`turn` must be an array of tables: `[[turn]]`".into()))?;
                    for (turn_idx, turn) in list.iter().enumerate() {
                        let turn_table =
                            turn.as_table().ok_or_else(|| fail(format!("turn {} is not a table", turn_idx + 1)))?;
                        if let Some(other) = turn_table.keys().find(|key| *key != "step") {
                            return Err(fail(format!(
                                "turn {}: unknown key `{other}` (a turn holds only `[[turn.step]]`)",
                                turn_idx + 1
                            )));
                        }
                        let steps = match turn_table.get("step") {
                            Some(steps) => parse_steps(steps, &format!("turn {}", turn_idx + 1)).map_err(fail)?,
                            None => Vec::new(),
                        };
                        turns.push(steps);
                    }
                }
                "step" => {}
                other => {
                    return Err(fail(format!("unknown top-level key `{other}` (expected `[[turn]]` or `[[step]]`)")));
                }
            }
        }
        if let Some(steps) = table.get("step") {
            if table.contains_key("turn") {
                return Err(fail("use either `[[turn]]` tables or a top-level `[[step]]` list, not both".into()));
            }
            turns.push(parse_steps(steps, "turn 1").map_err(fail)?);
        }
        Ok(Script { turns })
    }

    /// The steps of turn `n` (1-based), if the script has that turn.
    pub fn turn(&self, n: u32) -> Option<&[Step]> {
        self.turns.get((n as usize).checked_sub(1)?).map(Vec::as_slice)
    }
}

/// `usage = { input = 100, output = 20, cached = 0, reasoning = 0, model = "m", cost_usd = 0.01 }`.
fn parse_usage(value: &toml::Value, place: &str) -> Result<crate::provider::Usage, String> {
    const KEYS: &[&str] = &["input", "output", "cached", "reasoning", "model", "cost_usd"];
    let spec = value.as_table().ok_or_else(|| format!("{place}: `usage` takes `{{ input = N, output = N, … }}`"))?;
    if let Some(other) = spec.keys().find(|key| !KEYS.contains(&key.as_str())) {
        return Err(format!("{place}: `usage` has an unknown key `{other}` (expected {})", KEYS.join(", ")));
    }
    let count = |name: &str| match spec.get(name) {
        None => Ok(0),
        Some(value) => value
            .as_integer()
            .filter(|count| *count >= 0)
            .map(|count| count as u64)
            .ok_or_else(|| format!("{place}: `usage.{name}` takes a whole number of tokens")),
    };
    let (input, output) = (count("input")?, count("output")?);
    let tokens = crate::protocol::TokenUsage {
        input_tokens: input,
        cached_input_tokens: count("cached")?,
        output_tokens: output,
        reasoning_output_tokens: count("reasoning")?,
        total_tokens: input + output,
    };
    let model = match spec.get("model") {
        None => None,
        Some(value) => {
            Some(value.as_str().ok_or_else(|| format!("{place}: `usage.model` takes a string"))?.to_string())
        }
    };
    let cost_usd = match spec.get("cost_usd") {
        None => None,
        Some(value) => Some(
            value
                .as_float()
                .or_else(|| value.as_integer().map(|whole| whole as f64))
                .filter(|cost| *cost >= 0.0)
                .ok_or_else(|| format!("{place}: `usage.cost_usd` takes a number of US dollars"))?,
        ),
    };
    Ok(crate::provider::Usage { tokens, model, cost_usd })
}

fn parse_steps(value: &toml::Value, place: &str) -> Result<Vec<Step>, String> {
    let list = value.as_array().ok_or_else(|| format!("{place}: `step` must be an array of tables"))?;
    list.iter().enumerate().map(|(idx, step)| parse_step(step, &format!("{place}, step {}", idx + 1))).collect()
}

fn parse_step(value: &toml::Value, place: &str) -> Result<Step, String> {
    let table = value.as_table().ok_or_else(|| format!("{place}: a step must be a table"))?;
    let mut keys = table.iter();
    let (key, value) = match (keys.next(), keys.next()) {
        (Some(entry), None) => entry,
        (None, _) => {
            return Err(format!("{place}: empty step (give one of {})", STEP_KINDS.join(", ")));
        }
        (Some((first, _)), Some((second, _))) => {
            return Err(format!("{place}: a step has exactly one key, found `{first}` and `{second}`"));
        }
    };
    let text = |what: &str| {
        value.as_str().map(str::to_string).ok_or_else(|| format!("{place}: `{key}` takes a string ({what})"))
    };
    Ok(match key.as_str() {
        "message" => Step::Message(text("the assistant's message")?),
        "reasoning" => Step::Reasoning(text("the reasoning shown")?),
        "command" => Step::Command(text("a shell command run in the workspace")?),
        "approval" => Step::Approval(text("the question asked")?),
        "fail" => Step::Fail(text("the error the turn fails with")?),
        "delete_file" => Step::DeleteFile(checked_path(&text("a path in the workspace")?, place)?),
        "sleep_ms" => {
            let ms = value.as_integer().filter(|ms| *ms >= 0);
            Step::SleepMs(ms.ok_or_else(|| format!("{place}: `sleep_ms` takes a whole number of milliseconds"))? as u64)
        }
        "usage" => Step::Usage(parse_usage(value, place)?),
        "write_file" => {
            let spec = value
                .as_table()
                .ok_or_else(|| format!("{place}: `write_file` takes `{{ path = \"…\", content = \"…\" }}`"))?;
            if let Some(other) = spec.keys().find(|key| !["path", "content"].contains(&key.as_str())) {
                return Err(format!("{place}: `write_file` has an unknown key `{other}` (expected path, content)"));
            }
            let field = |name: &str| {
                spec.get(name)
                    .and_then(|value| value.as_str())
                    .map(str::to_string)
                    .ok_or_else(|| format!("{place}: `write_file` needs a string `{name}`"))
            };
            Step::WriteFile { path: checked_path(&field("path")?, place)?, content: field("content")? }
        }
        other => {
            return Err(format!("{place}: unknown step `{other}` (expected one of {})", STEP_KINDS.join(", ")));
        }
    })
}

/// A path the script may touch: relative, inside the workspace, no `..`.
/// Symlinks are checked again when the step runs.
fn checked_path(path: &str, place: &str) -> Result<String, String> {
    let parsed = Path::new(path);
    if path.is_empty() {
        return Err(format!("{place}: the path is empty"));
    }
    if parsed.is_absolute() {
        return Err(format!("{place}: `{path}` is absolute; paths are relative to the workspace root"));
    }
    if parsed.components().any(|component| matches!(component, Component::ParentDir)) {
        return Err(format!("{place}: `{path}` leaves the workspace (`..` is not allowed)"));
    }
    if parsed.components().next().is_some_and(|component| component.as_os_str() == ".git") {
        return Err(format!("{place}: `{path}` is inside `.git`, which the agent may not touch"));
    }
    Ok(path.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expect: &str) {
        let got = match Script::parse(text, "s.toml") {
            Ok(script) => format!("{:?}", script.turns),
            Err(error) => error.to_string(),
        };
        assert_eq!(got, expect);
    }

    #[test]
    fn turns_and_shorthand_parse() {
        check(
            "[[turn]]\n[[turn.step]]\nmessage = \"hi\"\n[[turn.step]]\nsleep_ms = 5\n[[turn]]\n[[turn.step]]\nfail = \"quota\"\n",
            r#"[[Message("hi"), SleepMs(5)], [Fail("quota")]]"#,
        );
        check(
            "[[step]]\nwrite_file = { path = \"src/a.rs\", content = \"x\" }\n[[step]]\ndelete_file = \"old.txt\"\n",
            r#"[[WriteFile { path: "src/a.rs", content: "x" }, DeleteFile("old.txt")]]"#,
        );
        check("", "[]");
    }

    #[test]
    fn mistakes_are_named_by_turn_and_step() {
        check(
            "[[step]]\nmesage = \"hi\"\n",
            "script `s.toml`: turn 1, step 1: unknown step `mesage` (expected one of message, reasoning, command, write_file, delete_file, approval, sleep_ms, fail, usage)",
        );
        check(
            "[[step]]\nmessage = \"a\"\nreasoning = \"b\"\n",
            "script `s.toml`: turn 1, step 1: a step has exactly one key, found `message` and `reasoning`",
        );
        check(
            "[[turn]]\n[[turn]]\n[[turn.step]]\ndelete_file = \"../etc/passwd\"\n",
            "script `s.toml`: turn 2, step 1: `../etc/passwd` leaves the workspace (`..` is not allowed)",
        );
        check(
            "[[step]]\nwrite_file = { path = \"/etc/x\", content = \"\" }\n",
            "script `s.toml`: turn 1, step 1: `/etc/x` is absolute; paths are relative to the workspace root",
        );
        check(
            "[[step]]\nsleep_ms = \"soon\"\n",
            "script `s.toml`: turn 1, step 1: `sleep_ms` takes a whole number of milliseconds",
        );
        check(
            "[[step]]\nmessage = 1\n[[step]\n",
            "script `s.toml`: not valid TOML at line 3: unclosed array table, expected `]`",
        );
        check("title = 1\n", "script `s.toml`: unknown top-level key `title` (expected `[[turn]]` or `[[step]]`)");
    }
}
