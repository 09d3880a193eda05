//! Working-tree snapshots and diffs. A snapshot is the working tree as a git
//! tree, honouring `.gitignore`, made through a private index file so the
//! user's index is never touched. Blobs that differ from a known-clean tree
//! are scanned, and secrets in them are redacted before the tree is used.

use std::ffi::OsStr;
use std::path::Path;

use gix::ObjectId;

use super::{GitContext, IoContext, Result, Store, git, redact};

/// Files larger than this are not scanned for secrets, so they are left out
/// of snapshots (named by a placeholder) rather than stored unscanned.
const MAX_SCANNED_BLOB: usize = 64 * 1024 * 1024;
/// How a snapshot's note for a file too large to scan begins: such a file's
/// content is not in the snapshot.
pub const LEFT_OUT: &str = "[Cortex left this file out of the snapshot";

/// A working tree captured as a git tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub tree: ObjectId,
    /// Paths git refused to add (a folder named `.GIT`, say): left out of
    /// the snapshot, and said.
    pub skipped: Vec<String>,
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

    /// Captures the working tree. Files that differ from `known_clean` (a
    /// tree already scanned, or HEAD's) are redacted where they hold
    /// secrets before any of their bytes reach the repository's object
    /// store: git hashes the working tree into a quarantine object folder
    /// (the repository's own objects as its alternate), and only the
    /// redacted tree and the objects it reaches move into the repository.
    /// The quarantine, with every unredacted blob, is then deleted.
    pub fn snapshot_worktree(&self, known_clean: ObjectId) -> Result<Snapshot> {
        let tmp_dir = self.cortex_dir().join("tmp");
        fs_err::create_dir_all(&tmp_dir).io(|| "cannot create Cortex's temp folder".into())?;
        let index = tempfile::Builder::new()
            .prefix("index-")
            .tempfile_in(&tmp_dir)
            .io(|| "cannot create a private index file".into())?;
        let quarantine = tempfile::Builder::new()
            .prefix("objects-")
            .tempdir_in(&tmp_dir)
            .io(|| "cannot create a quarantine object folder".into())?;
        let user_index = self.repo.index_path();
        if user_index.exists() {
            // A copy keeps git's stat cache, so unchanged files are not re-hashed.
            fs_err::copy(&user_index, index.path()).io(|| "cannot copy the index for a snapshot".into())?;
        } else {
            // An empty file is not a valid index; git creates one where none exists.
            fs_err::remove_file(index.path()).io(|| "cannot prepare a private index file".into())?;
        }
        let objects = self.repo.objects.store_ref().path().to_path_buf();
        let envs: [(&str, &OsStr); 3] = [
            ("GIT_INDEX_FILE", index.path().as_os_str()),
            ("GIT_OBJECT_DIRECTORY", quarantine.path().as_os_str()),
            ("GIT_ALTERNATE_OBJECT_DIRECTORIES", objects.as_os_str()),
        ];
        // Files git refuses are left out and named; everything else is taken.
        let added = git::output_lenient(&self.workdir, ["add", "--all", "--ignore-errors", "--", "."], &envs)?;
        let stderr = String::from_utf8_lossy(&added.stderr);
        let skipped: Vec<String> = stderr
            .lines()
            .filter_map(|line| line.strip_prefix("error: unable to add '")?.strip_suffix("' to index"))
            .map(str::to_string)
            .collect();
        if !added.status.success() && skipped.is_empty() {
            return Err(super::Error::GitCommand {
                args: "add --all".into(),
                dir: self.workdir.clone(),
                stderr: stderr.trim().to_string(),
            });
        }
        let tree = parse_oid(&git::run(&self.workdir, ["write-tree"], &envs)?)?;
        let (tree, replaced) = self.redact_tree(known_clean, tree, &envs)?;
        self.adopt(tree, quarantine.path(), &objects, &replaced)?;
        Ok(Snapshot { tree, skipped })
    }

    /// Replaces, in the private index, every file that differs from
    /// `known_clean` by its redacted bytes written to the repository;
    /// returns the tree written from that index, and the blobs replaced
    /// (which must never leave the quarantine).
    fn redact_tree(
        &self,
        known_clean: ObjectId,
        tree: ObjectId,
        envs: &[(&str, &OsStr)],
    ) -> Result<(ObjectId, std::collections::HashSet<String>)> {
        let raw = git::run(
            &self.workdir,
            ["diff-tree", "-r", "-z", "--no-renames", &known_clean.to_string(), &tree.to_string()],
            envs,
        )?;
        let mut changed = Vec::new();
        let mut fields = raw.split(|byte| *byte == 0);
        while let (Some(header), Some(path)) = (fields.next(), fields.next()) {
            // :old_mode new_mode old_oid new_oid status
            let header = String::from_utf8_lossy(header);
            let parts: Vec<&str> = header.trim_start_matches(':').split(' ').collect();
            let [_, new_mode, _, new_oid, status] = parts[..] else {
                continue;
            };
            if status == "D" || !matches!(new_mode, "100644" | "100755") {
                continue;
            }
            changed.push((new_mode.to_string(), new_oid.to_string(), String::from_utf8_lossy(path).into_owned()));
        }
        let mut replaced = std::collections::HashSet::new();
        if changed.is_empty() {
            return Ok((tree, replaced));
        }
        let request: String = changed.iter().map(|(_, oid, _)| format!("{oid}\n")).collect();
        let answer = git::run_with_input(&self.workdir, ["cat-file", "--batch"], envs, request.into_bytes())?;
        let blobs = parse_batch(&answer)?;
        let mut updates = Vec::new();
        for ((mode, oid, path), data) in changed.iter().zip(blobs) {
            let stored = if data.len() > MAX_SCANNED_BLOB {
                tracing::info!(%path, size = data.len(), "a file too large to scan is left out of a snapshot");
                std::borrow::Cow::Owned(
                    format!("{LEFT_OUT}: {} bytes, too large to scan for secrets]\n", data.len()).into_bytes(),
                )
            } else {
                redact::redact_file(path, &data)
            };
            if let std::borrow::Cow::Owned(redacted) = &stored {
                tracing::info!(%path, "redacted secrets in a working-tree snapshot");
                let new_oid = self.repo.write_blob(redacted).git(|| "cannot write a blob".into())?.detach();
                updates.extend_from_slice(format!("{mode} {new_oid}\t{path}").as_bytes());
                updates.push(0);
                replaced.insert(oid.clone());
            }
        }
        if updates.is_empty() {
            return Ok((tree, replaced));
        }
        git::run_with_input(&self.workdir, ["update-index", "-z", "--index-info"], envs, updates)?;
        Ok((parse_oid(&git::run(&self.workdir, ["write-tree"], envs)?)?, replaced))
    }

    /// Moves the objects git wrote into the quarantine (the new blobs and
    /// trees of this snapshot) into the repository, all but the `replaced`
    /// unredacted blobs, which are deleted with the quarantine. Packs git may
    /// have written for huge files are left there too: such files are never
    /// scanned, so they are never in a snapshot.
    fn adopt(
        &self,
        tree: ObjectId,
        quarantine: &Path,
        objects: &Path,
        replaced: &std::collections::HashSet<String>,
    ) -> Result<()> {
        let folders = fs_err::read_dir(quarantine).io(|| "cannot list the quarantine".into())?;
        for folder in folders.flatten() {
            let prefix = folder.file_name().to_string_lossy().into_owned();
            if prefix.len() != 2 || !folder.path().is_dir() {
                continue;
            }
            for object in fs_err::read_dir(folder.path()).io(|| "cannot list the quarantine".into())?.flatten() {
                let rest = object.file_name().to_string_lossy().into_owned();
                if replaced.contains(&format!("{prefix}{rest}")) {
                    continue;
                }
                let target_dir = objects.join(&prefix);
                fs_err::create_dir_all(&target_dir).io(|| "cannot create an object folder".into())?;
                let target = target_dir.join(&rest);
                if !target.exists() {
                    fs_err::rename(object.path(), &target)
                        .io(|| format!("cannot move object {prefix}{rest} into the repository"))?;
                }
            }
        }
        // Proof that the snapshot is whole without the quarantine.
        git::run(&self.workdir, ["cat-file", "-e", &format!("{tree}^{{tree}}")], &[])?;
        Ok(())
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

/// The contents of `git cat-file --batch` answers, in order.
fn parse_batch(mut out: &[u8]) -> Result<Vec<Vec<u8>>> {
    let corrupt =
        |detail: &str| super::Error::Corrupt { what: "git cat-file --batch output".into(), detail: detail.into() };
    let mut blobs = Vec::new();
    while !out.is_empty() {
        let newline =
            out.iter().position(|byte| *byte == b'\n').ok_or_else(|| corrupt("a header without a newline"))?;
        let header = String::from_utf8_lossy(&out[..newline]).into_owned();
        let size: usize = header
            .rsplit(' ')
            .next()
            .and_then(|size| size.parse().ok())
            .ok_or_else(|| corrupt(&format!("unexpected header `{header}`")))?;
        let start = newline + 1;
        let data = out.get(start..start + size).ok_or_else(|| corrupt("an object cut short"))?;
        blobs.push(data.to_vec());
        out = out.get(start + size + 1..).unwrap_or_default();
    }
    Ok(blobs)
}

fn parse_oid(out: &[u8]) -> Result<ObjectId> {
    let text = String::from_utf8_lossy(out);
    ObjectId::from_hex(text.trim().as_bytes())
        .map_err(|error| super::Error::Corrupt { what: "git write-tree output".into(), detail: error.to_string() })
}
