//! The node's file service for the inspector: list, read, write (with a
//! content-hash precondition), move and delete inside a workspace. Every
//! path goes through [`Root::resolve`], the one boundary check: relative,
//! no `..`, not under `.git`, and after symlinks still inside the root.
//! A person's changes are recorded as `intervention` events in the session
//! they were made from.

use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use crate::protocol::{DirEntry, EntryKind, FileContent, FileState};

/// Files larger than this are named, not read (nor written).
pub const MAX_FILE: u64 = 1024 * 1024;
/// Entries listed per directory.
const MAX_ENTRIES: usize = 2000;

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("`{path}` is absolute: give a path inside the workspace, relative to its root")]
    Absolute { path: String },
    #[error("`{path}` climbs out with `..`: give a path inside the workspace")]
    Parent { path: String },
    #[error("`{path}` leads outside the workspace (through a symlink)")]
    Outside { path: String },
    #[error("`{path}` is inside `.git`, which the inspector leaves alone")]
    GitDir { path: String },
    #[error("`{path}` does not exist")]
    NotFound { path: String },
    #[error("`{path}` cannot be read or written: permission denied")]
    Permission { path: String },
    #[error(
        "`{path}` changed on disk since it was read (expected {expected}, found {found}); it was not overwritten: start again from the current file"
    )]
    Conflict { path: String, expected: String, found: String },
    #[error("`{path}` already exists")]
    Exists { path: String },
    #[error("`{path}` is {size} bytes; the inspector writes files up to {max} bytes")]
    TooLarge { path: String, size: u64, max: u64 },
    #[error("`{path}` is a directory")]
    Directory { path: String },
    #[error("cannot {action} `{path}`: {source}")]
    Io {
        action: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl FileError {
    /// The command outcome code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Absolute { .. } | Self::Parent { .. } | Self::Outside { .. } | Self::GitDir { .. } => "bad_input",
            Self::TooLarge { .. } | Self::Directory { .. } => "bad_input",
            Self::NotFound { .. } => "not_found",
            Self::Permission { .. } => "forbidden",
            Self::Conflict { .. } | Self::Exists { .. } => "conflict",
            Self::Io { .. } => "failed",
        }
    }
}

type Result<T, E = FileError> = std::result::Result<T, E>;

fn io<'a>(action: &'static str, path: &'a str) -> impl FnOnce(std::io::Error) -> FileError + 'a {
    move |source| match source.kind() {
        ErrorKind::NotFound => FileError::NotFound { path: path.to_string() },
        ErrorKind::PermissionDenied => FileError::Permission { path: path.to_string() },
        _ => FileError::Io { action, path: path.to_string(), source },
    }
}

/// A workspace root, canonical.
pub struct Root {
    dir: PathBuf,
}

impl Root {
    pub fn new(dir: &Path) -> Result<Root> {
        let shown = dir.display().to_string();
        Ok(Root { dir: dir.canonicalize().map_err(io("open", &shown))? })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The real path of `relative` inside the root, whether or not it
    /// exists yet; an error for anything that could reach outside it.
    pub fn resolve(&self, relative: &str) -> Result<PathBuf> {
        let path = relative.to_string();
        if relative.contains('\0') {
            return Err(FileError::Outside { path });
        }
        let mut clean = PathBuf::new();
        for component in Path::new(relative).components() {
            match component {
                Component::Normal(part) => clean.push(part),
                Component::CurDir => {}
                Component::ParentDir => return Err(FileError::Parent { path }),
                Component::RootDir | Component::Prefix(_) => return Err(FileError::Absolute { path }),
            }
        }
        // The deepest part that exists decides, after its symlinks.
        let mut existing = self.dir.join(&clean);
        let mut missing = Vec::new();
        while existing.symlink_metadata().is_err() {
            let Some(name) = existing.file_name().map(|name| name.to_os_string()) else {
                return Err(FileError::Outside { path });
            };
            missing.push(name);
            if !existing.pop() {
                return Err(FileError::Outside { path });
            }
        }
        let mut real = existing.canonicalize().map_err(io("resolve", &path))?;
        if !real.starts_with(&self.dir) {
            return Err(FileError::Outside { path });
        }
        real.extend(missing.iter().rev());
        let inside = real.strip_prefix(&self.dir).expect("holds because it was checked");
        if inside.components().next().is_some_and(|first| first.as_os_str() == ".git") {
            return Err(FileError::GitDir { path });
        }
        Ok(real)
    }

    /// `real` relative to the root, `/`-separated.
    fn relative(&self, real: &Path) -> String {
        let inside = real.strip_prefix(&self.dir).unwrap_or(real);
        inside.components().map(|part| part.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
    }

    /// The entries of a directory, directories first, with git status.
    pub fn list(&self, relative: &str) -> Result<Vec<DirEntry>> {
        let dir = self.resolve(relative)?;
        let shown = self.relative(&dir);
        if !dir.is_dir() {
            return Err(match dir.exists() {
                true => FileError::Directory { path: shown },
                false => FileError::NotFound { path: shown },
            });
        }
        let statuses = self.statuses(&shown);
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(io("list", &shown))?.take(MAX_ENTRIES) {
            let entry = entry.map_err(io("list", &shown))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if shown.is_empty() && name == ".git" {
                continue;
            }
            let meta = entry.path().symlink_metadata().map_err(io("list", &name))?;
            let kind = if meta.file_type().is_symlink() {
                EntryKind::Symlink
            } else if meta.is_dir() {
                EntryKind::Dir
            } else if meta.is_file() {
                EntryKind::File
            } else {
                EntryKind::Other
            };
            let path = if shown.is_empty() { name.clone() } else { format!("{shown}/{name}") };
            let status =
                statuses.iter().find(|(entry, _)| *entry == path).map(|(_, status)| status.clone()).or_else(|| {
                    let prefix = format!("{path}/");
                    statuses
                        .iter()
                        .find(|(entry, _)| entry.starts_with(&prefix))
                        .map(|(_, status)| if status == "ignored" { status.clone() } else { "modified".to_string() })
                });
            entries.push(DirEntry { name, path, kind, size: meta.len(), status });
        }
        entries.sort_by(|a, b| (a.kind != EntryKind::Dir, &a.name).cmp(&(b.kind != EntryKind::Dir, &b.name)));
        Ok(entries)
    }

    /// A file's content and what the inspector should say about it.
    pub fn read(&self, relative: &str) -> Result<FileContent> {
        let real = self.resolve(relative)?;
        let path = self.relative(&real);
        let mut content = FileContent {
            path: path.clone(),
            state: FileState::Text,
            size: 0,
            hash: None,
            encoding: None,
            text: None,
            ignored: false,
            generated: false,
            status: None,
        };
        let meta = match std::fs::metadata(&real) {
            Ok(meta) => meta,
            Err(error) if error.kind() == ErrorKind::NotFound => {
                content.state = FileState::NotFound;
                return Ok(content);
            }
            Err(error) if error.kind() == ErrorKind::PermissionDenied => {
                content.state = FileState::PermissionDenied;
                return Ok(content);
            }
            Err(error) => return Err(io("read", &path)(error)),
        };
        content.size = meta.len();
        content.ignored = self.is_ignored(&path);
        content.status = self.statuses(&path).into_iter().find(|(entry, _)| *entry == path).map(|(_, status)| status);
        if meta.is_dir() {
            content.state = FileState::Directory;
            return Ok(content);
        }
        if meta.len() > MAX_FILE {
            content.state = FileState::TooLarge;
            return Ok(content);
        }
        let bytes = match std::fs::read(&real) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == ErrorKind::PermissionDenied => {
                content.state = FileState::PermissionDenied;
                return Ok(content);
            }
            Err(error) => return Err(io("read", &path)(error)),
        };
        content.hash = Some(hash(&bytes));
        if bytes.iter().take(8000).any(|byte| *byte == 0) && !has_utf16_bom(&bytes) {
            content.state = FileState::Binary;
            return Ok(content);
        }
        let (text, encoding) = decode(&bytes);
        let head: String = text.lines().take(5).collect::<Vec<_>>().join("\n");
        content.generated = head.contains("@generated")
            || head.contains("DO NOT EDIT")
            || self.attribute_set(&path, "linguist-generated");
        content.text = Some(crate::store::redact::redact_str(&text).into_owned());
        content.encoding = Some(encoding.to_string());
        Ok(content)
    }

    /// Writes `text` if the file still hashes to `expected` (`None`: it must
    /// not exist). Returns the new hash.
    pub fn write(&self, relative: &str, text: &str, expected: Option<&str>) -> Result<String> {
        let real = self.resolve(relative)?;
        let path = self.relative(&real);
        if text.len() as u64 > MAX_FILE {
            return Err(FileError::TooLarge { path, size: text.len() as u64, max: MAX_FILE });
        }
        self.check_current(&real, &path, expected)?;
        if let Some(parent) = real.parent() {
            std::fs::create_dir_all(parent).map_err(io("create the folder of", &path))?;
        }
        // Write beside and rename, so a crash never leaves half a file.
        let partial = real.with_file_name(format!(
            ".{}.cortex-partial",
            real.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default()
        ));
        std::fs::write(&partial, text).map_err(io("write", &path))?;
        if let Ok(meta) = std::fs::metadata(&real) {
            let _ = std::fs::set_permissions(&partial, meta.permissions());
        }
        std::fs::rename(&partial, &real).map_err(io("write", &path))?;
        Ok(hash(text.as_bytes()))
    }

    /// Refuses unless the file is as the writer last saw it.
    fn check_current(&self, real: &Path, path: &str, expected: Option<&str>) -> Result<()> {
        match (std::fs::read(real), expected) {
            (Err(error), None) if error.kind() == ErrorKind::NotFound => Ok(()),
            (Ok(_), None) => Err(FileError::Exists { path: path.to_string() }),
            (Err(error), Some(expected)) if error.kind() == ErrorKind::NotFound => Err(FileError::Conflict {
                path: path.to_string(),
                expected: expected.to_string(),
                found: "nothing (it was deleted)".into(),
            }),
            (Ok(bytes), Some(expected)) => {
                let found = hash(&bytes);
                if found == expected {
                    Ok(())
                } else {
                    Err(FileError::Conflict { path: path.to_string(), expected: expected.to_string(), found })
                }
            }
            (Err(error), _) if real.is_dir() => {
                let _ = error;
                Err(FileError::Directory { path: path.to_string() })
            }
            (Err(error), _) => Err(io("read", path)(error)),
        }
    }

    pub fn rename(&self, from: &str, to: &str) -> Result<(String, String)> {
        let (source, target) = (self.resolve(from)?, self.resolve(to)?);
        let (from, to) = (self.relative(&source), self.relative(&target));
        if source.symlink_metadata().is_err() {
            return Err(FileError::NotFound { path: from });
        }
        if target.symlink_metadata().is_ok() {
            return Err(FileError::Exists { path: to });
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io("create the folder of", &to))?;
        }
        std::fs::rename(&source, &target).map_err(io("move", &from))?;
        Ok((from, to))
    }

    pub fn delete(&self, relative: &str, expected: Option<&str>) -> Result<String> {
        let real = self.resolve(relative)?;
        let path = self.relative(&real);
        if path.is_empty() {
            return Err(FileError::Directory { path: "the workspace root".into() });
        }
        let meta = real.symlink_metadata().map_err(io("delete", &path))?;
        if meta.is_dir() {
            std::fs::remove_dir(&real).map_err(io("delete (only empty folders are deleted)", &path))?;
        } else {
            if expected.is_some() {
                self.check_current(&real, &path, expected)?;
            }
            std::fs::remove_file(&real).map_err(io("delete", &path))?;
        }
        Ok(path)
    }

    fn git(&self, args: &[&str]) -> Option<std::process::Output> {
        Command::new("git")
            .current_dir(&self.dir)
            // Reading status must not take the person's index lock.
            .env("GIT_OPTIONAL_LOCKS", "0")
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()
    }

    /// `(path, status)` for changed, untracked and ignored paths under `path`.
    fn statuses(&self, path: &str) -> Vec<(String, String)> {
        let spec = if path.is_empty() { ".".to_string() } else { path.to_string() };
        let Some(output) =
            self.git(&["status", "--porcelain=v1", "-z", "--ignored=matching", "--untracked-files=all", "--", &spec])
        else {
            return Vec::new();
        };
        let text = String::from_utf8_lossy(&output.stdout);
        let mut out = Vec::new();
        let mut fields = text.split('\0');
        while let Some(entry) = fields.next() {
            if entry.len() < 4 {
                continue;
            }
            let (code, name) = entry.split_at(3);
            let status = match code.trim() {
                "??" => "untracked",
                "!!" => "ignored",
                code if code.contains('U') => "conflicted",
                code if code.starts_with('A') => "added",
                code if code.contains('D') => "deleted",
                code if code.starts_with('R') => {
                    fields.next(); // the old name
                    "renamed"
                }
                _ => "modified",
            };
            out.push((name.trim_end_matches('/').to_string(), status.to_string()));
        }
        out
    }

    fn is_ignored(&self, path: &str) -> bool {
        self.git(&["check-ignore", "-q", "--", path]).is_some_and(|output| output.status.success())
    }

    fn attribute_set(&self, path: &str, attribute: &str) -> bool {
        self.git(&["check-attr", attribute, "--", path]).is_some_and(|output| {
            let text = String::from_utf8_lossy(&output.stdout);
            text.trim_end().ends_with(": set") || text.trim_end().ends_with(": true")
        })
    }
}

pub fn hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn has_utf16_bom(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF])
}

/// Text from bytes: UTF-8 (a BOM dropped), UTF-16 with a BOM, or else
/// Latin-1, which maps every byte.
fn decode(bytes: &[u8]) -> (String, &'static str) {
    if let Ok(text) = std::str::from_utf8(bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes)) {
        return (text.to_string(), "utf-8");
    }
    let utf16 = |bytes: &[u8], little: bool| -> String {
        let units: Vec<u16> =
            bytes
                .chunks_exact(2)
                .map(|pair| {
                    if little { u16::from_le_bytes([pair[0], pair[1]]) } else { u16::from_be_bytes([pair[0], pair[1]]) }
                })
                .collect();
        String::from_utf16_lossy(&units)
    };
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return (utf16(rest, true), "utf-16le");
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return (utf16(rest, false), "utf-16be");
    }
    (bytes.iter().map(|byte| *byte as char).collect(), "latin-1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn workspace() -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("ws");
        std::fs::create_dir_all(root.join("src/deep")).unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::create_dir_all(dir.path().join("outside")).unwrap();
        std::fs::write(root.join("src/main.rs"), "fn main() {}\n").unwrap();
        std::os::unix::fs::symlink("/etc", root.join("etc-link")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("outside"), root.join("out-link")).unwrap();
        std::os::unix::fs::symlink("src", root.join("src-link")).unwrap();
        let resolved = Root::new(&root).unwrap();
        (dir, resolved)
    }

    #[test]
    fn escapes_are_refused_with_their_reason() {
        let (_dir, root) = workspace();
        let kind = |path: &str| match root.resolve(path) {
            Ok(_) => "ok",
            Err(FileError::Absolute { .. }) => "absolute",
            Err(FileError::Parent { .. }) => "parent",
            Err(FileError::Outside { .. }) => "outside",
            Err(FileError::GitDir { .. }) => "git",
            Err(_) => "other",
        };
        assert_eq!(kind("src/main.rs"), "ok");
        assert_eq!(kind("src/new/file.txt"), "ok");
        assert_eq!(kind("src-link/main.rs"), "ok");
        assert_eq!(kind("../outside"), "parent");
        assert_eq!(kind("src/../../outside"), "parent");
        assert_eq!(kind("/etc/passwd"), "absolute");
        assert_eq!(kind("etc-link/passwd"), "outside");
        assert_eq!(kind("etc-link"), "outside");
        assert_eq!(kind("out-link/new.txt"), "outside");
        assert_eq!(kind(".git/config"), "git");
        assert_eq!(kind("a\0b"), "outside");
    }

    #[test]
    fn a_write_needs_the_hash_it_read() {
        let (_dir, root) = workspace();
        let read = root.read("src/main.rs").unwrap();
        assert_eq!(read.state, FileState::Text);
        let before = read.hash.unwrap();
        let after = root.write("src/main.rs", "fn main() { run(); }\n", Some(&before)).unwrap();
        let stale = root.write("src/main.rs", "lost\n", Some(&before)).unwrap_err();
        assert!(matches!(stale, FileError::Conflict { .. }), "{stale}");
        assert_eq!(std::fs::read_to_string(root.dir().join("src/main.rs")).unwrap(), "fn main() { run(); }\n");
        assert!(matches!(root.write("src/main.rs", "x", None), Err(FileError::Exists { .. })));
        root.write("src/main.rs", "again\n", Some(&after)).unwrap();
    }

    #[test]
    fn text_encodings_binary_and_size_have_their_states() {
        let (_dir, root) = workspace();
        std::fs::write(root.dir().join("latin.txt"), b"caf\xe9\n").unwrap();
        std::fs::write(root.dir().join("wide.txt"), [0xFF, 0xFE, b'h', 0, b'i', 0]).unwrap();
        std::fs::write(root.dir().join("blob.bin"), [0u8, 1, 2, 3]).unwrap();
        std::fs::File::create(root.dir().join("huge.log")).unwrap().set_len(MAX_FILE + 1).unwrap();
        let latin = root.read("latin.txt").unwrap();
        assert_eq!((latin.encoding.as_deref(), latin.text.as_deref()), (Some("latin-1"), Some("café\n")));
        assert_eq!(root.read("wide.txt").unwrap().text.as_deref(), Some("hi"));
        assert_eq!(root.read("blob.bin").unwrap().state, FileState::Binary);
        assert_eq!(root.read("huge.log").unwrap().state, FileState::TooLarge);
        assert_eq!(root.read("nope.txt").unwrap().state, FileState::NotFound);
        assert_eq!(root.read("src").unwrap().state, FileState::Directory);
    }

    proptest! {
        /// Whatever the path, a resolved one lies inside the root and never
        /// in `.git`; everything else is an error.
        #[test]
        fn resolved_paths_stay_inside(parts in proptest::collection::vec(
            prop_oneof![
                Just("src"), Just("deep"), Just(".."), Just("."), Just(""), Just(".git"),
                Just("etc-link"), Just("out-link"), Just("src-link"), Just("new"), Just("/"), Just("main.rs"),
            ],
            0..6,
        )) {
            let (_dir, root) = workspace();
            let path = parts.join("/");
            if let Ok(real) = root.resolve(&path) {
                prop_assert!(real.starts_with(root.dir()), "{path} → {}", real.display());
                let inside = real.strip_prefix(root.dir()).unwrap();
                prop_assert!(inside.components().next().is_none_or(|first| first.as_os_str() != ".git"), "{path}");
                prop_assert!(!path.split('/').any(|part| part == ".."), "{path} was accepted");
            }
        }
    }
}
