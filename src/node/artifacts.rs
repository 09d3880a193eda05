//! Finding a turn's artifacts in the workspace: the files a check declares
//! (paths or globs) and the files the agent wrote under `[artifacts]
//! folder`. Only regular files inside the workspace that were written since
//! the run began are taken: a symlink is never followed (it could point at
//! `~/.ssh`), a stale file from an earlier run is not passed off as this
//! one's, and caps bound what a turn stores. What is left out is said in a
//! warning, never silently.

use std::path::{Component, Path};
use std::time::{Duration, SystemTime};

/// Entries looked at per pattern, so a glob over a huge tree ends.
const MAX_VISITED: usize = 100_000;

/// A pattern from the config: relative, inside the workspace, a valid glob.
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    let path = Path::new(pattern);
    let inside = !pattern.is_empty()
        && !pattern.contains('\\')
        && path.components().all(|component| matches!(component, Component::Normal(_) | Component::CurDir));
    if !inside {
        return Err(format!("`{pattern}` must be a relative path inside the workspace (no `/` at the start, no `..`)"));
    }
    globset::Glob::new(pattern).map(|_| ()).map_err(|error| format!("`{pattern}` is not a valid glob: {error}"))
}

/// A file to keep.
pub struct Found {
    /// Relative to the workspace, `/`-separated.
    pub path: String,
    pub bytes: Vec<u8>,
}

/// What may be stored: per file, and what is left of the run's total.
pub struct Caps {
    pub max_file: u64,
    pub left: u64,
}

/// The files `patterns` match under `workdir` that were written at or
/// after `since`; `warnings` gets what was left out and why.
pub fn find(
    workdir: &Path,
    patterns: &[String],
    since: SystemTime,
    caps: &mut Caps,
    warnings: &mut Vec<String>,
) -> Vec<Found> {
    let Ok(root) = workdir.canonicalize() else { return Vec::new() };
    // Filesystem clocks are coarser than `SystemTime::now`.
    let since = since.checked_sub(Duration::from_millis(50)).unwrap_or(since);
    let mut found: Vec<Found> = Vec::new();
    for pattern in patterns {
        let Ok(glob) = globset::GlobBuilder::new(pattern).literal_separator(true).build() else { continue };
        let matcher = glob.compile_matcher();
        let mut matched = 0;
        for candidate in candidates(&root, pattern) {
            let relative = candidate.strip_prefix(&root).unwrap_or(&candidate).to_string_lossy().replace('\\', "/");
            if !matcher.is_match(&relative) || found.iter().any(|file| file.path == relative) {
                continue;
            }
            matched += 1;
            match take(&root, &candidate, since, caps) {
                Ok(bytes) => found.push(Found { path: relative, bytes }),
                Err(why) => warnings.push(format!("artifact `{relative}` not stored: {why}")),
            }
        }
        if matched == 0 {
            warnings.push(format!("artifact `{pattern}` matched no file"));
        }
    }
    found
}

/// Paths that may match `pattern`: the literal file, or everything under the
/// pattern's literal leading folders (not following symlinks, skipping `.git`).
fn candidates(root: &Path, pattern: &str) -> Vec<std::path::PathBuf> {
    let is_glob = |part: &str| part.contains(['*', '?', '[', '{']);
    if !is_glob(pattern) {
        let path = root.join(pattern);
        return if path.symlink_metadata().is_ok() { vec![path] } else { Vec::new() };
    }
    let prefix: Vec<&str> = pattern.split('/').take_while(|part| !is_glob(part)).collect();
    let start = root.join(prefix.join("/"));
    walkdir::WalkDir::new(start)
        .follow_links(false)
        .follow_root_links(false)
        .max_depth(64)
        .into_iter()
        .filter_entry(|entry| entry.file_name() != ".git")
        .filter_map(Result::ok)
        .take(MAX_VISITED)
        .filter(|entry| !entry.file_type().is_dir())
        .map(|entry| entry.into_path())
        .collect()
}

/// The file's bytes when it may be kept, or why not.
fn take(root: &Path, path: &Path, since: SystemTime, caps: &mut Caps) -> Result<Vec<u8>, String> {
    let link = path.symlink_metadata().map_err(|error| error.to_string())?;
    if link.file_type().is_symlink() {
        return Err("it is a symlink, which is never followed".into());
    }
    if !link.is_file() {
        return Err("it is not a regular file".into());
    }
    // A folder on the way may be a symlink out of the workspace.
    let real = path.canonicalize().map_err(|error| error.to_string())?;
    if !real.starts_with(root) {
        return Err("it is outside the workspace (through a symlinked folder)".into());
    }
    if link.modified().is_ok_and(|modified| modified < since) {
        return Err("it is older than this run (left by an earlier one?)".into());
    }
    if link.len() > caps.max_file {
        return Err(format!(
            "{} bytes is over the {}-byte cap ([artifacts] max_file_bytes)",
            link.len(),
            caps.max_file
        ));
    }
    if link.len() > caps.left {
        return Err(format!("the turn's artifacts would pass {} bytes ([artifacts] max_turn_bytes)", caps.left));
    }
    let bytes = read_capped(&real, caps.max_file).map_err(|error| error.to_string())?;
    caps.left -= bytes.len() as u64;
    Ok(bytes)
}

/// Reads at most `max` bytes: a file that grows while read is cut, not followed.
fn read_capped(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?.take(max).read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps() -> Caps {
        Caps { max_file: 1000, left: 1500 }
    }

    #[test]
    fn patterns_must_stay_inside() {
        assert!(check_pattern("target/junit.xml").is_ok());
        assert!(check_pattern("shots/**/*.png").is_ok());
        for bad in ["/etc/passwd", "../x", "a/../../b", "", "a\\b"] {
            assert!(check_pattern(bad).is_err(), "{bad}");
        }
        assert!(check_pattern("a/[").unwrap_err().contains("not a valid glob"));
    }

    #[test]
    fn globs_take_fresh_regular_files_and_say_what_they_left() {
        let dir = tempfile::tempdir().unwrap();
        let root = &dir.path().join("workspace");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(root.join("shots/deep")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(root.join("old.xml"), "stale").unwrap();
        let since = SystemTime::now() + Duration::from_millis(200);
        std::thread::sleep(Duration::from_millis(300));
        std::fs::write(root.join("shots/a.png"), "png").unwrap();
        std::fs::write(root.join("shots/deep/b.png"), "png").unwrap();
        std::fs::write(root.join("shots/big.png"), vec![b'x'; 1001]).unwrap();
        std::fs::write(outside.join("secret.png"), "secret").unwrap();
        std::os::unix::fs::symlink("/etc/hostname", root.join("shots/link.png")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("via")).unwrap();
        let mut warnings = Vec::new();
        let patterns = ["shots/*.png", "old.xml", "via/*.png", "via/secret.png", "none/*.xml"].map(String::from);
        let found = find(root, &patterns, since, &mut caps(), &mut warnings);
        let paths: Vec<_> = found.iter().map(|file| file.path.as_str()).collect();
        assert_eq!(paths, ["shots/a.png"], "{warnings:?}");
        let said = warnings.join("\n");
        for expected in [
            "`shots/big.png` not stored: 1001 bytes is over",
            "`shots/link.png` not stored: it is a symlink",
            "`old.xml` not stored: it is older than this run",
            "`via/secret.png` not stored: it is outside the workspace",
            "`none/*.xml` matched no file",
        ] {
            assert!(said.contains(expected), "{expected} in {said}");
        }
        let deep = find(root, &["shots/**/*.png".to_string()], since, &mut caps(), &mut Vec::new());
        assert!(deep.iter().any(|file| file.path == "shots/deep/b.png"));
    }

    #[test]
    fn the_turn_cap_counts_across_files() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["a", "b"] {
            std::fs::write(dir.path().join(name), vec![b'x'; 800]).unwrap();
        }
        let mut warnings = Vec::new();
        let since = SystemTime::now() - Duration::from_secs(5);
        let found = find(dir.path(), &["*".to_string()], since, &mut caps(), &mut warnings);
        assert_eq!(found.len(), 1);
        assert!(warnings[0].contains("max_turn_bytes"), "{warnings:?}");
    }
}
