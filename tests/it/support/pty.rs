//! The real binary on a pseudo-terminal, for what a person at a terminal
//! sees and types: the output is collected as it comes, lines are typed.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};

use super::TestEnv;

pub struct Terminal {
    child: Box<dyn portable_pty::Child + Send + Sync>,
    writer: Box<dyn Write + Send>,
    output: Arc<Mutex<String>>,
    _master: Box<dyn portable_pty::MasterPty + Send>,
}

impl TestEnv {
    /// `cortex ARGS` in `dir` on a terminal, with `data` as its data dir.
    pub fn cortex_on_terminal(&self, dir: &Path, data: &Path, args: &[&str]) -> Terminal {
        self.on_terminal(env!("CARGO_BIN_EXE_cortex"), dir, data, args)
    }

    /// `PROGRAM ARGS` in `dir` on a terminal, with `data` as Cortex's data
    /// dir and the tested `cortex` first on the PATH.
    pub fn on_terminal(&self, program: &str, dir: &Path, data: &Path, args: &[&str]) -> Terminal {
        let pair = native_pty_system()
            .openpty(PtySize { rows: 40, cols: 200, pixel_width: 0, pixel_height: 0 })
            .expect("a pseudo-terminal");
        let mut command = CommandBuilder::new(program);
        command.env_clear();
        let bin = Path::new(env!("CARGO_BIN_EXE_cortex")).parent().unwrap().display().to_string();
        for (key, value) in [
            ("PATH", format!("{bin}:{}", std::env::var("PATH").unwrap_or_default())),
            ("HOME", self.home.display().to_string()),
            ("CORTEX_HOME", data.display().to_string()),
            ("USER", "tester".into()),
            ("TERM", "dumb".into()),
            ("GIT_CONFIG_GLOBAL", "/dev/null".into()),
            ("GIT_CONFIG_NOSYSTEM", "1".into()),
            ("GIT_AUTHOR_NAME", "Test Author".into()),
            ("GIT_AUTHOR_EMAIL", "author@example.com".into()),
            ("GIT_COMMITTER_NAME", "Test Committer".into()),
            ("GIT_COMMITTER_EMAIL", "committer@example.com".into()),
        ] {
            command.env(key, value);
        }
        command.cwd(dir);
        command.args(args);
        let child = pair.slave.spawn_command(command).unwrap_or_else(|error| panic!("{program} starts: {error}"));
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().unwrap();
        let writer = pair.master.take_writer().unwrap();
        let output = Arc::new(Mutex::new(String::new()));
        let sink = output.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(read) = reader.read(&mut buffer) {
                if read == 0 {
                    break;
                }
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buffer[..read]));
            }
        });
        Terminal { child, writer, output, _master: pair.master }
    }
}

impl Terminal {
    /// Waits (up to 60 s) until the output holds `text` `count` times.
    pub fn expect_times(&self, text: &str, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if self.output().matches(text).count() >= count {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the terminal never showed `{text}` {count} time(s):\n{}", self.output());
    }

    pub fn expect(&self, text: &str) {
        self.expect_times(text, 1);
    }

    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Waits (up to 60 s) for the program to end; its exit code.
    pub fn wait_exit(&mut self) -> u32 {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.exit_code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the program did not end:\n{}", self.output());
    }

    /// Types `keys` as they are (a Tab, say), no Enter.
    pub fn type_keys(&mut self, keys: &str) {
        self.writer.write_all(keys.as_bytes()).unwrap();
        self.writer.flush().unwrap();
    }

    /// Types `line` and Enter.
    pub fn type_line(&mut self, line: &str) {
        self.writer.write_all(format!("{line}\r").as_bytes()).unwrap();
        self.writer.flush().unwrap();
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
