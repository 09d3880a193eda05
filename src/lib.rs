//! Cortex: a control plane for AI coding agents. Sessions run agents in
//! workspaces on nodes; everything they do is kept as git objects under
//! `refs/cortex/*` in the workspace repository, and indexed in SQLite.
//!
//! Code map (see `docs/ARCHITECTURE.md`):
//! - [`protocol`]: ids, lifecycle states, normalized events;
//! - [`store`]: the git-native session store, the source of truth;
//! - [`index`]: the SQLite index, rebuildable from the store;
//! - [`sandbox`]: the one filesystem boundary for paths named inside a workspace;
//! - [`provider`]: agent providers (the scripted `fake`);
//! - [`node`]: runs sessions in workspaces;
//! - [`core`]: the control plane's queries over the index;
//! - [`web`]: server-rendered pages;
//! - [`cli`]: the `cortex` command line.

pub mod cli;
pub mod core;
pub mod evidence;
#[cfg(test)]
mod fuzz;
pub mod index;
pub mod node;
pub mod protocol;
pub mod provider;
pub mod sandbox;
pub mod store;
pub mod web;
