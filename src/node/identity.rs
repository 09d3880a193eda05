//! Who this node is: its typed id, its secret for Core and its display
//! name, kept 0600 in the data dir as `node.toml`. The in-process node of
//! the CLI and the daemon of `cortex up` or `cortex node run` on the same
//! data dir are one node with one id: the first of them to run creates the
//! identity, the others adopt it, and Core takes the id over when it has
//! not seen it (issue 11, bug 3). Bindings name nodes by this id only.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Error, Result};
use crate::protocol::NodeId;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Identity {
    pub node_id: NodeId,
    pub secret: String,
    pub name: String,
    /// Made by this node and not yet accepted by any Core: `node run`
    /// enrolls with a token (proposing this id) instead of presenting it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unconfirmed: bool,
}

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("node.toml")
}

impl Identity {
    pub fn load(data_dir: &Path) -> Result<Option<Identity>> {
        let path = path(data_dir);
        match fs_err::read_to_string(&path) {
            Ok(text) => {
                toml::from_str(&text).map(Some).map_err(|error| Error::Config { path, detail: error.to_string() })
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(Error::Io { context: format!("cannot read `{}`", path.display()), source }),
        }
    }

    /// The node's identity, made (unconfirmed, named after this machine)
    /// when the data dir has none yet.
    pub fn load_or_create(data_dir: &Path) -> Result<Identity> {
        if let Some(identity) = Identity::load(data_dir)? {
            return Ok(identity);
        }
        let identity =
            Identity { node_id: NodeId::generate(), secret: new_secret(), name: super::host_name(), unconfirmed: true };
        identity.save(data_dir)?;
        Ok(identity)
    }

    /// Writes the credential (0600) beside `node.toml` and renames it into
    /// place: a crash or a reader never sees a half-written credential.
    pub fn save(&self, data_dir: &Path) -> Result<()> {
        use std::io::Write;
        let path = path(data_dir);
        let io = |source| Error::Io { context: format!("cannot write `{}`", path.display()), source };
        fs_err::create_dir_all(data_dir).map_err(io)?;
        let text = toml::to_string(self).expect("holds because identities are plain TOML");
        // tempfile creates it 0600, under a random name, exclusively.
        let mut file = tempfile::Builder::new().prefix(".node.toml.").tempfile_in(data_dir).map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)?;
        file.as_file().sync_all().map_err(io)?;
        file.persist(&path).map_err(|error| io(error.error))?;
        Ok(())
    }
}

/// A node secret: `cnd_` and 32 random bytes in hex, as Core makes them.
fn new_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("cnd_{}", hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = Identity::load_or_create(dir.path()).unwrap();
        assert!(first.unconfirmed);
        let again = Identity::load_or_create(dir.path()).unwrap();
        assert_eq!((again.node_id, again.secret), (first.node_id, first.secret));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path(dir.path())).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "a credential is private");
    }
}
