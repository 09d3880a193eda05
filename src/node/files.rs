//! The node's file service for the inspector: list, read, write (with a
//! content-hash precondition), move and delete inside a workspace. Every
//! filesystem act goes through [`crate::sandbox::Root`], the one boundary:
//! directory handles, no symlink followed, nothing under `.git`. This file
//! adds what the inspector shows (git status, encodings, generated files)
//! and the hash precondition. A person's changes are recorded as
//! `intervention` events in the session they were made from.

use std::path::Path;
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use crate::protocol::{DirEntry, EntryKind, ErrorCode, FileContent, FileState};
use crate::sandbox::{self, Kind, RelPath};

/// Files larger than this are named, not read (nor written).
pub const MAX_FILE: u64 = 1024 * 1024;
/// Entries listed per directory.
const MAX_ENTRIES: usize = 2000;

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error(transparent)]
    Boundary(#[from] sandbox::Error),
    #[error(
        "`{path}` changed on disk since it was read (expected {expected}, found {found}); it was not overwritten: start again from the current file"
    )]
    Conflict { path: String, expected: String, found: String },
    #[error("`{path}` is {size} bytes; the inspector writes files up to {max} bytes")]
    TooLarge { path: String, size: u64, max: u64 },
    #[error(
        "`{path}` holds what looks like a secret, which the inspector shows as [REDACTED]; it was not overwritten: edit it on the machine itself, so the secret is kept"
    )]
    HoldsSecret { path: String },
}

impl FileError {
    /// The command outcome code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Boundary(error) => match error.code() {
                "not_found" => ErrorCode::NotFound,
                "forbidden" => ErrorCode::Forbidden,
                "conflict" => ErrorCode::Conflict,
                "failed" => ErrorCode::Failed,
                _ => ErrorCode::BadInput,
            },
            Self::TooLarge { .. } | Self::HoldsSecret { .. } => ErrorCode::BadInput,
            Self::Conflict { .. } => ErrorCode::Conflict,
        }
    }
}

type Result<T, E = FileError> = std::result::Result<T, E>;

/// A workspace root, held open as a directory handle.
pub struct Root {
    root: sandbox::Root,
}

impl Root {
    pub fn new(dir: &Path) -> Result<Root> {
        Ok(Root { root: sandbox::Root::open(dir)? })
    }

    pub fn dir(&self) -> &Path {
        self.root.path()
    }

    /// The entries of a directory, directories first, with git status.
    pub fn list(&self, relative: &str) -> Result<Vec<DirEntry>> {
        let dir = RelPath::parse(relative)?;
        let shown = dir.display();
        let statuses = self.statuses(&shown);
        let mut entries = Vec::new();
        for entry in self.root.list(&dir, MAX_ENTRIES)? {
            let name = entry.name;
            if shown.is_empty() && name == ".git" {
                continue;
            }
            let kind = match entry.kind {
                Kind::Symlink => EntryKind::Symlink,
                Kind::Dir => EntryKind::Dir,
                Kind::File => EntryKind::File,
                Kind::Other => EntryKind::Other,
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
            entries.push(DirEntry { name, path, kind, size: entry.size, status });
        }
        entries.sort_by(|a, b| (a.kind != EntryKind::Dir, &a.name).cmp(&(b.kind != EntryKind::Dir, &b.name)));
        Ok(entries)
    }

    /// A file's content and what the inspector should say about it. Text
    /// is shown redacted; `redacted` says so, and such a file is not saved
    /// from the inspector (see [`FileError::HoldsSecret`]).
    pub fn read(&self, relative: &str) -> Result<FileContent> {
        let checked = RelPath::parse(relative)?;
        let path = checked.display();
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
            redacted: false,
        };
        let (kind, size) = match self.root.kind(&checked)? {
            Some(found) => found,
            None => {
                content.state = FileState::NotFound;
                return Ok(content);
            }
        };
        content.size = size;
        content.ignored = self.is_ignored(&path);
        content.status = self.statuses(&path).into_iter().find(|(entry, _)| *entry == path).map(|(_, status)| status);
        match kind {
            Kind::Dir => {
                content.state = FileState::Directory;
                return Ok(content);
            }
            Kind::Symlink => {
                let target = self.root.link_target(&checked)?;
                return Err(
                    sandbox::Error::Symlink { path: format!("{path}` (a link to `{target}"), link: path }.into()
                );
            }
            Kind::File | Kind::Other => {}
        }
        let bytes = match self.root.read(&checked, MAX_FILE) {
            Ok(bytes) => bytes,
            Err(sandbox::Error::TooLarge { .. }) => {
                content.state = FileState::TooLarge;
                return Ok(content);
            }
            Err(sandbox::Error::Permission { .. }) => {
                content.state = FileState::PermissionDenied;
                return Ok(content);
            }
            Err(error) => return Err(error.into()),
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
        let shown = crate::store::redact::redact_str(&text);
        content.redacted = matches!(shown, std::borrow::Cow::Owned(_));
        content.text = Some(shown.into_owned());
        content.encoding = Some(encoding.to_string());
        Ok(content)
    }

    /// Writes `text` if the file still hashes to `expected` (`None`: it must
    /// not exist). Returns the new hash.
    pub fn write(&self, relative: &str, text: &str, expected: Option<&str>) -> Result<String> {
        let checked = RelPath::parse(relative)?;
        let path = checked.display();
        if text.len() as u64 > MAX_FILE {
            return Err(FileError::TooLarge { path, size: text.len() as u64, max: MAX_FILE });
        }
        self.check_current(&checked, expected)?;
        self.root.write(&checked, text.as_bytes(), expected.is_none())?;
        Ok(hash(text.as_bytes()))
    }

    /// Refuses unless the file is as the writer last saw it, and unless
    /// the inspector showed it whole (a redacted file is never saved back).
    fn check_current(&self, checked: &RelPath, expected: Option<&str>) -> Result<()> {
        let path = checked.display();
        let current = match self.root.read(checked, MAX_FILE) {
            Ok(bytes) => Some(bytes),
            Err(sandbox::Error::NotFound { .. }) => None,
            Err(error) => return Err(error.into()),
        };
        match (current, expected) {
            (None, None) => Ok(()),
            (Some(_), None) => Err(sandbox::Error::Exists { path }.into()),
            (None, Some(expected)) => Err(FileError::Conflict {
                path,
                expected: expected.to_string(),
                found: "nothing (it was deleted)".into(),
            }),
            (Some(bytes), Some(expected)) => {
                let found = hash(&bytes);
                if found != expected {
                    return Err(FileError::Conflict { path, expected: expected.to_string(), found });
                }
                if matches!(crate::store::redact::redact(&bytes), std::borrow::Cow::Owned(_)) {
                    return Err(FileError::HoldsSecret { path });
                }
                Ok(())
            }
        }
    }

    pub fn rename(&self, from: &str, to: &str) -> Result<(String, String)> {
        let (source, target) = (RelPath::parse(from)?, RelPath::parse(to)?);
        self.root.rename(&source, &target)?;
        Ok((source.display(), target.display()))
    }

    pub fn delete(&self, relative: &str, expected: Option<&str>) -> Result<String> {
        let checked = RelPath::parse(relative)?;
        let path = checked.display();
        if checked.is_root() {
            return Err(sandbox::Error::Directory { path: "the workspace root".into() }.into());
        }
        if expected.is_some() && matches!(self.root.kind(&checked)?, Some((Kind::File, _))) {
            self.check_current_for_delete(&checked, expected)?;
        }
        self.root.remove(&checked)?;
        Ok(path)
    }

    /// A delete checks the hash only (a file with secrets may be deleted).
    fn check_current_for_delete(&self, checked: &RelPath, expected: Option<&str>) -> Result<()> {
        let bytes = self.root.read(checked, MAX_FILE)?;
        let found = hash(&bytes);
        match expected {
            Some(expected) if expected != found => {
                Err(FileError::Conflict { path: checked.display(), expected: expected.to_string(), found })
            }
            _ => Ok(()),
        }
    }

    fn git(&self, args: &[&str]) -> Option<std::process::Output> {
        Command::new("git")
            .current_dir(self.root.path())
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

    fn workspace() -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("ws");
        std::fs::create_dir_all(root.join("src/deep")).unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::write(root.join("src/main.rs"), "fn main() {}\n").unwrap();
        std::os::unix::fs::symlink("/etc", root.join("etc-link")).unwrap();
        let resolved = Root::new(&root).unwrap();
        (dir, resolved)
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
        let exists = root.write("src/main.rs", "x", None).unwrap_err();
        assert!(matches!(exists, FileError::Boundary(sandbox::Error::Exists { .. })), "{exists}");
        root.write("src/main.rs", "again\n", Some(&after)).unwrap();
    }

    /// Round 1 showed the text redacted with the raw file's hash, so a save
    /// replaced the secret on disk with `[REDACTED]`.
    #[test]
    fn a_file_holding_a_secret_is_shown_redacted_and_never_saved_back() {
        let (_dir, root) = workspace();
        let original = "API=sk-proj-abcdefghijklmnopqrstuvwxyz0123\nname=demo\n";
        std::fs::write(root.dir().join(".env.local"), original).unwrap();
        let read = root.read(".env.local").unwrap();
        assert!(read.redacted);
        let shown = read.text.unwrap();
        assert!(!shown.contains("sk-proj"), "{shown}");
        let edited = shown.replace("demo", "demo2");
        let error = root.write(".env.local", &edited, read.hash.as_deref()).unwrap_err();
        assert!(matches!(error, FileError::HoldsSecret { .. }), "{error}");
        assert_eq!(std::fs::read_to_string(root.dir().join(".env.local")).unwrap(), original);
        assert!(!root.read("src/main.rs").unwrap().redacted);
    }

    #[test]
    fn links_are_named_not_followed() {
        let (_dir, root) = workspace();
        let error = root.read("etc-link").unwrap_err();
        assert!(error.to_string().contains("/etc"), "{error}");
        assert!(matches!(root.read("etc-link/passwd"), Err(FileError::Boundary(sandbox::Error::Symlink { .. }))));
        assert_eq!(root.delete("etc-link", None).unwrap(), "etc-link");
        assert!(std::path::Path::new("/etc/passwd").exists());
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
}
