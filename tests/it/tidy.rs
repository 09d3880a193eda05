//! The repository's own rules, checked as a test (also `cargo xtask tidy`):
//! every source file says what it owns, only `cli` prints, and imports point
//! one way (docs/ARCHITECTURE.md).

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Which modules each module may import from the crate.
const ALLOWED: &[(&str, &[&str])] = &[
    ("protocol", &[]),
    ("evidence", &["protocol"]),
    ("sandbox", &[]),
    ("store", &["protocol"]),
    ("index", &["store", "protocol"]),
    ("provider", &["sandbox", "protocol"]),
    ("node", &["provider", "store", "sandbox", "evidence", "protocol"]),
    ("core", &["index", "store", "protocol"]),
    ("web", &["core", "evidence", "protocol"]),
    ("cli", &["core", "web", "node", "store", "evidence", "protocol"]),
];

#[test]
fn tidy_every_file_opens_with_a_module_doc() {
    let mut missing = Vec::new();
    for dir in ["src", "tests", "xtask/src"] {
        for file in rust_files(&root().join(dir)) {
            let text = std::fs::read_to_string(&file).unwrap();
            if !text.starts_with("//!") {
                missing.push(file.strip_prefix(root()).unwrap().display().to_string());
            }
        }
    }
    assert!(missing.is_empty(), "files without a `//!` opening: {missing:?}");
}

#[test]
fn tidy_only_cli_prints_and_no_debugging_leftovers() {
    let mut offences = Vec::new();
    for file in rust_files(&root().join("src")) {
        let relative = file.strip_prefix(root()).unwrap().display().to_string();
        let text = std::fs::read_to_string(&file).unwrap();
        let may_print = relative.starts_with("src/cli/") || relative == "src/main.rs";
        for (idx, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            let prints = ["println!", "eprintln!", "print!(", "eprint!("].iter().any(|call| code.contains(call));
            if prints && !may_print {
                offences.push(format!("{relative}:{}: prints outside cli", idx + 1));
            }
            if code.contains("dbg!(") || code.contains(concat!("#[", "ignore")) {
                offences.push(format!("{relative}:{}: debugging leftover", idx + 1));
            }
        }
    }
    assert!(offences.is_empty(), "{offences:#?}");
}

#[test]
fn tidy_imports_point_one_way() {
    let mut offences = Vec::new();
    for (module, allowed) in ALLOWED {
        for file in rust_files(&root().join("src").join(module)) {
            let text = std::fs::read_to_string(&file).unwrap();
            for (idx, line) in text.lines().enumerate() {
                for (_, rest) in line.match_indices("crate::").map(|(at, _)| ((), &line[at + 7..])) {
                    let target: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                    let known = ALLOWED.iter().any(|(name, _)| *name == target);
                    if known && target != *module && !allowed.contains(&target.as_str()) {
                        let relative = file.strip_prefix(root()).unwrap().display();
                        offences.push(format!("{relative}:{}: `{module}` may not import `{target}`", idx + 1));
                    }
                }
            }
        }
    }
    assert!(offences.is_empty(), "{offences:#?}");
}

/// Issue 11's structure rules: no source file over 800 lines; no function
/// over 100 lines unless a comment at its head says why (`// Long: …`).
/// Templates escape everything (askama's default); the one exception is a
/// field named `html`, which only `web::highlight::render` (escaped text
/// and its own class names) and `web::markdown::render` (sanitized by
/// ammonia) build.
#[test]
fn tidy_templates_write_raw_html_only_from_the_highlighter() {
    let mut offences = Vec::new();
    for entry in std::fs::read_dir(root().join("templates")).unwrap().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap();
        for (at, _) in text.match_indices("|safe") {
            let before = &text[..at];
            let field = before.rsplit(['{', ' ', '(']).next().unwrap_or_default();
            // SVG comes only from `evidence::chart`, which escapes every text.
            if !field.ends_with(".html") && field != "html" && !field.ends_with("svg") {
                offences.push(format!("{}: `{field}|safe`", entry.path().display()));
            }
        }
    }
    let mut builders = Vec::new();
    for file in rust_files(&root().join("src/web")) {
        let text = std::fs::read_to_string(&file).unwrap();
        if text.lines().any(|line| {
            let line = line.trim();
            let svg = line.split(':').next().is_some_and(|name| name.ends_with("svg") && !name.contains(' '));
            if svg && line.contains(':') && !line.ends_with("String,") && !line.ends_with("Option<String>,") {
                return !line.contains("chart::") && !line.contains("_chart(") && !line.ends_with("None,");
            }
            line.starts_with("html:")
                && !line.ends_with("String,")
                && !line.ends_with("None,")
                && !["highlight::render", "markdown::render", "html[", "html.clone()"]
                    .iter()
                    .any(|from| line.contains(from))
        }) {
            builders.push(file.display().to_string());
        }
    }
    assert!(offences.is_empty() && builders.is_empty(), "{offences:#?} {builders:#?}");
}

#[test]
fn tidy_files_and_functions_stay_small() {
    let mut offences = Vec::new();
    for dir in ["src", "tests", "xtask/src"] {
        for file in rust_files(&root().join(dir)) {
            let relative = file.strip_prefix(root()).unwrap().display().to_string();
            let text = std::fs::read_to_string(&file).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            if lines.len() > 800 {
                offences.push(format!("{relative}: {} lines (at most 800)", lines.len()));
            }
            for (name, start, length) in functions(&lines) {
                let head = lines[start.saturating_sub(8)..(start + 3).min(lines.len())].join("\n");
                if length > 100 && !head.contains("// Long:") {
                    offences.push(format!(
                        "{relative}:{}: fn {name} is {length} lines; split it, or say why at its head (`// Long: …`)",
                        start + 1
                    ));
                }
            }
        }
    }
    assert!(offences.is_empty(), "{offences:#?}");
}

/// Every `fn` in `lines` with its first line (0-based) and its length, by
/// counting braces outside string and char literals and comments.
fn functions(lines: &[&str]) -> Vec<(String, usize, usize)> {
    let mut found = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let mut code = line.trim_start();
        while let Some(rest) = ["pub(crate) ", "pub(super) ", "pub ", "async ", "const ", "unsafe "]
            .iter()
            .find_map(|prefix| code.strip_prefix(prefix))
        {
            code = rest;
        }
        if !code.starts_with("fn ") {
            continue;
        }
        let name: String = code[3..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let mut depth = 0i64;
        let mut opened = false;
        let mut end = start;
        'scan: for (idx, line) in lines.iter().enumerate().skip(start) {
            let mut chars = line.chars().peekable();
            let mut in_string = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' if in_string => {
                        chars.next();
                    }
                    '"' => in_string = !in_string,
                    '/' if !in_string && chars.peek() == Some(&'/') => break,
                    '\'' if !in_string => {
                        // A char literal such as '{' (a lifetime has no closing quote nearby).
                        let rest: String = chars.clone().take(3).collect();
                        if rest.chars().nth(1) == Some('\'') {
                            chars.next();
                            chars.next();
                        } else if rest.starts_with('\\') {
                            for c in chars.by_ref() {
                                if c == '\'' {
                                    break;
                                }
                            }
                        }
                    }
                    '{' if !in_string => {
                        depth += 1;
                        opened = true;
                    }
                    '}' if !in_string => depth -= 1,
                    ';' if !in_string && !opened && depth == 0 => break 'scan,
                    _ => {}
                }
            }
            if opened && depth == 0 {
                end = idx;
                break;
            }
        }
        if opened {
            found.push((name, start, end - start + 1));
        }
    }
    found
}

/// The seam's rules: node command handlers answer typed replies (no JSON
/// built by hand), and only `core/mod.rs` reaches Core's HTTP layer
/// (`api.rs`); the link, terminals and the rest import its state.
#[test]
fn tidy_command_handlers_are_typed_and_core_layers_point_one_way() {
    let mut offences = Vec::new();
    let handlers = rust_files(&root().join("src/node/commands"));
    for file in handlers
        .into_iter()
        .chain([root().join("src/node/daemon/commands.rs"), root().join("src/node/daemon/terminals.rs")])
    {
        let relative = file.strip_prefix(root()).unwrap().display().to_string();
        for (idx, line) in std::fs::read_to_string(&file).unwrap().lines().enumerate() {
            if line.contains("json!") || line.contains("serde_json::Value") {
                offences.push(format!("{relative}:{}: a handler builds JSON by hand; answer a reply type", idx + 1));
            }
        }
    }
    for file in rust_files(&root().join("src/core")) {
        let relative = file.strip_prefix(root()).unwrap().display().to_string();
        if relative.ends_with("core/mod.rs") || relative.ends_with("core/api.rs") {
            continue;
        }
        for (idx, line) in std::fs::read_to_string(&file).unwrap().lines().enumerate() {
            if line.contains("super::api") || line.contains("core::api") {
                offences.push(format!("{relative}:{}: imports Core's HTTP layer (`api.rs`)", idx + 1));
            }
        }
    }
    assert!(offences.is_empty(), "{offences:#?}");
}
