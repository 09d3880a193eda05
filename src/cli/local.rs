//! The in-process Core and Node every command uses in this build: find the
//! data dir, replay what a crashed process left in spools, sync the index.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::core::Core;
use crate::node::Node;

pub(crate) fn data_dir(flag: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = flag {
        return Ok(dir);
    }
    let dirs = directories::ProjectDirs::from("dev", "cortex", "cortex")
        .context("cannot find a home directory for Cortex's data; pass --data DIR or set CORTEX_HOME")?;
    Ok(dirs.data_dir().to_path_buf())
}

pub(crate) struct Local {
    pub node: Node,
    pub core: Core,
}

impl Local {
    /// Node and Core on `data`, with crashed sessions recovered and the index
    /// in step with the refs.
    pub(crate) fn open(data: &Path) -> anyhow::Result<Local> {
        let node = Node::open(data).context("cannot open this machine's node")?;
        for recovered in node.recover().context("cannot recover crashed sessions")? {
            let what = if recovered.interrupted { ", marked interrupted" } else { "" };
            eprintln!(
                "cortex: recovered {} spooled event(s) of session {}{what}",
                recovered.replayed, recovered.session
            );
        }
        let mut core = Core::open(data).context("cannot open the index")?;
        core.sync(&node.workspaces()?).context("cannot sync the index with the session refs")?;
        Ok(Local { node, core })
    }
}
