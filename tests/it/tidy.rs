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
    ("sandbox", &[]),
    ("store", &["protocol"]),
    ("index", &["store", "protocol"]),
    ("provider", &["sandbox", "protocol"]),
    ("node", &["provider", "store", "sandbox", "protocol"]),
    ("core", &["index", "store", "protocol"]),
    ("web", &["core", "protocol"]),
    ("cli", &["core", "web", "node", "store", "protocol"]),
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
