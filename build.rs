//! Puts the commit and its date into `cortex --version` (`0.1.0 (1a2b3c4d5e6f
//! 2026-12-05)`): from git when building a checkout, else from
//! `CORTEX_COMMIT`/`CORTEX_COMMIT_DATE` (a source tarball), else `unknown`.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    let from_env = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    let commit = from_env("CORTEX_COMMIT").or_else(|| git(&["rev-parse", "--short=12", "HEAD"]));
    let date = from_env("CORTEX_COMMIT_DATE").or_else(|| git(&["log", "-1", "--format=%cs"]));
    println!("cargo:rustc-env=CORTEX_COMMIT={}", commit.as_deref().unwrap_or("unknown"));
    println!("cargo:rustc-env=CORTEX_COMMIT_DATE={}", date.as_deref().unwrap_or("unknown"));
    println!("cargo:rerun-if-env-changed=CORTEX_COMMIT");
    println!("cargo:rerun-if-env-changed=CORTEX_COMMIT_DATE");
    // A new commit changes HEAD (a branch) or the ref it names.
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        println!("cargo:rerun-if-changed={dir}/HEAD");
        if let Some(head) = git(&["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={dir}/{head}");
        }
        println!("cargo:rerun-if-changed={dir}/packed-refs");
    }
}
