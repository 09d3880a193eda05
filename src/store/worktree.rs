//! Working-tree snapshots and diffs. A snapshot is the working tree as a git
//! tree, honouring `.gitignore`, made through a private index file so the
//! user's index is never touched. Blobs that differ from a known-clean tree
//! are scanned, and secrets in them are redacted before the tree is used.

use std::ffi::OsStr;

use gix::ObjectId;
use gix::objs::tree::EntryKind;

use super::{GitContext, IoContext, Result, Store, git, redact};

/// Blobs larger than this are not scanned for secrets (build outputs, media).
const MAX_SCANNED_BLOB: usize = 8 * 1024 * 1024;

/// A working tree captured as a git tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub tree: ObjectId,
}

/// Line counts of one changed file; `None` counts for a binary file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiffFile {
    pub path: String,
    pub insertions: Option<u64>,
    pub deletions: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiffStat {
    pub files: Vec<DiffFile>,
}

impl DiffStat {
    pub fn insertions(&self) -> u64 {
        self.files.iter().filter_map(|file| file.insertions).sum()
    }

    pub fn deletions(&self) -> u64 {
        self.files.iter().filter_map(|file| file.deletions).sum()
    }
}

impl Store {
    /// The tree of HEAD's commit, or the empty tree in a repository with no
    /// commits yet.
    pub fn head_tree(&self) -> ObjectId {
        self.repo
            .head_commit()
            .ok()
            .and_then(|commit| commit.tree_id().ok())
            .map(|id| id.detach())
            .unwrap_or_else(|| ObjectId::empty_tree(self.repo.object_hash()))
    }

    /// Captures the working tree. Blobs that differ from `known_clean` (a
    /// tree already scanned, or HEAD's) are redacted where they hold secrets.
    pub fn snapshot_worktree(&self, known_clean: ObjectId) -> Result<Snapshot> {
        let tmp_dir = self.cortex_dir().join("tmp");
        fs_err::create_dir_all(&tmp_dir).io(|| "cannot create Cortex's temp folder".into())?;
        let index = tempfile::Builder::new()
            .prefix("index-")
            .tempfile_in(&tmp_dir)
            .io(|| "cannot create a private index file".into())?;
        let user_index = self.repo.index_path();
        if user_index.exists() {
            // A copy keeps git's stat cache, so unchanged files are not re-hashed.
            fs_err::copy(&user_index, index.path()).io(|| "cannot copy the index for a snapshot".into())?;
        } else {
            // An empty file is not a valid index; git creates one where none exists.
            fs_err::remove_file(index.path()).io(|| "cannot prepare a private index file".into())?;
        }
        let envs: [(&str, &OsStr); 1] = [("GIT_INDEX_FILE", index.path().as_os_str())];
        git::run(&self.workdir, ["add", "--all", "--ignore-errors", "--", "."], &envs)?;
        let out = git::run(&self.workdir, ["write-tree"], &envs)?;
        let tree = parse_oid(&out)?;
        let tree = self.redact_tree(known_clean, tree)?;
        Ok(Snapshot { tree })
    }

    /// Rewrites blobs of `tree` that differ from `known_clean` and hold secrets.
    fn redact_tree(&self, known_clean: ObjectId, tree: ObjectId) -> Result<ObjectId> {
        let raw = git::run(
            &self.workdir,
            ["diff-tree", "-r", "-z", "--no-renames", &known_clean.to_string(), &tree.to_string()],
            &[],
        )?;
        let mut editor = None;
        let mut fields = raw.split(|byte| *byte == 0);
        while let (Some(header), Some(path)) = (fields.next(), fields.next()) {
            // :old_mode new_mode old_oid new_oid status
            let header = String::from_utf8_lossy(header);
            let parts: Vec<&str> = header.trim_start_matches(':').split(' ').collect();
            let [_, new_mode, _, new_oid, status] = parts[..] else {
                continue;
            };
            let kind = match new_mode {
                "100644" => EntryKind::Blob,
                "100755" => EntryKind::BlobExecutable,
                _ => continue,
            };
            if status == "D" {
                continue;
            }
            let oid = ObjectId::from_hex(new_oid.as_bytes()).map_err(|error| super::Error::Corrupt {
                what: "git diff-tree output".into(),
                detail: error.to_string(),
            })?;
            let blob = self.repo.find_blob(oid).git(|| format!("cannot read blob {oid}"))?;
            if blob.data.len() > MAX_SCANNED_BLOB {
                continue;
            }
            let redacted = redact::redact(&blob.data);
            if redacted.as_ref() == blob.data.as_slice() {
                continue;
            }
            let path = String::from_utf8_lossy(path).into_owned();
            tracing::info!(%path, "redacted secrets in a working-tree snapshot");
            let new_blob = self.repo.write_blob(redacted.as_ref()).git(|| "cannot write a blob".into())?.detach();
            let editor = match &mut editor {
                Some(editor) => editor,
                None => editor.insert(self.repo.edit_tree(tree).git(|| "cannot edit a snapshot".into())?),
            };
            editor.upsert(path.as_str(), kind, new_blob).git(|| format!("cannot replace `{path}`"))?;
        }
        match editor {
            Some(mut editor) => Ok(editor.write().git(|| "cannot write a snapshot".into())?.detach()),
            None => Ok(tree),
        }
    }

    /// The unified diff from `from` to `to`, and its per-file line counts.
    pub fn diff_trees(&self, from: ObjectId, to: ObjectId) -> Result<(String, DiffStat)> {
        let (from, to) = (from.to_string(), to.to_string());
        let patch = git::run(
            &self.workdir,
            ["diff", "--no-color", "--no-ext-diff", "--no-textconv", "--find-renames", &from, &to],
            &[],
        )?;
        let numstat = git::run(&self.workdir, ["diff", "--numstat", "-z", "--no-renames", &from, &to], &[])?;
        let mut stat = DiffStat::default();
        for record in numstat.split(|byte| *byte == 0).filter(|record| !record.is_empty()) {
            let record = String::from_utf8_lossy(record);
            let mut parts = record.splitn(3, '\t');
            let (Some(insertions), Some(deletions), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            stat.files.push(DiffFile {
                path: path.to_string(),
                insertions: insertions.parse().ok(),
                deletions: deletions.parse().ok(),
            });
        }
        Ok((String::from_utf8_lossy(&patch).into_owned(), stat))
    }
}

fn parse_oid(out: &[u8]) -> Result<ObjectId> {
    let text = String::from_utf8_lossy(out);
    ObjectId::from_hex(text.trim().as_bytes())
        .map_err(|error| super::Error::Corrupt { what: "git write-tree output".into(), detail: error.to_string() })
}
