//! The workspace journal: what people did in a workspace outside any
//! session (an edit from the inspector, a terminal and the command lines
//! typed in it), as JSON lines under `refs/cortex/workspace/journal`, one
//! file per month (`journal/2026-11.jsonl`). Redacted like every blob;
//! appended with compare-and-swap, so two writers never lose a line.

use gix::ObjectId;
use gix::objs::tree::EntryKind;

use super::{GitContext, Result, Store, session};
use crate::protocol::JournalEntry;

pub const JOURNAL_REF: &str = "refs/cortex/workspace/journal";

/// Attempts before a contended journal gives up.
const ATTEMPTS: u32 = 20;

impl Store {
    /// Appends `entry` to this month's journal file.
    pub fn append_journal(&self, entry: &JournalEntry) -> Result<()> {
        self.append_journal_with(entry, None)
    }

    /// Appends `entry`, with a file (`path`, `content`) beside it in the
    /// journal tree: a check's output, as evidence.
    pub fn append_journal_with(&self, entry: &JournalEntry, attachment: Option<(&str, &[u8])>) -> Result<()> {
        let line = serde_json::to_string(entry).expect("holds because entries are JSON") + "\n";
        let path = format!("journal/{}.jsonl", entry.at.strftime("%Y-%m"));
        for _ in 0..ATTEMPTS {
            let tip = self.journal_tip()?;
            let (base_tree, mut content) = match tip {
                Some(tip) => {
                    let tree = self.commit_tree(tip)?;
                    (Some(tree), self.read_blob_at(tree, &path)?.unwrap_or_default())
                }
                None => (None, Vec::new()),
            };
            content.extend_from_slice(line.as_bytes());
            let blob = self.write_blob(&content)?;
            let empty = ObjectId::empty_tree(gix::hash::Kind::Sha1);
            let mut editor =
                self.repo.edit_tree(base_tree.unwrap_or(empty)).git(|| "cannot edit the journal tree".into())?;
            editor.upsert(path.as_str(), EntryKind::Blob, blob).git(|| "cannot add a journal line".into())?;
            if let Some((name, content)) = attachment {
                let blob = self.write_blob(content)?;
                editor.upsert(name, EntryKind::Blob, blob).git(|| format!("cannot add `{name}`"))?;
            }
            let tree = editor.write().git(|| "cannot write the journal tree".into())?.detach();
            let signature = session::signature(entry.at);
            let commit = gix::objs::Commit {
                tree,
                parents: tip.into_iter().collect(),
                author: signature.clone(),
                committer: signature,
                encoding: None,
                message: format!("cortex: journal {} by {}\n", entry.action, entry.by).into(),
                extra_headers: Vec::new(),
            };
            let id = self.repo.write_object(&commit).git(|| "cannot write a journal commit".into())?.detach();
            if self.cas_ref(JOURNAL_REF, tip, id, "cortex: journal").is_ok() {
                return Ok(());
            }
        }
        Err(super::Error::Contended { name: JOURNAL_REF.into(), attempts: ATTEMPTS })
    }

    /// The newest `limit` entries, newest first.
    pub fn journal(&self, limit: usize) -> Result<Vec<JournalEntry>> {
        let Some(tip) = self.journal_tip()? else { return Ok(Vec::new()) };
        let tree = self.commit_tree(tip)?;
        let Some(folder) = self
            .repo
            .find_tree(tree)
            .git(|| "cannot read the journal".into())?
            .lookup_entry_by_path("journal")
            .git(|| "cannot read the journal folder".into())?
        else {
            return Ok(Vec::new());
        };
        let folder = self.repo.find_tree(folder.object_id()).git(|| "cannot read the journal folder".into())?;
        let mut months: Vec<(String, ObjectId)> = folder
            .decode()
            .git(|| "cannot decode the journal folder".into())?
            .entries
            .iter()
            .map(|entry| (entry.filename.to_string(), entry.oid.to_owned()))
            .collect();
        months.sort();
        let mut entries = Vec::new();
        for (_, blob) in months.iter().rev() {
            let blob = self.repo.find_blob(*blob).git(|| "cannot read a journal file".into())?;
            let text = String::from_utf8_lossy(&blob.data);
            for line in text.lines().rev() {
                if let Ok(entry) = serde_json::from_str(line) {
                    entries.push(entry);
                    if entries.len() == limit {
                        return Ok(entries);
                    }
                }
            }
        }
        Ok(entries)
    }

    fn journal_tip(&self) -> Result<Option<ObjectId>> {
        let reference = self.repo.try_find_reference(JOURNAL_REF).git(|| "cannot read the journal ref".into())?;
        Ok(reference.and_then(|reference| reference.try_id()).map(|id| id.detach()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_append_redacted_and_read_back_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("git").args(["init", "-q"]).current_dir(dir.path()).status().unwrap();
        assert!(status.success());
        let store = Store::discover(dir.path()).unwrap();
        assert!(store.journal(10).unwrap().is_empty());
        for (index, detail) in ["first", "export KEY=sk-abcdefghijklmnopqrstuvwxyz0123"].iter().enumerate() {
            let entry = JournalEntry {
                at: jiff::Timestamp::from_second(1_795_000_000 + index as i64).unwrap(),
                by: "ana".into(),
                action: "terminal".into(),
                path: None,
                detail: Some(detail.to_string()),
            };
            store.append_journal(&entry).unwrap();
        }
        let entries = store.journal(10).unwrap();
        let details: Vec<_> = entries.iter().map(|entry| entry.detail.clone().unwrap()).collect();
        assert_eq!(details, ["export KEY=[REDACTED]", "first"]);
        assert_eq!(store.journal(1).unwrap().len(), 1);
    }
}
