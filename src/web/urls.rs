//! Every URL the panel builds, in one place. Ids go into paths as they are
//! (they are checked ids: `ses_…`, `wsp_…`, `nod_…`); a file's path and any
//! other text go into queries percent-encoded, so a file named
//! `a&b #1.txt` opens, edits and diffs. Templates call these too.

use std::fmt::Display;

/// `text` percent-encoded for a query value (`&`, `#`, `+`, `%`, spaces; a
/// `/` may stay, it means nothing in a query).
pub(crate) fn encode(text: &str) -> String {
    askama::filters::urlencode(text).expect("holds because encoding cannot fail").to_string()
}

pub(crate) fn session(id: impl Display) -> String {
    format!("/sessions/{id}")
}

/// A tool of the registry (or a project's), by its server's name.
pub(crate) fn tool(name: &str) -> String {
    format!("/tools/{}", encode(name))
}

/// What a session's gateway offers it, and why a tool is not offered.
pub(crate) fn session_tools(session: impl Display) -> String {
    format!("/sessions/{session}/tools")
}

pub(crate) fn turn(session: impl Display, turn: impl Display) -> String {
    format!("/sessions/{session}/turns/{turn}")
}

/// One turn's diff, or the whole session's.
pub(crate) fn diff(session: impl Display, turn: Option<u32>) -> String {
    match turn {
        Some(turn) => turn_diff(session, turn),
        None => session_diff(session),
    }
}

pub(crate) fn turn_diff(session: impl Display, turn: impl Display) -> String {
    format!("/sessions/{session}/turns/{turn}/diff")
}

pub(crate) fn session_diff(session: impl Display) -> String {
    format!("/sessions/{session}/diff")
}

pub(crate) fn event(session: impl Display, seq: impl Display) -> String {
    format!("/sessions/{session}/events/{seq}")
}

pub(crate) fn evidence(session: impl Display) -> String {
    format!("/sessions/{session}/evidence")
}

/// An artifact as the panel serves it: each part of its path encoded.
pub(crate) fn artifact(session: impl Display, turn: u32, path: &str) -> String {
    let parts: Vec<String> = path.split('/').map(encode).collect();
    format!("/sessions/{session}/artifacts/{turn}/{}", parts.join("/"))
}

/// The session's report as a download.
pub(crate) fn report(session: impl Display, format: &str) -> String {
    format!("/sessions/{session}/report?format={format}")
}

pub(crate) fn workspace(id: impl Display) -> String {
    format!("/workspaces/{id}")
}

pub(crate) fn node(id: impl Display) -> String {
    format!("/nodes/{id}")
}

pub(crate) fn command(id: impl Display) -> String {
    format!("/commands/{id}")
}

pub(crate) fn terminal(id: impl Display) -> String {
    format!("/terminals/{id}")
}

/// A file of a workspace; of a session's worktree when `session` is set
/// (an empty `session` is none).
pub(crate) fn file(workspace: impl Display, path: &str, session: impl Display) -> String {
    place(workspace, "file", path, session)
}

/// A folder of a workspace, as [`file`].
pub(crate) fn files(workspace: impl Display, path: &str, session: impl Display) -> String {
    place(workspace, "files", path, session)
}

fn place(workspace: impl Display, page: &str, path: &str, session: impl Display) -> String {
    let session = session.to_string();
    let session = if session.is_empty() { String::new() } else { format!("&session={}", encode(&session)) };
    format!("/workspaces/{workspace}/{page}?path={}{session}", encode(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_one_query_value_whatever_it_holds() {
        assert_eq!(
            file("wsp_1", "odd dir/a&b #1+%.txt", ""),
            "/workspaces/wsp_1/file?path=odd%20dir/a%26b%20%231%2B%25.txt"
        );
        assert_eq!(files("wsp_1", "", "ses_2"), "/workspaces/wsp_1/files?path=&session=ses_2");
    }
}
