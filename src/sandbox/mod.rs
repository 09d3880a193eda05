//! The one filesystem boundary: every path a client, an agent or a cloned
//! repository names inside a workspace goes through [`Root`]. It holds an
//! open directory handle (cap-std, `openat2(RESOLVE_BENEATH)` where the
//! kernel has it) and walks a path one component at a time without
//! following a symlink, so no swap of a directory for a link between a
//! check and a use can lead outside. It refuses `..`, absolute paths and
//! anything under `.git`; it acts on a symlink itself, never on its
//! target; it writes through a temporary file created exclusively with a
//! random name and renamed into place. It imports nothing from the crate.

use std::ffi::OsString;
use std::io::{ErrorKind, Read, Write};
use std::path::{Component, Path, PathBuf};

use cap_fs_ext::{DirExt as _, FollowSymlinks, OpenOptionsExt as _, OpenOptionsFollowExt as _};
use cap_std::fs::{Dir, Metadata, OpenOptions, PermissionsExt as _};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("`{path}` is absolute: give a path inside the workspace, relative to its root")]
    Absolute { path: String },
    #[error("`{path}` climbs out with `..`: give a path inside the workspace")]
    Parent { path: String },
    #[error("`{path}` is not a usable path (empty, or with a NUL byte)")]
    Malformed { path: String },
    #[error("`{path}` is inside `.git`, which Cortex leaves alone")]
    GitDir { path: String },
    #[error("`{path}` goes through the symlink `{link}`; Cortex does not follow links inside a workspace")]
    Symlink { path: String, link: String },
    #[error("`{path}` does not exist")]
    NotFound { path: String },
    #[error("`{path}` cannot be read or written: permission denied")]
    Permission { path: String },
    #[error("`{path}` already exists")]
    Exists { path: String },
    #[error("`{path}` is a directory")]
    Directory { path: String },
    #[error("`{path}` is not a regular file (a device, a socket or a pipe)")]
    NotRegular { path: String },
    #[error("`{path}` is larger than {max} bytes")]
    TooLarge { path: String, max: u64 },
    #[error("cannot {action} `{path}`: {source}")]
    Io {
        action: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The command outcome code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Absolute { .. }
            | Self::Parent { .. }
            | Self::Malformed { .. }
            | Self::GitDir { .. }
            | Self::Symlink { .. }
            | Self::Directory { .. }
            | Self::NotRegular { .. }
            | Self::TooLarge { .. } => "bad_input",
            Self::NotFound { .. } => "not_found",
            Self::Permission { .. } => "forbidden",
            Self::Exists { .. } => "conflict",
            Self::Io { .. } => "failed",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn io<'a>(action: &'static str, path: &'a str) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| match source.kind() {
        ErrorKind::NotFound => Error::NotFound { path: path.to_string() },
        ErrorKind::PermissionDenied => Error::Permission { path: path.to_string() },
        ErrorKind::AlreadyExists => Error::Exists { path: path.to_string() },
        _ => Error::Io { action, path: path.to_string(), source },
    }
}

/// A checked relative path: its components, none of them `.`, `..` or empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelPath {
    parts: Vec<OsString>,
}

impl RelPath {
    /// Checks `relative` by its words alone: relative, no `..`, no NUL, not
    /// under `.git` (in any case: `.GIT` is `.git` on some filesystems).
    pub fn parse(relative: &str) -> Result<RelPath> {
        let path = relative.to_string();
        if relative.contains('\0') {
            return Err(Error::Malformed { path });
        }
        let mut parts = Vec::new();
        for component in Path::new(relative).components() {
            match component {
                Component::Normal(part) => parts.push(part.to_os_string()),
                Component::CurDir => {}
                Component::ParentDir => return Err(Error::Parent { path }),
                Component::RootDir | Component::Prefix(_) => return Err(Error::Absolute { path }),
            }
        }
        if parts.first().is_some_and(|first| first.to_string_lossy().eq_ignore_ascii_case(".git")) {
            return Err(Error::GitDir { path });
        }
        Ok(RelPath { parts })
    }

    pub fn is_root(&self) -> bool {
        self.parts.is_empty()
    }

    /// `/`-separated, as shown to people and sent on the wire.
    pub fn display(&self) -> String {
        self.parts.iter().map(|part| part.to_string_lossy()).collect::<Vec<_>>().join("/")
    }

    pub fn to_path_buf(&self) -> PathBuf {
        self.parts.iter().collect()
    }

    fn split(&self) -> Option<(&[OsString], &OsString)> {
        self.parts.split_last().map(|(name, parents)| (parents, name))
    }
}

/// What a path names, without following a symlink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Other,
}

fn kind_of(meta: &Metadata) -> Kind {
    let file_type = meta.file_type();
    if file_type.is_symlink() {
        Kind::Symlink
    } else if file_type.is_dir() {
        Kind::Dir
    } else if file_type.is_file() {
        Kind::File
    } else {
        Kind::Other
    }
}

/// One entry of a directory listing.
#[derive(Clone, Debug)]
pub struct Entry {
    pub name: String,
    pub kind: Kind,
    pub size: u64,
}

/// A workspace root held open as a directory handle.
pub struct Root {
    dir: Dir,
    path: PathBuf,
}

impl Root {
    pub fn open(path: &Path) -> Result<Root> {
        let shown = path.display().to_string();
        let path = path.canonicalize().map_err(io("open", &shown))?;
        let dir = Dir::open_ambient_dir(&path, cap_std::ambient_authority()).map_err(io("open", &shown))?;
        Ok(Root { dir, path })
    }

    /// The root's canonical path, for running git and showing people.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the directory `parts` below the root, one component at a time,
    /// refusing symlinks; `create` makes missing directories on the way.
    fn open_dir(&self, shown: &str, parts: &[OsString], create: bool) -> Result<Dir> {
        let mut dir = self.dir.try_clone().map_err(io("open", shown))?;
        for (idx, part) in parts.iter().enumerate() {
            let next = match dir.open_dir_nofollow(part) {
                Err(error) if error.kind() == ErrorKind::NotFound && create => {
                    match dir.create_dir(part) {
                        Ok(()) => {}
                        Err(error) if error.kind() == ErrorKind::AlreadyExists => {}
                        Err(error) => return Err(io("create a folder for", shown)(error)),
                    }
                    dir.open_dir_nofollow(part)
                }
                other => other,
            };
            dir = next.map_err(|error| self.explain(&dir, shown, parts, idx, error))?;
        }
        Ok(dir)
    }

    /// Names the symlink (or file) that stopped a walk at `parts[idx]`.
    fn explain(&self, dir: &Dir, shown: &str, parts: &[OsString], idx: usize, error: std::io::Error) -> Error {
        let link: PathBuf = parts[..=idx].iter().collect();
        match dir.symlink_metadata(&parts[idx]).map(|meta| kind_of(&meta)) {
            Ok(Kind::Symlink) => Error::Symlink { path: shown.into(), link: link.display().to_string() },
            Ok(Kind::File | Kind::Other) => Error::NotFound { path: shown.into() },
            _ => io("open", shown)(error),
        }
    }

    /// The parent directory's handle and the final name.
    fn parent(&self, path: &RelPath, create: bool) -> Result<(Dir, OsString)> {
        let shown = path.display();
        let (parents, name) = path.split().ok_or_else(|| Error::Directory { path: "the workspace root".into() })?;
        Ok((self.open_dir(&shown, parents, create)?, name.clone()))
    }

    /// What `path` is, not following a final symlink; `None` if it is missing.
    pub fn kind(&self, path: &RelPath) -> Result<Option<(Kind, u64)>> {
        if path.is_root() {
            return Ok(Some((Kind::Dir, 0)));
        }
        let shown = path.display();
        let (dir, name) = match self.parent(path, false) {
            Ok(found) => found,
            Err(Error::NotFound { .. }) => return Ok(None),
            Err(error) => return Err(error),
        };
        match dir.symlink_metadata(&name) {
            Ok(meta) => Ok(Some((kind_of(&meta), meta.len()))),
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(None),
            Err(error) => Err(io("inspect", &shown)(error)),
        }
    }

    /// The target a symlink names, as text (never followed).
    pub fn link_target(&self, path: &RelPath) -> Result<String> {
        let shown = path.display();
        let (dir, name) = self.parent(path, false)?;
        let target = dir.read_link_contents(&name).map_err(io("read the link", &shown))?;
        Ok(target.display().to_string())
    }

    /// The entries of a directory, at most `max`.
    pub fn list(&self, path: &RelPath, max: usize) -> Result<Vec<Entry>> {
        let shown = path.display();
        let dir = self.open_dir(&shown, &path.parts, false)?;
        let mut entries = Vec::new();
        for entry in dir.entries().map_err(io("list", &shown))?.take(max) {
            let entry = entry.map_err(io("list", &shown))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let meta = entry.metadata().map_err(io("list", &name))?;
            entries.push(Entry { name, kind: kind_of(&meta), size: meta.len() });
        }
        Ok(entries)
    }

    /// A regular file's bytes, refusing a symlink, a directory, a pipe or
    /// anything over `max` bytes (checked on the open handle).
    pub fn read(&self, path: &RelPath, max: u64) -> Result<Vec<u8>> {
        let shown = path.display();
        let (dir, name) = self.parent(path, false)?;
        let mut options = OpenOptions::new();
        // Non-blocking, so a FIFO planted in the workspace cannot hang the
        // open; it is refused below as not a regular file.
        options.read(true).follow(FollowSymlinks::No).custom_flags(libc::O_NONBLOCK);
        let mut file = dir.open_with(&name, &options).map_err(|error| self.refusal(&dir, &name, &shown, error))?;
        let meta = file.metadata().map_err(io("read", &shown))?;
        match kind_of(&meta) {
            Kind::File => {}
            Kind::Dir => return Err(Error::Directory { path: shown }),
            _ => return Err(Error::NotRegular { path: shown }),
        }
        if meta.len() > max {
            return Err(Error::TooLarge { path: shown, max });
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        // A file that grows while it is read is cut at `max + 1`, and refused.
        (&mut file).take(max + 1).read_to_end(&mut bytes).map_err(io("read", &shown))?;
        if bytes.len() as u64 > max {
            return Err(Error::TooLarge { path: shown, max });
        }
        Ok(bytes)
    }

    /// Why opening `name` failed: a symlink is named as such.
    fn refusal(&self, dir: &Dir, name: &OsString, shown: &str, error: std::io::Error) -> Error {
        match dir.symlink_metadata(name).map(|meta| kind_of(&meta)) {
            Ok(Kind::Symlink) => Error::Symlink { path: shown.into(), link: shown.into() },
            _ => io("open", shown)(error),
        }
    }

    /// Writes `bytes` to `path` through a temporary file created exclusively
    /// beside it with a random name, then renamed over it: a crash never
    /// leaves half a file and nothing planted beside it is ever opened. A
    /// final symlink is refused, not followed or replaced. The permissions
    /// of the file replaced are kept. `create_new` refuses an existing file.
    pub fn write(&self, path: &RelPath, bytes: &[u8], create_new: bool) -> Result<()> {
        let shown = path.display();
        let (dir, name) = self.parent(path, true)?;
        let mode = match dir.symlink_metadata(&name) {
            Ok(meta) if create_new => {
                let _ = meta;
                return Err(Error::Exists { path: shown });
            }
            Ok(meta) => match kind_of(&meta) {
                Kind::File => Some(meta.permissions().mode()),
                Kind::Symlink => return Err(Error::Symlink { path: shown.clone(), link: shown }),
                Kind::Dir => return Err(Error::Directory { path: shown }),
                Kind::Other => return Err(Error::NotRegular { path: shown }),
            },
            Err(error) if error.kind() == ErrorKind::NotFound => None,
            Err(error) => return Err(io("write", &shown)(error)),
        };
        let (temp_name, mut file) = create_temp(&dir, &name, mode.unwrap_or(0o644)).map_err(io("write", &shown))?;
        let written = (|| {
            file.write_all(bytes)?;
            file.sync_all()
        })();
        if let Err(error) = written {
            let _ = dir.remove_file(&temp_name);
            return Err(io("write", &shown)(error));
        }
        let placed = if create_new {
            // Hard-link then unlink: fails, like `O_EXCL`, if the name
            // appeared meanwhile, instead of replacing what is there.
            dir.hard_link(&temp_name, &dir, &name).and_then(|()| dir.remove_file(&temp_name))
        } else {
            dir.rename(&temp_name, &dir, &name)
        };
        if let Err(error) = placed {
            let _ = dir.remove_file(&temp_name);
            return Err(io("write", &shown)(error));
        }
        Ok(())
    }

    /// Creates a directory (and its parents), refusing symlinks on the way.
    pub fn create_dir_all(&self, path: &RelPath) -> Result<()> {
        self.open_dir(&path.display(), &path.parts, true).map(|_| ())
    }

    /// Moves `from` to `to` (a symlink is moved as a link); refuses an
    /// existing `to`.
    pub fn rename(&self, from: &RelPath, to: &RelPath) -> Result<()> {
        let (source_dir, source_name) = self.parent(from, false)?;
        let (target_dir, target_name) = self.parent(to, true)?;
        let shown = from.display();
        source_dir.symlink_metadata(&source_name).map_err(io("move", &shown))?;
        if target_dir.symlink_metadata(&target_name).is_ok() {
            return Err(Error::Exists { path: to.display() });
        }
        source_dir.rename(&source_name, &target_dir, &target_name).map_err(io("move", &shown))
    }

    /// Deletes a file or a symlink (the link, never its target), or an
    /// empty directory.
    pub fn remove(&self, path: &RelPath) -> Result<Kind> {
        let shown = path.display();
        let (dir, name) = self.parent(path, false)?;
        let kind = kind_of(&dir.symlink_metadata(&name).map_err(io("delete", &shown))?);
        match kind {
            Kind::Dir => dir.remove_dir(&name).map_err(io("delete (only empty folders are deleted)", &shown))?,
            _ => dir.remove_file_or_symlink(&name).map_err(io("delete", &shown))?,
        }
        Ok(kind)
    }
}

/// A new file beside `name`, created with `O_EXCL` under a random name.
fn create_temp(dir: &Dir, name: &OsString, mode: u32) -> std::io::Result<(OsString, cap_std::fs::File)> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let mut temp = OsString::from(".");
        temp.push(name);
        temp.push(format!(".{:016x}.cortex-partial", rand::random::<u64>()));
        let mut options = OpenOptions::new();
        options.write(true).create_new(true).mode(mode).follow(FollowSymlinks::No);
        match dir.open_with(&temp, &options) {
            Ok(file) => {
                // The mode asked for is filtered by the umask; the file
                // replaced had exactly this one.
                file.set_permissions(cap_std::fs::Permissions::from_mode(mode))?;
                return Ok((temp, file));
            }
            Err(error) if error.kind() == ErrorKind::AlreadyExists && attempts < 8 => continue,
            Err(error) => return Err(error),
        }
    }
}

#[cfg(test)]
mod tests;
