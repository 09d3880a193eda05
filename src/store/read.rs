//! Reading sessions back: the tip's `meta.toml`, its event chunks and turn
//! files, plus the repairs made on open (tip verification, stale locks).

use std::time::Duration;

use super::meta::Meta;
use super::{Error, GitContext, IoContext, Result, Store, redact};
use crate::protocol::{Event, SessionId};
use gix::ObjectId;

/// A session as its tip commit describes it.
#[derive(Clone, Debug)]
pub struct SessionView {
    pub tip: ObjectId,
    pub tree: ObjectId,
    pub meta: Meta,
}

/// One file of a working-tree snapshot: its blob, its mode in octal
/// (`100644`, `100755`, `120000`), its content as stored.
pub struct SnapshotFile {
    pub oid: ObjectId,
    pub mode: String,
    pub data: Vec<u8>,
}

/// The files of one turn in a session tree.
#[derive(Clone, Debug, Default)]
pub struct TurnFiles {
    pub prompt: Option<String>,
    pub diff: Option<String>,
    pub worktree: Option<ObjectId>,
}

/// A ref lock file older than this, on a session this process holds the
/// session lock for, was left by a crash.
const STALE_LOCK_AGE: Duration = Duration::from_secs(5);

impl Clone for Store {
    fn clone(&self) -> Self {
        Store { repo: self.repo.clone(), workdir: self.workdir.clone() }
    }
}

impl Store {
    /// Writes a blob after redacting secrets: the one way content enters a
    /// session tree.
    pub(crate) fn write_blob(&self, content: &[u8]) -> Result<ObjectId> {
        let content = redact::redact(content);
        Ok(self.repo.write_blob(content.as_ref()).git(|| "cannot write a blob".into())?.detach())
    }

    /// Writes a JSON-lines blob (an event or raw chunk) redacting each line
    /// on its own, so no match ever spans two events.
    pub(crate) fn write_lines_blob(&self, content: &[u8]) -> Result<ObjectId> {
        let content = redact::redact_lines(content);
        Ok(self.repo.write_blob(content.as_ref()).git(|| "cannot write a blob".into())?.detach())
    }

    pub(crate) fn commit_tree(&self, commit: ObjectId) -> Result<ObjectId> {
        let commit = self.repo.find_commit(commit).git(|| format!("cannot read commit {commit}"))?;
        Ok(commit.tree_id().git(|| "cannot read a commit's tree".into())?.detach())
    }

    pub(crate) fn read_meta(&self, tree: ObjectId) -> Result<Meta> {
        let bytes = self
            .read_blob_at(tree, "meta.toml")?
            .ok_or_else(|| Error::Corrupt { what: format!("tree {tree}"), detail: "meta.toml is missing".into() })?;
        let text = String::from_utf8_lossy(&bytes);
        Meta::from_toml(&text).map_err(|detail| Error::Corrupt { what: format!("meta.toml in tree {tree}"), detail })
    }

    pub(crate) fn read_blob_at(&self, tree: ObjectId, path: &str) -> Result<Option<Vec<u8>>> {
        let tree = self.repo.find_tree(tree).git(|| format!("cannot read tree {tree}"))?;
        let Some(entry) = tree.lookup_entry_by_path(path).git(|| format!("cannot look up `{path}`"))? else {
            return Ok(None);
        };
        if !entry.mode().is_blob() {
            return Ok(None);
        }
        let blob = self.repo.find_blob(entry.object_id()).git(|| format!("cannot read `{path}`"))?;
        Ok(Some(blob.data.clone()))
    }

    /// A file as turn `turn`'s working-tree snapshot kept it (redacted as
    /// stored); `None` when the snapshot has no file at `path`.
    pub fn snapshot_file(&self, view: &SessionView, turn: u32, path: &str) -> Result<Option<SnapshotFile>> {
        let full = format!("turns/{turn}/worktree/{path}");
        let tree = self.repo.find_tree(view.tree).git(|| "cannot read a session tree".into())?;
        let Some(entry) = tree.lookup_entry_by_path(&full).git(|| format!("cannot look up `{full}`"))? else {
            return Ok(None);
        };
        if !(entry.mode().is_blob() || entry.mode().is_link()) {
            return Ok(None);
        }
        let blob = self.repo.find_blob(entry.object_id()).git(|| format!("cannot read `{full}`"))?;
        Ok(Some(SnapshotFile {
            oid: entry.object_id(),
            mode: format!("{:o}", entry.mode().value()),
            data: blob.data.clone(),
        }))
    }

    pub fn view_at(&self, tip: ObjectId) -> Result<SessionView> {
        let tree = self.commit_tree(tip)?;
        let meta = self.read_meta(tree)?;
        Ok(SessionView { tip, tree, meta })
    }

    pub fn read_session(&self, id: &SessionId) -> Result<SessionView> {
        let tip = self.session_tip(id)?.ok_or_else(|| Error::SessionNotFound(id.clone()))?;
        self.view_at(tip)
    }

    /// Events of every chunk that starts after `after_seq`, in seq order.
    /// Chunks are written whole, so one that starts at or before `after_seq`
    /// was seen entirely by whoever read up to `after_seq`.
    pub fn events_after(&self, view: &SessionView, after_seq: u64) -> Result<Vec<Event>> {
        let mut chunks = Vec::new();
        for bucket in self.tree_entries(view.tree, "events")? {
            for (name, oid) in self.tree_entries_of(bucket.1)? {
                let Some(first_seq) = name.strip_suffix(".jsonl").and_then(|stem| stem.parse::<u64>().ok()) else {
                    continue;
                };
                if first_seq > after_seq {
                    chunks.push((first_seq, oid));
                }
            }
        }
        chunks.sort();
        let mut events = Vec::new();
        for (first_seq, oid) in chunks {
            let blob = self.repo.find_blob(oid).git(|| format!("cannot read event chunk {first_seq}"))?;
            for (line_idx, line) in blob.data.split(|byte| *byte == b'\n').enumerate() {
                if line.is_empty() {
                    continue;
                }
                let event: Event = serde_json::from_slice(line).map_err(|error| Error::Corrupt {
                    what: format!("{} chunk {first_seq} line {}", view.meta.id, line_idx + 1),
                    detail: error.to_string(),
                })?;
                events.push(event);
            }
        }
        Ok(events)
    }

    fn tree_entries(&self, tree: ObjectId, path: &str) -> Result<Vec<(String, ObjectId)>> {
        let tree = self.repo.find_tree(tree).git(|| format!("cannot read tree {tree}"))?;
        match tree.lookup_entry_by_path(path).git(|| format!("cannot look up `{path}`"))? {
            Some(entry) if entry.mode().is_tree() => self.tree_entries_of(entry.object_id()),
            _ => Ok(Vec::new()),
        }
    }

    fn tree_entries_of(&self, tree: ObjectId) -> Result<Vec<(String, ObjectId)>> {
        let tree = self.repo.find_tree(tree).git(|| format!("cannot read tree {tree}"))?;
        let decoded = tree.decode().git(|| format!("cannot decode tree {tree:?}"))?;
        Ok(decoded.entries.iter().map(|entry| (entry.filename.to_string(), entry.oid.to_owned())).collect())
    }

    /// `turns/<n>/…` of a session.
    pub fn turn_files(&self, view: &SessionView, turn: u32) -> Result<TurnFiles> {
        let base = format!("turns/{turn}");
        let text = |name: &str| -> Result<Option<String>> {
            Ok(self
                .read_blob_at(view.tree, &format!("{base}/{name}"))?
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
        };
        let tree = self.repo.find_tree(view.tree).git(|| "cannot read a session tree".into())?;
        let worktree = tree
            .lookup_entry_by_path(format!("{base}/worktree"))
            .git(|| "cannot look up a worktree snapshot".into())?
            .filter(|entry| entry.mode().is_tree())
            .map(|entry| entry.object_id());
        Ok(TurnFiles { prompt: text("prompt.md")?, diff: text("diff.patch")?, worktree })
    }

    /// The tree stored at `path` in a session tree, if any.
    pub fn tree_at(&self, view: &SessionView, path: &str) -> Result<Option<ObjectId>> {
        let tree = self.repo.find_tree(view.tree).git(|| "cannot read a session tree".into())?;
        Ok(tree
            .lookup_entry_by_path(path)
            .git(|| format!("cannot look up `{path}`"))?
            .filter(|entry| entry.mode().is_tree())
            .map(|entry| entry.object_id()))
    }

    /// A file the session keeps under `turns/` (check output, a prompt, a
    /// stored diff), named by its path in the session tree. Any other path
    /// is refused: readers never see meta, spool or raw provider lines here.
    pub fn session_file(&self, id: &SessionId, path: &str) -> Result<Vec<u8>> {
        let inside = path.starts_with("turns/")
            && path.split('/').all(|part| !part.is_empty() && part != "." && part != "..")
            && !path.contains('\\');
        if !inside {
            return Err(Error::NotASessionFile { path: path.to_string() });
        }
        let view = self.read_session(id)?;
        self.read_blob_at(view.tree, path)?
            .ok_or_else(|| Error::NoSuchSessionFile { session: id.clone(), path: path.to_string() })
    }

    /// The unified diff of one turn, or of the whole session (from the base
    /// of turn 1 to the working tree after the last turn).
    pub fn session_diff(&self, id: &SessionId, turn: Option<u32>) -> Result<String> {
        let view = self.read_session(id)?;
        let turns = view.meta.turns;
        match turn {
            Some(turn) if turn == 0 || turn > turns => Err(Error::NoSuchTurn { session: id.clone(), turn, turns }),
            Some(turn) => Ok(self.turn_files(&view, turn)?.diff.unwrap_or_default()),
            None => {
                let base = self.tree_at(&view, "turns/1/base")?;
                let last = self.tree_at(&view, &format!("turns/{turns}/worktree"))?;
                match (base, last) {
                    (Some(base), Some(last)) => Ok(self.diff_trees(base, last)?.0),
                    _ => Ok(String::new()),
                }
            }
        }
    }

    /// The store to run the session's turns in: its own worktree when it
    /// has one (the refs are shared with the main checkout), this one
    /// otherwise.
    pub fn for_session(&self, id: &SessionId) -> Result<Store> {
        let view = self.read_session(id)?;
        match view.meta.worktree {
            Some(path) if std::path::Path::new(&path).exists() => Store::discover(std::path::Path::new(&path)),
            Some(path) => {
                Err(Error::WorktreeGone { session: id.clone(), path, branch: view.meta.branch.unwrap_or_default() })
            }
            None => Ok(self.clone()),
        }
    }

    /// The paths the session changed, from the start of turn 1 to the end
    /// of its last turn.
    pub fn session_paths(&self, id: &SessionId) -> Result<Vec<String>> {
        let view = self.read_session(id)?;
        let base = self.tree_at(&view, "turns/1/base")?;
        let last = self.tree_at(&view, &format!("turns/{}/worktree", view.meta.turns))?;
        let (Some(base), Some(last)) = (base, last) else { return Ok(Vec::new()) };
        let out = super::git::run(
            &self.workdir,
            ["diff", "--name-only", "-z", "--no-renames", &base.to_string(), &last.to_string()],
            &[],
        )?;
        Ok(out
            .split(|byte| *byte == 0)
            .filter(|path| !path.is_empty())
            .map(|path| String::from_utf8_lossy(path).into_owned())
            .collect())
    }

    /// The session named by the `Cortex-Session` trailer of commit `rev`.
    pub fn session_of_commit(&self, rev: &str) -> Result<Option<SessionId>> {
        let out = super::git::run(
            &self.workdir,
            ["log", "-1", "--format=%(trailers:key=Cortex-Session,valueonly)", rev, "--"],
            &[],
        )?;
        let text = String::from_utf8_lossy(&out);
        Ok(text.lines().filter_map(|line| line.trim().parse().ok()).next())
    }

    /// Whether `ancestor` is `descendant` or in its history.
    pub fn is_ancestor(&self, ancestor: ObjectId, descendant: ObjectId) -> Result<bool> {
        if ancestor == descendant {
            return Ok(true);
        }
        let walk = self.repo.rev_walk([descendant]).all().git(|| "cannot walk a session chain".into())?;
        for info in walk {
            let info = info.map_err(|source| Error::Git {
                context: "cannot walk a session chain".into(),
                source: gix::Error::from_error(source),
            })?;
            if info.id == ancestor {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The session's tip, after checking that it and its tree can be read.
    /// gix does not fsync, so after a power loss a ref may point at a torn
    /// object: then the newest readable entry of the reflog is put back.
    pub(crate) fn verified_tip(&self, id: &SessionId) -> Result<ObjectId> {
        let tip = self.session_tip(id)?.ok_or_else(|| Error::SessionNotFound(id.clone()))?;
        if self.view_at(tip).is_ok() {
            return Ok(tip);
        }
        let name = Store::ref_name(id);
        let reference = self.repo.find_reference(name.as_str()).git(|| format!("cannot read `{name}`"))?;
        let mut platform = reference.log_iter();
        let mut candidates = Vec::new();
        if let Some(lines) = platform.all().io(|| format!("cannot read the reflog of `{name}`"))? {
            for line in lines.flatten() {
                if let Ok(oid) = ObjectId::from_hex(line.new_oid.as_ref()) {
                    candidates.push(oid);
                }
            }
        }
        drop(platform);
        let readable =
            candidates.into_iter().rev().find(|candidate| *candidate != tip && self.view_at(*candidate).is_ok());
        let Some(good) = readable else {
            return Err(Error::Corrupt {
                what: name,
                detail: format!("tip {tip} is unreadable and the reflog holds no readable earlier tip"),
            });
        };
        tracing::warn!(session = %id, %tip, %good, "session tip unreadable; restoring the newest readable tip from the reflog");
        self.cas_ref(&name, Some(tip), good, &format!("cortex: restore readable tip (was {tip})"))
            .git(|| format!("cannot restore `{name}`"))?;
        Ok(good)
    }

    /// Removes `<ref>.lock` left by a crashed writer. Called only while this
    /// process holds the session lock, so no live writer of ours owns it.
    pub(crate) fn clear_stale_ref_lock(&self, ref_name: &str) {
        let lock = self.repo.common_dir().join(format!("{ref_name}.lock"));
        let Ok(metadata) = fs_err::metadata(&lock) else {
            return;
        };
        let age = metadata.modified().ok().and_then(|modified| modified.elapsed().ok()).unwrap_or_default();
        if age >= STALE_LOCK_AGE {
            tracing::warn!(lock = %lock.display(), "removing a stale ref lock left by a crashed writer");
            let _ = fs_err::remove_file(&lock);
        }
    }
}
