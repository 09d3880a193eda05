//! From a session to a commit of the person's, and back.

use crate::support::TestEnv;

#[test]
fn a_session_commit_carries_the_trailer_and_leads_back() {
    let env = TestEnv::new();
    let script = env.script(
        "s.toml",
        "[[step]]\nwrite_file = { path = \"src/feature.rs\", content = \"pub fn f() {}\\n\" }\n[[step]]\ndelete_file = \"README.md\"\n",
    );
    let id = env.start("add the feature", &script);
    // The person's own unrelated work stays out of the commit.
    std::fs::write(env.repo.join(".gitignore"), "target/\nmine/\n").unwrap();
    std::fs::write(env.repo.join("notes.txt"), "mine\n").unwrap();

    let run = env.cortex_ok(["session", "commit", &id, "-m", "Add the feature", "--json"]);
    let commit = run.json()["commit"].as_str().unwrap().to_string();
    let message = env.git(&env.repo, ["log", "-1", "--format=%B", &commit]);
    assert!(message.starts_with("Add the feature"), "{message}");
    assert!(message.contains(&format!("Cortex-Session: {id}")), "{message}");
    let files = env.git(&env.repo, ["show", "--name-status", "--format=", &commit]);
    assert_eq!(files, "D\tREADME.md\nA\tsrc/feature.rs\n");
    let status = env.git(&env.repo, ["status", "--porcelain"]);
    assert_eq!(status, " M .gitignore\n?? notes.txt\n");

    let found = env.cortex_ok(["session", "for-commit", "HEAD"]);
    assert!(found.stdout.starts_with(&id), "{}", found.stdout);
    let log = env.cortex_ok(["session", "log", &id, "--json"]).json();
    let recorded = log.as_array().unwrap().iter().find(|event| event["kind"] == "commit_created").unwrap();
    assert_eq!(recorded["commit"], commit.as_str());

    let none = env.cortex(["session", "for-commit", "HEAD~1"]);
    assert_eq!(none.code, 1);
    let again = env.cortex(["session", "commit", &id]);
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("changed nothing that could be committed"), "{}", again.stderr);
}
