//! `cortex up` and `cortex core`: Core (with its web page) in this process,
//! and for `up` a local node beside it. Ctrl-C stops running turns (their
//! stores are flushed; the sessions can be resumed) and then Core.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio::sync::watch;

use super::Exit;
use super::backend::Ctx;
use crate::core::{CoreState, ServeConfig};
use crate::node::daemon::{self, DaemonConfig};
use crate::node::identity::Identity;

/// Run Core, its web page and a node for this machine, in one process.
///
/// Data lives in --data / CORTEX_HOME (or the platform data dir). Other
/// `cortex` commands on this machine find this Core by itself.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cortex up
  cortex up --bind 127.0.0.1:8080
  cortex up --bind 0.0.0.0:7777   # reachable from other machines: anyone with the token drives agents")]
pub(crate) struct UpArgs {
    #[command(flatten)]
    serve: ServeArgs,
}

/// Options shared by `cortex up` and `cortex core`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on. Anything but loopback exposes Core to the network.
    #[arg(long, default_value = "127.0.0.1:7777")]
    pub bind: SocketAddr,
    /// How often nodes send a heartbeat, in milliseconds.
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    pub heartbeat_ms: u64,
    /// A node silent this long is shown as stale.
    #[arg(long, default_value_t = 15000, value_name = "MS")]
    pub stale_after_ms: u64,
    /// A node silent this long is offline; its running sessions show as interrupted.
    #[arg(long, default_value_t = 45000, value_name = "MS")]
    pub offline_after_ms: u64,
}

impl ServeArgs {
    pub(crate) fn config(&self, ctx: &Ctx) -> ServeConfig {
        let mut config = ServeConfig::new(ctx.data.clone(), self.bind);
        config.heartbeat = Duration::from_millis(self.heartbeat_ms.max(50));
        config.stale_after = Duration::from_millis(self.stale_after_ms);
        config.offline_after = Duration::from_millis(self.offline_after_ms.max(self.stale_after_ms));
        config
    }
}

pub(crate) fn run(args: UpArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    serve(&args.serve, ctx, true)
}

/// Serves Core (and, with `with_node`, the local node) until Ctrl-C or SIGTERM.
pub(crate) fn serve(args: &ServeArgs, ctx: &Ctx, with_node: bool) -> anyhow::Result<Exit> {
    let mut lock = lock_data_dir(&ctx.data)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let state = CoreState::open(args.config(ctx))?;
        let panel = crate::web::Panel::new(!args.bind.ip().is_loopback());
        let server = crate::core::serve(state.clone(), crate::web::router(state.clone(), panel.clone())).await?;
        // Who holds the lock, for the next one that tries.
        {
            use std::io::{Seek, Write};
            let _ = lock.set_len(0).and_then(|()| lock.rewind());
            let _ = writeln!(lock, "pid {} at {}", std::process::id(), server.url);
        }
        if !args.bind.ip().is_loopback() {
            eprintln!(
                "warning: Core listens on {}, beyond this machine: anyone who can reach it and has the token can drive agents",
                args.bind
            );
        }
        let (stop, stopped) = watch::channel(false);
        let node = if with_node { Some(tokio::spawn(run_local_node(state.clone(), server.url.clone(), ctx.data.clone(), stopped))) } else { None };
        println!("Cortex is up at {}/", server.url);
        println!("Log in to the panel (this link works once): {}", panel.login_url(&server.url, crate::web::DEFAULT_NAME));
        crate::cli::output::note!("Admin token: {} (CLIs on this machine find it by themselves). Stop with Ctrl-C.", ctx.data.join("admin.token").display());
        shutdown_signal().await;
        crate::cli::output::note!("Stopping: running turns are stopped and their stores flushed…");
        let _ = stop.send(true);
        if let Some(node) = node {
            match node.await {
                Ok(Err(error)) => eprintln!("warning: the local node stopped with: {error:#}"),
                Err(error) => eprintln!("warning: the local node failed: {error}"),
                Ok(Ok(())) => {}
            }
        }
        let url_file = state.url_file();
        server.stop().await;
        let _ = fs_err::remove_file(url_file);
        crate::cli::output::note!("Stopped.");
        Ok(Exit::Ok)
    })
}

async fn run_local_node(
    state: std::sync::Arc<CoreState>,
    url: String,
    data: std::path::PathBuf,
    stopped: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    // The node that ran sessions in-process here is the node Core runs.
    let known = Identity::load_or_create(&data)?;
    let (node_id, secret) = state.local_node(Some((&known.node_id, &known.secret)), &known.name)?;
    Identity { node_id, secret, name: known.name, unconfirmed: false }.save(&data)?;
    let config =
        DaemonConfig { core_url: url, enroll_token: None, data_dir: data, name: None, allowed_roots: Vec::new() };
    daemon::run(config, stopped).await?;
    Ok(())
}

/// Ctrl-C, or SIGTERM from a service manager.
pub(crate) async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match terminate.as_mut() {
                Some(signal) => { signal.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}

/// One Core per data dir: an OS lock on `core.lock`, held while Core runs
/// and released by the kernel when the process ends, crash included. A
/// second `cortex up` or `cortex core` on the same data dir refuses, naming
/// the one that runs.
fn lock_data_dir(data: &std::path::Path) -> anyhow::Result<std::fs::File> {
    fs_err::create_dir_all(data)?;
    let path = data.join("core.lock");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open `{}`", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            let holder = holder.trim();
            let holder = if holder.is_empty() { "starting up".to_string() } else { holder.to_string() };
            anyhow::bail!(
                "a Cortex Core already runs on the data dir `{}` ({holder}); stop it first, or give this one its own with --data",
                data.display()
            )
        }
        Err(std::fs::TryLockError::Error(error)) => {
            Err(error).with_context(|| format!("cannot lock `{}`", path.display()))
        }
    }
}
