//! `cortex panel …`: the web panel.

use clap::Subcommand;

use super::Exit;
use super::backend::Ctx;
use super::client::Target;

#[derive(Debug, Subcommand)]
pub(crate) enum PanelCommand {
    /// Print a fresh one-time login link for the web panel.
    Login,
}

pub(crate) fn run(command: PanelCommand, ctx: &Ctx) -> anyhow::Result<Exit> {
    match command {
        PanelCommand::Login => {
            let client = Target::require(&ctx.data, ctx.core.as_deref(), "a panel login link")?;
            let link: crate::protocol::LoginLink = client.post("/panel/login-links", &serde_json::json!({}))?;
            println!("{}", link.url);
            eprintln!("The link works once; it logs this browser in to the panel.");
            Ok(Exit::Ok)
        }
    }
}
