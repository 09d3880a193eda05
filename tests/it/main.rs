//! The integration tests: the real `cortex` binary against real git
//! repositories in temp dirs. One binary, a file per area.

mod accessibility;
mod acp;
mod authority;
mod browser;
mod checks;
mod claude;
mod cli;
mod cluster;
mod codex;
mod conformance;
mod crash;
mod evidence;
mod index;
mod inspector;
mod lifecycle;
mod limits;
mod lists;
mod panel;
mod provenance;
mod refs;
mod review;
mod reviewer;
mod seam;
mod secrets;
mod session;
mod shell;
mod soak;
mod store;
mod support;
mod telemetry;
mod terminal;
mod tidy;
mod tools;
mod usage;
mod worktree;
