//! Long output on a terminal goes through a pager, as git does:
//! `$CORTEX_PAGER`, else `$PAGER`, else `less -FRX` (which prints a short
//! text straight away and keeps colours). Not a terminal, `--no-pager`, or
//! a pager that will not start: stdout as it is.

use std::io::{IsTerminal, Write};
use std::process::{Child, Command, Stdio};

/// Where a command writes its long output; `finish` waits for the pager.
pub(crate) struct Paged {
    child: Option<Child>,
    out: Box<dyn Write>,
}

impl Paged {
    pub(crate) fn start(no_pager: bool) -> Paged {
        let stdout = || Paged { child: None, out: Box::new(std::io::stdout()) };
        if no_pager || !std::io::stdout().is_terminal() {
            return stdout();
        }
        let chosen = ["CORTEX_PAGER", "PAGER"]
            .iter()
            .find_map(|name| std::env::var(name).ok())
            .unwrap_or_else(|| "less -FRX".to_string());
        // An empty pager, or `cat`, means none.
        if chosen.trim().is_empty() || chosen.trim() == "cat" {
            return stdout();
        }
        let mut command = Command::new("sh");
        command.args(["-c", &chosen]).stdin(Stdio::piped());
        if std::env::var_os("LESS").is_none() {
            command.env("LESS", "FRX");
        }
        match command.spawn() {
            Ok(mut child) => {
                let input = child.stdin.take().expect("a piped stdin");
                Paged { child: Some(child), out: Box::new(input) }
            }
            Err(error) => {
                tracing::warn!(pager = %chosen, %error, "the pager did not start; writing to stdout");
                stdout()
            }
        }
    }

    pub(crate) fn out(&mut self) -> &mut dyn Write {
        &mut self.out
    }

    /// Closes the pager's input and waits until the person leaves it.
    pub(crate) fn finish(mut self) -> std::io::Result<()> {
        let flushed = self.out.flush();
        self.out = Box::new(std::io::sink());
        if let Some(mut child) = self.child.take() {
            child.wait()?;
            // Quitting the pager early is not an error.
            return Ok(());
        }
        flushed
    }
}
