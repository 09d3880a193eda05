//! Writing one session's ref: buffered events sealed into chunks, turn files,
//! `meta.toml`, one commit per flush, and a compare-and-swap ref update with a
//! forced reflog. Every event is in the fsynced spool before it is buffered,
//! so a crash loses nothing that [`SessionWriter::append`] accepted.

use std::time::{Duration, Instant};

use gix::ObjectId;
use gix::objs::tree::EntryKind;

use super::meta::Meta;
use super::spool::{Spool, SpoolRecord};
use super::{Error, GitContext, Result, Store, redact};
use crate::protocol::{Event, SessionId, SessionState};

/// Flush when this many events are buffered.
const MAX_BUFFERED_EVENTS: usize = 256;
/// Flush when the buffered lines reach this size.
const MAX_BUFFERED_BYTES: usize = 512 * 1024;
/// Flush this long after the first unflushed event.
pub const FLUSH_AFTER: Duration = Duration::from_secs(2);
/// Conflicting ref updates tolerated before giving up on a flush.
const MAX_CAS_ATTEMPTS: u32 = 5;

/// Why a commit is being made; shown in its subject line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushReason {
    Created,
    Lifecycle,
    TurnEnd,
    ToolResult,
    Size,
    Timer,
    Recovery,
    Shutdown,
}

impl FlushReason {
    fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Lifecycle => "lifecycle",
            Self::TurnEnd => "turn end",
            Self::ToolResult => "tool result",
            Self::Size => "size",
            Self::Timer => "timer",
            Self::Recovery => "recovery",
            Self::Shutdown => "shutdown",
        }
    }
}

enum Staged {
    Blob(Vec<u8>),
    Tree(ObjectId),
}

/// The single writer of one session ref. Holds the session's lock for as long
/// as it lives, so no other Cortex process can write the same session.
pub struct SessionWriter {
    store: Store,
    id: SessionId,
    ref_name: String,
    tip: ObjectId,
    tree: ObjectId,
    meta: Meta,
    meta_dirty: bool,
    lines: Vec<String>,
    lines_bytes: usize,
    first_seq: Option<u64>,
    first_pending_at: Option<Instant>,
    raw: Vec<String>,
    staged: Vec<(String, Staged)>,
    spool: Spool,
    /// Turn of the last buffered event, for the `Cortex-Turn` trailer.
    current_turn: Option<u32>,
    /// Tree and meta of the commit being put in place by a flush.
    pending_tree: Option<(ObjectId, Meta)>,
    /// The one redaction point for this session's events.
    redactor: redact::EventRedactor,
    /// What earlier commits sealed of the current turn (prompt, diff,
    /// checks): the subject of the commit that ends the turn says them.
    turn_notes: Vec<crate::protocol::Event>,
}

impl SessionWriter {
    /// Creates the session ref with `meta` and nothing else yet. Fails if a
    /// session with that id exists.
    pub fn create(store: &Store, meta: Meta) -> Result<SessionWriter> {
        let spool = Spool::open(store, &meta.id)?;
        let empty_tree = ObjectId::empty_tree(store.repo.object_hash());
        let id = meta.id.clone();
        let mut writer = SessionWriter {
            store: store.clone(),
            ref_name: Store::ref_name(&id),
            id,
            tip: ObjectId::null(store.repo.object_hash()),
            tree: empty_tree,
            meta,
            meta_dirty: true,
            lines: Vec::new(),
            lines_bytes: 0,
            first_seq: None,
            first_pending_at: None,
            raw: Vec::new(),
            staged: Vec::new(),
            spool,
            current_turn: None,
            pending_tree: None,
            redactor: redact::EventRedactor::new(),
            turn_notes: Vec::new(),
        };
        writer.flush(FlushReason::Created)?;
        Ok(writer)
    }

    /// Opens an existing session for writing. Events left in its spool by a
    /// process that died are replayed into the buffer (not yet flushed: see
    /// [`Self::replayed`]); stale git lock files of the ref are cleared.
    pub fn open(store: &Store, id: &SessionId) -> Result<SessionWriter> {
        let spool = Spool::open(store, id)?;
        let ref_name = Store::ref_name(id);
        store.clear_stale_ref_lock(&ref_name);
        let tip = store.verified_tip(id)?;
        let commit = store.repo.find_commit(tip).git(|| format!("cannot read the tip of `{ref_name}`"))?;
        let tree = commit.tree_id().git(|| format!("cannot read the tree of `{ref_name}`"))?.detach();
        let meta = store.read_meta(tree)?;
        let mut writer = SessionWriter {
            store: store.clone(),
            id: id.clone(),
            ref_name,
            tip,
            tree,
            meta,
            meta_dirty: false,
            lines: Vec::new(),
            lines_bytes: 0,
            first_seq: None,
            first_pending_at: None,
            raw: Vec::new(),
            staged: Vec::new(),
            spool,
            current_turn: None,
            pending_tree: None,
            redactor: redact::EventRedactor::new(),
            turn_notes: Vec::new(),
        };
        for record in writer.spool.read()? {
            match record {
                SpoolRecord::Event(line) => {
                    let event: Event = serde_json::from_str(&line).map_err(|error| Error::Corrupt {
                        what: format!("spool of {}", writer.id),
                        detail: error.to_string(),
                    })?;
                    if event.seq > writer.last_seq() {
                        writer.buffer_line(event.seq, event.turn, line);
                    }
                }
                SpoolRecord::Raw { seq, line } => {
                    if seq > writer.meta.last_seq {
                        writer.raw.push(line);
                    }
                }
            }
        }
        Ok(writer)
    }

    pub fn id(&self) -> &SessionId {
        &self.id
    }

    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    pub fn tip(&self) -> ObjectId {
        self.tip
    }

    /// The seq of the last event accepted, flushed or not.
    pub fn last_seq(&self) -> u64 {
        self.meta.last_seq.max(self.first_seq.map_or(0, |first| first + self.lines.len() as u64 - 1))
    }

    /// How many events were replayed from the spool by [`Self::open`] and are
    /// waiting for the next flush.
    pub fn replayed(&self) -> usize {
        self.lines.len()
    }

    /// Accepts events: redacted in place (the caller then forwards exactly
    /// what was stored), fsynced to the spool, buffered. Flushes when the
    /// buffer is full. Each `seq` must follow the previous one.
    pub fn append(&mut self, events: &mut [Event]) -> Result<()> {
        let mut records = Vec::with_capacity(events.len());
        for event in events {
            let expected = self.last_seq() + 1 + records.len() as u64;
            if event.seq != expected {
                return Err(Error::Corrupt {
                    what: format!("events of {}", self.id),
                    detail: format!("seq {} given where {expected} was due", event.seq),
                });
            }
            let line = self.redactor.redact_to_line(event);
            records.push((event.seq, event.turn, line));
        }
        let spooled: Vec<_> = records.iter().map(|(_, _, line)| SpoolRecord::Event(line.clone())).collect();
        self.spool.append(&spooled)?;
        for (seq, turn, line) in records {
            self.buffer_line(seq, turn, line);
        }
        if self.lines.len() >= MAX_BUFFERED_EVENTS || self.lines_bytes >= MAX_BUFFERED_BYTES {
            self.flush(FlushReason::Size)?;
        }
        Ok(())
    }

    /// Keeps one of the provider's own output lines for the span being
    /// buffered, so events can be re-normalised later.
    pub fn append_raw(&mut self, line: &str) -> Result<()> {
        let line = self.redactor.redact_raw(line);
        self.spool.append(&[SpoolRecord::Raw { seq: self.last_seq(), line: line.clone() }])?;
        self.raw.push(line);
        Ok(())
    }

    fn buffer_line(&mut self, seq: u64, turn: Option<u32>, line: String) {
        if self.first_seq.is_none() {
            self.first_seq = Some(seq);
            self.first_pending_at = Some(Instant::now());
        }
        if turn.is_some() {
            self.current_turn = turn;
        }
        self.lines_bytes += line.len() + 1;
        self.lines.push(line);
    }

    /// Puts a file into the session tree at the next flush, e.g.
    /// `turns/1/prompt.md`. The content is redacted.
    pub fn put_file(&mut self, path: impl Into<String>, content: impl Into<Vec<u8>>) {
        self.staged.push((path.into(), Staged::Blob(content.into())));
    }

    /// Puts an existing tree (a working-tree snapshot) at `path`.
    pub fn put_tree(&mut self, path: impl Into<String>, tree: ObjectId) {
        self.staged.push((path.into(), Staged::Tree(tree)));
    }

    pub fn update_meta(&mut self, change: impl FnOnce(&mut Meta)) {
        change(&mut self.meta);
        self.meta_dirty = true;
    }

    pub fn set_state(&mut self, state: SessionState, reason: Option<String>) {
        self.update_meta(|meta| {
            meta.state = state;
            meta.state_reason = reason;
        });
    }

    /// Flushes if the oldest buffered event has waited [`FLUSH_AFTER`].
    pub fn flush_if_due(&mut self) -> Result<()> {
        match self.first_pending_at {
            Some(at) if at.elapsed() >= FLUSH_AFTER => self.flush(FlushReason::Timer),
            _ => Ok(()),
        }
    }

    /// Writes everything buffered as one commit and moves the ref to it.
    pub fn flush(&mut self, reason: FlushReason) -> Result<()> {
        if self.lines.is_empty() && self.staged.is_empty() && !self.meta_dirty {
            return Ok(());
        }
        let mut attempts = 0;
        loop {
            attempts += 1;
            let commit = self.write_commit(reason)?;
            match self.compare_and_swap(commit) {
                Ok(()) => break,
                Err(error) if error.is_conflict() && attempts < MAX_CAS_ATTEMPTS => {
                    tracing::warn!(session = %self.id, "session ref moved under its writer; rebuilding the flush on the new tip");
                    let tip =
                        self.store.session_tip(&self.id)?.ok_or_else(|| Error::SessionNotFound(self.id.clone()))?;
                    self.tip = tip;
                    self.tree = self.store.commit_tree(tip)?;
                }
                Err(error) if error.is_conflict() => {
                    return Err(Error::Contended { name: self.ref_name.clone(), attempts });
                }
                Err(source) => {
                    return Err(Error::Git { context: format!("cannot update `{}`", self.ref_name), source });
                }
            }
        }
        // Raw lines travel with the events they came with: lines that
        // arrived with no event buffered wait for the next chunk.
        if self.first_seq.is_some() {
            self.raw.clear();
        }
        self.lines.clear();
        self.lines_bytes = 0;
        self.first_seq = None;
        self.first_pending_at = None;
        self.staged.clear();
        self.meta_dirty = false;
        self.spool.clear()?;
        Ok(())
    }

    /// Builds the next commit on `self.tip` and returns its id; `self.tree` and
    /// `self.meta` are updated only when the ref moves.
    fn write_commit(&mut self, reason: FlushReason) -> Result<ObjectId> {
        let repo = &self.store.repo;
        let mut editor = repo.edit_tree(self.tree).git(|| "cannot edit the session tree".into())?;
        let last_seq = self.last_seq();
        if let Some(first_seq) = self.first_seq {
            let chunk = self.lines.join("\n") + "\n";
            let blob = self.store.write_lines_blob(chunk.as_bytes())?;
            editor
                .upsert(chunk_path("events", first_seq), EntryKind::Blob, blob)
                .git(|| "cannot add an event chunk".into())?;
            if !self.raw.is_empty() {
                let raw = self.raw.join("\n") + "\n";
                let blob = self.store.write_lines_blob(raw.as_bytes())?;
                editor
                    .upsert(chunk_path("raw", first_seq), EntryKind::Blob, blob)
                    .git(|| "cannot add a raw chunk".into())?;
            }
        }
        for (path, staged) in &self.staged {
            let (kind, id) = match staged {
                Staged::Blob(content) => (EntryKind::Blob, self.store.write_blob(content)?),
                Staged::Tree(tree) => (EntryKind::Tree, *tree),
            };
            editor.upsert(path.as_str(), kind, id).git(|| format!("cannot add `{path}`"))?;
        }
        let now = jiff::Timestamp::now();
        let mut meta = self.meta.clone();
        meta.last_seq = last_seq;
        meta.updated_at = now;
        let blob = self.store.write_blob(meta.to_toml().as_bytes())?;
        editor.upsert("meta.toml", EntryKind::Blob, blob).git(|| "cannot add meta.toml".into())?;
        let tree = editor.write().git(|| "cannot write the session tree".into())?.detach();

        let signature = signature(now);
        let seq_range = match self.first_seq {
            Some(first) => format!("{first}-{last_seq}"),
            None => format!("{0}-{0}", last_seq),
        };
        let mut message = format!(
            "{}\n\nSeq {} ({}).\n\nCortex-Session: {}\nCortex-Seq: {}\n",
            super::subject::subject(&self.lines, &self.meta.title, reason.as_str(), &self.turn_notes),
            seq_range.replace('-', ".."),
            reason.as_str(),
            self.id,
            seq_range
        );
        if let Some(turn) = self.current_turn {
            message.push_str(&format!("Cortex-Turn: {turn}\n"));
        }
        super::subject::remember(&mut self.turn_notes, &self.lines);
        let parents = if self.tip.is_null() { Vec::new() } else { vec![self.tip] };
        let commit = gix::objs::Commit {
            tree,
            parents: parents.into(),
            author: signature.clone(),
            committer: signature,
            encoding: None,
            message: message.into(),
            extra_headers: Vec::new(),
        };
        let id = repo.write_object(&commit).git(|| "cannot write a session commit".into())?.detach();
        self.pending_tree = Some((tree, meta));
        Ok(id)
    }

    fn compare_and_swap(&mut self, commit: ObjectId) -> Result<(), gix::Error> {
        let expected = (!self.tip.is_null()).then_some(self.tip);
        let message = format!("cortex: flush seq {}", self.last_seq());
        self.store.cas_ref(&self.ref_name, expected, commit, &message)?;
        let (tree, meta) = self.pending_tree.take().expect("holds because write_commit ran first");
        self.tip = commit;
        self.tree = tree;
        self.meta = meta;
        Ok(())
    }

    /// Flushes and lets go of the session: the spool is removed, so no later
    /// command mistakes this session for one whose writer died.
    pub fn close(mut self) -> Result<()> {
        self.flush(FlushReason::Shutdown)?;
        self.spool.remove()
    }
}

/// `events/0000/0000000001.jsonl`: buckets of 4096 seqs keep trees small.
pub(crate) fn chunk_path(folder: &str, first_seq: u64) -> String {
    format!("{folder}/{:04}/{first_seq:010}.jsonl", first_seq / 4096)
}

/// Cortex's own identity: never the user's git config.
pub(crate) fn signature(at: jiff::Timestamp) -> gix::actor::Signature {
    gix::actor::Signature {
        name: "Cortex".into(),
        email: "cortex@localhost".into(),
        time: gix::date::Time::new(at.as_second(), 0),
    }
}
