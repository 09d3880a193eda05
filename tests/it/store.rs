//! The store's defences: repositories it cannot write safely, locks and
//! unreadable tips left by crashes.

use crate::support::TestEnv;

#[test]
fn a_reftable_repository_is_refused_with_the_fix() {
    let env = TestEnv::new();
    let repo = env.path("reftable");
    env.git(env.root.path(), ["init", "-q", "--ref-format=reftable", repo.to_str().unwrap()]);
    let run = env.cortex_in(&repo, ["session", "start", "go"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("git refs migrate --ref-format=files"), "{}", run.stderr);
    assert!(env.git(&repo, ["for-each-ref"]).trim().is_empty());
}

#[test]
fn a_stale_ref_lock_from_a_crash_does_not_block_the_session() {
    let env = TestEnv::new();
    let id = env.start("one", &env.script("s.toml", ""));
    let lock = env.repo.join(format!(".git/refs/cortex/sessions/{id}.lock"));
    std::fs::write(&lock, "").unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
    std::fs::File::options().write(true).open(&lock).unwrap().set_modified(old).unwrap();
    env.cortex_ok(["session", "send", &id, "two"]);
    assert!(!lock.exists());
}

#[test]
fn an_unreadable_tip_falls_back_to_the_newest_readable_one_in_the_reflog() {
    let env = TestEnv::new();
    let id = env.start("one", &env.script("s.toml", ""));
    let reference = format!("refs/cortex/sessions/{id}");
    let tip = env.git(&env.repo, ["rev-parse", &reference]).trim().to_string();
    let parent = env.git(&env.repo, ["rev-parse", &format!("{reference}~1")]).trim().to_string();
    // A power loss after the ref moved but before the object reached disk.
    std::fs::remove_file(env.repo.join(format!(".git/objects/{}/{}", &tip[..2], &tip[2..]))).unwrap();

    let sent = env.cortex_ok(["session", "send", &id, "two", "--json"]).json();
    assert_eq!(sent["outcome"], "completed");
    let history = env.git(&env.repo, ["rev-list", &reference]);
    assert!(history.lines().any(|commit| commit == parent), "the new turn builds on the restored tip");
    let fsck = env.git_run(&env.repo, ["fsck", "--no-dangling", "--no-reflogs"]);
    assert_eq!(fsck.code, 0, "{}", fsck.stderr);
}

/// Round 1 called a SHA-256 repository "not a git repository".
#[test]
fn a_sha256_repository_is_named_as_such() {
    let env = TestEnv::new();
    let repo = env.path("sha256");
    let init = env.git_run(env.root.path(), ["init", "-q", "--object-format=sha256", repo.to_str().unwrap()]);
    assert_eq!(init.code, 0, "{}", init.stderr);
    let run = env.cortex_in(&repo, ["session", "start", "hello", "--json"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("SHA-256"), "{}", run.stderr);
    assert!(!run.stderr.contains("not inside a git repository"), "{}", run.stderr);
}
