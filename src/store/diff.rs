//! Diffs ready to show: the files a turn (or a whole session) changed, with
//! their hunks computed from the snapshot trees by `similar`. The panel shows
//! these; `session diff` prints the stored patch instead.

use std::time::Duration;

use gix::ObjectId;
use similar::{ChangeTag, TextDiff};

use super::{Error, GitContext, Result, Store, git, redact};
use crate::protocol::{DiffHunk, DiffLine, FileDiff, FileStatus, SessionId};

/// Larger blobs are named, not shown line by line.
const MAX_BLOB: usize = 1024 * 1024;
/// A whole-session diff says which turns touched each file, up to this many.
const MAX_TRACED_TURNS: u32 = 200;

/// One entry of `git diff --raw`.
struct RawEntry {
    old_mode: String,
    new_mode: String,
    old: ObjectId,
    new: ObjectId,
    status: u8,
    path: String,
    old_path: Option<String>,
}

impl Store {
    /// The files changed by turn `turn`, or by the whole session (from the
    /// base of turn 1 to the working tree after the last turn), with
    /// `context` lines around each change.
    pub fn session_file_diffs(&self, id: &SessionId, turn: Option<u32>, context: u32) -> Result<Vec<FileDiff>> {
        let view = self.read_session(id)?;
        let turns = view.meta.turns;
        let (from, to) = match turn {
            Some(turn) if turn == 0 || turn > turns => {
                return Err(Error::NoSuchTurn { session: id.clone(), turn, turns });
            }
            Some(turn) => (format!("turns/{turn}/base"), format!("turns/{turn}/worktree")),
            None => ("turns/1/base".to_string(), format!("turns/{turns}/worktree")),
        };
        let (Some(from), Some(to)) = (self.tree_at(&view, &from)?, self.tree_at(&view, &to)?) else {
            return Ok(Vec::new());
        };
        let mut files = Vec::new();
        for entry in self.raw_diff(from, to, true)? {
            files.push(self.file_diff(entry, context as usize)?);
        }
        if turn.is_none() && turns > 1 {
            for turn in 1..=turns.min(MAX_TRACED_TURNS) {
                let base = self.tree_at(&view, &format!("turns/{turn}/base"))?;
                let after = self.tree_at(&view, &format!("turns/{turn}/worktree"))?;
                let (Some(base), Some(after)) = (base, after) else { continue };
                for entry in self.raw_diff(base, after, false)? {
                    if let Some(file) = files.iter_mut().find(|file| file.path == entry.path) {
                        file.turns.push(turn);
                    }
                }
            }
        } else if turns == 1 || turn.is_some() {
            let traced = turn.unwrap_or(1);
            files.iter_mut().for_each(|file| file.turns = vec![traced]);
        }
        Ok(files)
    }

    fn raw_diff(&self, from: ObjectId, to: ObjectId, renames: bool) -> Result<Vec<RawEntry>> {
        let renames = if renames { "--find-renames" } else { "--no-renames" };
        let out = git::run(
            &self.workdir,
            ["diff", "--raw", "-z", "--no-abbrev", renames, &from.to_string(), &to.to_string()],
            &[],
        )?;
        parse_raw(&out)
    }

    fn file_diff(&self, entry: RawEntry, context: usize) -> Result<FileDiff> {
        let status = match entry.status {
            b'A' => FileStatus::Added,
            b'D' => FileStatus::Deleted,
            b'R' => FileStatus::Renamed,
            b'T' => FileStatus::TypeChanged,
            _ => FileStatus::Modified,
        };
        let old = self.blob_or_empty(entry.old, &entry.old_mode)?;
        let new = self.blob_or_empty(entry.new, &entry.new_mode)?;
        let mut file = FileDiff {
            path: entry.path,
            old_path: entry.old_path,
            status,
            binary: is_binary(&old) || is_binary(&new),
            too_large: old.len() > MAX_BLOB || new.len() > MAX_BLOB,
            insertions: 0,
            deletions: 0,
            hunks: Vec::new(),
            turns: Vec::new(),
        };
        if file.binary || file.too_large {
            return Ok(file);
        }
        let old = redact::redact_str(&String::from_utf8_lossy(&old)).into_owned();
        let new = redact::redact_str(&String::from_utf8_lossy(&new)).into_owned();
        let diff = TextDiff::configure().timeout(Duration::from_secs(2)).diff_lines(&old, &new);
        for group in diff.grouped_ops(context) {
            let (Some(first), Some(last)) = (group.first(), group.last()) else { continue };
            // As in `diff -u`: an empty side starts at the line before.
            let range = |start: usize, end: usize| {
                let lines = (end - start) as u32;
                (if lines == 0 { start as u32 } else { start as u32 + 1 }, lines)
            };
            let (old_start, old_lines) = range(first.old_range().start, last.old_range().end);
            let (new_start, new_lines) = range(first.new_range().start, last.new_range().end);
            let mut hunk = DiffHunk { old_start, old_lines, new_start, new_lines, lines: Vec::new() };
            for op in &group {
                for change in diff.iter_changes(op) {
                    let tag = match change.tag() {
                        ChangeTag::Equal => ' ',
                        ChangeTag::Insert => {
                            file.insertions += 1;
                            '+'
                        }
                        ChangeTag::Delete => {
                            file.deletions += 1;
                            '-'
                        }
                    };
                    hunk.lines.push(DiffLine {
                        tag,
                        old: change.old_index().map(|index| index as u32 + 1),
                        new: change.new_index().map(|index| index as u32 + 1),
                        text: change.value().trim_end_matches(['\n', '\r']).to_string(),
                    });
                }
            }
            file.hunks.push(hunk);
        }
        Ok(file)
    }

    /// A blob's bytes; nothing for the null id and for submodule entries.
    fn blob_or_empty(&self, id: ObjectId, mode: &str) -> Result<Vec<u8>> {
        if id.is_null() || mode == "160000" {
            return Ok(Vec::new());
        }
        let blob = self.repo.find_blob(id).git(|| format!("cannot read blob {id}"))?;
        Ok(blob.data.clone())
    }
}

/// Git's own rule: a NUL in the first 8,000 bytes makes a file binary.
fn is_binary(bytes: &[u8]) -> bool {
    bytes.iter().take(8000).any(|byte| *byte == 0)
}

/// Parses `git diff --raw -z --no-abbrev`: `:<old mode> <new mode> <old>
/// <new> <status>` NUL `<path>` NUL, with a second path for renames.
fn parse_raw(out: &[u8]) -> Result<Vec<RawEntry>> {
    let corrupt = |detail: &str| Error::Corrupt { what: "git diff --raw output".into(), detail: detail.into() };
    let mut fields = out.split(|byte| *byte == 0).filter(|field| !field.is_empty());
    let mut entries = Vec::new();
    while let Some(header) = fields.next() {
        let header = String::from_utf8_lossy(header);
        let parts: Vec<&str> = header.trim_start_matches(':').split(' ').collect();
        let [old_mode, new_mode, old, new, status] = parts[..] else {
            return Err(corrupt(&format!("unexpected header `{header}`")));
        };
        let oid = |hex: &str| ObjectId::from_hex(hex.as_bytes()).map_err(|error| corrupt(&error.to_string()));
        let status = status.bytes().next().ok_or_else(|| corrupt("empty status"))?;
        let first = fields.next().ok_or_else(|| corrupt("a path is missing"))?;
        let first = String::from_utf8_lossy(first).into_owned();
        let (path, old_path) = if matches!(status, b'R' | b'C') {
            let second = fields.next().ok_or_else(|| corrupt("a renamed path is missing"))?;
            (String::from_utf8_lossy(second).into_owned(), Some(first))
        } else {
            (first, None)
        };
        entries.push(RawEntry {
            old_mode: old_mode.to_string(),
            new_mode: new_mode.to_string(),
            old: oid(old)?,
            new: oid(new)?,
            status,
            path,
            old_path,
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_output_with_a_rename_parses() {
        let zero = "0".repeat(40);
        let one = "1".repeat(40);
        let out = format!(
            ":100644 100644 {one} {one} M\0src/a.rs\0:100644 100644 {one} {one} R090\0old.txt\0new.txt\0\
             :000000 100644 {zero} {one} A\0added\0"
        );
        let entries = parse_raw(out.as_bytes()).unwrap();
        let described: Vec<_> = entries
            .iter()
            .map(|entry| (entry.status as char, entry.path.as_str(), entry.old_path.as_deref(), entry.old.is_null()))
            .collect();
        assert_eq!(
            described,
            [('M', "src/a.rs", None, false), ('R', "new.txt", Some("old.txt"), false), ('A', "added", None, true)]
        );
        assert!(parse_raw(b":100644 oops\0path\0").is_err());
    }
}
