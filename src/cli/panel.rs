//! `cortex panel …`: the web panel.

use clap::Subcommand;

use super::Exit;
use super::backend::Ctx;
use super::client::Target;

#[derive(Debug, Subcommand)]
pub(crate) enum PanelCommand {
    /// Print a fresh one-time login link for the web panel.
    ///
    /// What the browser that opens it does (review comments, approvals,
    /// edits, terminals) is recorded as NAME's: `--as alice` makes her
    /// approval a `Reviewed-by: alice` trailer. Without `--as`, as `panel`.
    #[command(after_help = "Examples:
  cortex panel login
  cortex panel login --as alice --json")]
    Login {
        /// Who the link logs in as: 1 to 64 letters, digits, spaces or ._@+-.
        #[arg(long = "as", value_name = "NAME")]
        name: Option<String>,
        /// Print `{"url": …}` instead of the bare link.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(command: PanelCommand, ctx: &Ctx) -> anyhow::Result<Exit> {
    match command {
        PanelCommand::Login { name, json } => {
            if let Some(name) = &name {
                crate::web::person_name(name).map_err(anyhow::Error::msg)?;
            }
            let client = Target::require(ctx, "a panel login link")?;
            let link: crate::protocol::LoginLink =
                client.post("/panel/login-links", &serde_json::json!({ "name": name }))?;
            if json {
                super::output::print_json(&link)?;
            } else {
                println!("{}", link.url);
            }
            let who = name.as_deref().unwrap_or(crate::web::DEFAULT_NAME);
            crate::cli::output::note!("The link works once; it logs a browser in to the panel as {who}.");
            Ok(Exit::Ok)
        }
    }
}
