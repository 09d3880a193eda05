//! What a diff page shows of each file: hunks as unified rows or side-by-side
//! pairs, each line highlighted (see [`super::highlight`]), the words that
//! changed within a replaced line marked, and every line of the new side a
//! link that starts a review comment on it.

use super::highlight::{self, Budget};
use super::urls;
use crate::protocol::{DiffHunk, DiffLine, FileDiff};

/// Files with more changed lines than this start folded.
const FOLD_LINES: u64 = 400;
/// Lines one page highlights; the rest is shown plain.
pub(super) const PAGE_HIGHLIGHT_LINES: usize = 20_000;

pub(super) struct Cell {
    pub(super) number: String,
    pub(super) html: String,
    pub(super) class: &'static str,
    /// Starts a review comment on this line (the new side's cells).
    pub(super) comment: Option<String>,
}

pub(super) struct Row {
    pub(super) class: &'static str,
    pub(super) sign: char,
    pub(super) old: String,
    pub(super) new: String,
    pub(super) html: String,
    /// Starts a review comment on this line (lines of the new side).
    pub(super) comment: Option<String>,
}

pub(super) struct HunkView {
    pub(super) anchor: String,
    pub(super) header: String,
    /// Starts a review comment on the hunk's lines of the new side.
    pub(super) comment: String,
    pub(super) rows: Vec<Row>,
    pub(super) pairs: Vec<(Option<Cell>, Option<Cell>)>,
}

pub(super) struct FileView {
    pub(super) anchor: String,
    pub(super) path: String,
    pub(super) old_path: Option<String>,
    pub(super) status: &'static str,
    pub(super) binary: bool,
    pub(super) too_large: bool,
    pub(super) insertions: u64,
    pub(super) deletions: u64,
    pub(super) open: bool,
    /// Marked viewed by this page's reader, and not changed since.
    pub(super) viewed: bool,
    pub(super) hunks: Vec<HunkView>,
    /// `(turn, link to that turn's diff)`.
    pub(super) turns: Vec<(u32, String)>,
}

fn number(value: Option<u32>) -> String {
    value.map(|value| value.to_string()).unwrap_or_default()
}

fn class_of(tag: char) -> &'static str {
    match tag {
        '+' => "add",
        '-' => "del",
        _ => "ctx",
    }
}

/// Within a change, the n-th removed line faces the n-th added one:
/// `(removed index, added index)` into the hunk's lines.
fn facing(lines: &[DiffLine]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let (mut removed, mut added) = (Vec::new(), Vec::new());
    for (index, line) in lines.iter().enumerate() {
        if line.tag != '+' && !added.is_empty() || line.tag == ' ' {
            out.extend(removed.drain(..).zip(added.drain(..)));
            removed.clear();
            added.clear();
        }
        match line.tag {
            '-' => removed.push(index),
            '+' => added.push(index),
            _ => {}
        }
    }
    out.extend(removed.into_iter().zip(added));
    out
}

/// Each line of a hunk as HTML: the old side (context and removed lines)
/// and the new side (context and added lines) each parsed as one run.
fn hunk_html(
    hunk: &DiffHunk,
    syntax: Option<&'static syntect::parsing::SyntaxReference>,
    budget: &mut Budget,
) -> Vec<String> {
    let side = |keep: char| -> (Vec<usize>, Vec<&str>) {
        hunk.lines
            .iter()
            .enumerate()
            .filter(|(_, line)| line.tag == ' ' || line.tag == keep)
            .map(|(index, line)| (index, line.text.as_str()))
            .unzip()
    };
    let mut tokens = vec![None; hunk.lines.len()];
    for keep in ['-', '+'] {
        if keep == '-' && !hunk.lines.iter().any(|line| line.tag == '-') {
            continue;
        }
        let (indexes, texts) = side(keep);
        for (index, line) in indexes.into_iter().zip(highlight::run(syntax, &texts, budget)) {
            if hunk.lines[index].tag == keep || keep == '+' {
                tokens[index] = line;
            }
        }
    }
    let mut changed = vec![Vec::new(); hunk.lines.len()];
    for (removed, added) in facing(&hunk.lines) {
        let (old, new) = highlight::changed_words(&hunk.lines[removed].text, &hunk.lines[added].text);
        changed[removed] = old;
        changed[added] = new;
    }
    hunk.lines
        .iter()
        .enumerate()
        .map(|(index, line)| highlight::render(&line.text, tokens[index].as_ref(), &changed[index]))
        .collect()
}

/// Side by side: context on both sides; within a change, the n-th removed
/// line faces the n-th added one.
fn pairs(hunk: &DiffHunk, html: &[String], path: &str, keep: &str) -> Vec<(Option<Cell>, Option<Cell>)> {
    let cell = |index: usize, number: Option<u32>| Cell {
        number: self::number(number),
        html: html[index].clone(),
        class: class_of(hunk.lines[index].tag),
        comment: None,
    };
    let new = |index: usize| Cell {
        comment: hunk.lines[index].new.map(|line| comment_link(keep, path, &line.to_string())),
        ..cell(index, hunk.lines[index].new)
    };
    let mut out = Vec::new();
    let (mut removed, mut added) = (Vec::new(), Vec::new());
    let flush = |removed: &mut Vec<Cell>, added: &mut Vec<Cell>, out: &mut Vec<(Option<Cell>, Option<Cell>)>| {
        let count = removed.len().max(added.len());
        let mut removed = removed.drain(..);
        let mut added = added.drain(..);
        for _ in 0..count {
            out.push((removed.next(), added.next()));
        }
    };
    for (index, line) in hunk.lines.iter().enumerate() {
        match line.tag {
            '-' => removed.push(cell(index, line.old)),
            '+' => added.push(new(index)),
            _ => {
                flush(&mut removed, &mut added, &mut out);
                out.push((Some(cell(index, line.old)), Some(new(index))));
            }
        }
    }
    flush(&mut removed, &mut added, &mut out);
    out
}

/// The page's own link (relative: it keeps the page's path and, in `keep`,
/// its view choices as `name=value&…`) that starts a comment on `path` at
/// `lines` (`42` or `40-52`).
pub(super) fn comment_link(keep: &str, path: &str, lines: &str) -> String {
    format!("?{keep}path={}&line={lines}#review", urls::encode(path))
}

/// The lines a comment on a whole hunk covers: its new side, or the line
/// before a pure removal.
fn hunk_lines(hunk: &DiffHunk) -> String {
    match hunk.new_lines {
        0 | 1 => hunk.new_start.max(1).to_string(),
        lines => format!("{}-{}", hunk.new_start, hunk.new_start + lines - 1),
    }
}

/// How a diff page is viewed: side by side or not, the view choices its
/// own links keep, and what the reader has marked viewed (`path` → turn).
pub(super) struct Viewing<'a> {
    pub(super) split: bool,
    pub(super) keep: &'a str,
    pub(super) viewed: &'a std::collections::HashMap<String, u32>,
}

pub(super) fn file_view(
    session: &str,
    index: usize,
    file: FileDiff,
    viewing: &Viewing,
    budget: &mut Budget,
) -> FileView {
    let (split, keep) = (viewing.split, viewing.keep);
    let syntax = highlight::syntax_for(&file.path);
    let hunks = file
        .hunks
        .iter()
        .enumerate()
        .map(|(number, hunk)| {
            let html = hunk_html(hunk, syntax, budget);
            HunkView {
                anchor: format!("f{index}-h{}", number + 1),
                header: format!("@@ -{},{} +{},{} @@", hunk.old_start, hunk.old_lines, hunk.new_start, hunk.new_lines),
                comment: comment_link(keep, &file.path, &hunk_lines(hunk)),
                rows: if split {
                    Vec::new()
                } else {
                    hunk.lines
                        .iter()
                        .zip(&html)
                        .map(|(line, html)| Row {
                            class: class_of(line.tag),
                            sign: line.tag,
                            old: self::number(line.old),
                            new: self::number(line.new),
                            html: html.clone(),
                            comment: line.new.map(|new| comment_link(keep, &file.path, &new.to_string())),
                        })
                        .collect()
                },
                pairs: if split { pairs(hunk, &html, &file.path, keep) } else { Vec::new() },
            }
        })
        .collect();
    // A mark counts until a later turn changes the file again.
    let last_change = file.turns.iter().max().copied().unwrap_or(0);
    let viewed = viewing.viewed.get(&file.path).is_some_and(|turn| *turn >= last_change);
    FileView {
        anchor: format!("f{index}"),
        open: !viewed && !file.binary && !file.too_large && file.insertions + file.deletions <= FOLD_LINES,
        viewed,
        status: file.status.as_str(),
        binary: file.binary,
        too_large: file.too_large,
        insertions: file.insertions,
        deletions: file.deletions,
        turns: file.turns.iter().map(|turn| (*turn, urls::diff(session, Some(*turn)))).collect(),
        path: file.path,
        old_path: file.old_path,
        hunks,
    }
}

/// A folder of the file tree beside the diff, with its changed files.
pub(super) struct TreeDir {
    /// `""` for the repository's top.
    pub(super) dir: String,
    /// `(anchor, file name, file)`.
    pub(super) files: Vec<(String, String, usize)>,
}

/// The changed files grouped by folder, folders in path order: the tree
/// beside the diff. Each entry points into `files` by index.
pub(super) fn tree(files: &[FileView]) -> Vec<TreeDir> {
    let mut by_dir: std::collections::BTreeMap<&str, Vec<(String, String, usize)>> = Default::default();
    for (index, file) in files.iter().enumerate() {
        let (dir, name) = file.path.rsplit_once('/').unwrap_or(("", &file.path));
        by_dir.entry(dir).or_default().push((file.anchor.clone(), name.to_string(), index));
    }
    by_dir.into_iter().map(|(dir, files)| TreeDir { dir: dir.to_string(), files }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(tag: char, text: &str) -> DiffLine {
        DiffLine { tag, old: None, new: None, text: text.to_string() }
    }

    #[test]
    fn the_nth_removed_line_faces_the_nth_added_one() {
        let lines = [
            line(' ', "a"),
            line('-', "b"),
            line('-', "c"),
            line('+', "B"),
            line(' ', "d"),
            line('-', "e"),
            line('+', "E"),
            line('+', "F"),
        ];
        assert_eq!(facing(&lines), vec![(1, 3), (5, 6)]);
    }

    #[test]
    fn a_hunk_comment_covers_its_new_lines_or_the_line_before_a_removal() {
        let hunk = |new_start, new_lines| DiffHunk { old_start: 1, old_lines: 2, new_start, new_lines, lines: vec![] };
        assert_eq!(hunk_lines(&hunk(10, 5)), "10-14");
        assert_eq!(hunk_lines(&hunk(10, 1)), "10");
        assert_eq!(hunk_lines(&hunk(0, 0)), "1");
    }

    #[test]
    fn a_replaced_line_marks_the_changed_word_and_keeps_its_tokens() {
        let hunk = DiffHunk {
            old_start: 1,
            old_lines: 1,
            new_start: 1,
            new_lines: 1,
            lines: vec![line('-', "let limit = 10;"), line('+', "let limit = 20;")],
        };
        let html = hunk_html(&hunk, highlight::syntax_for("a.rs"), &mut Budget(100));
        assert!(html[0].contains("<span class=\"n w\">10</span>"), "{}", html[0]);
        assert!(html[1].contains("<span class=\"n w\">20</span>"), "{}", html[1]);
        assert!(html[1].starts_with("<span class=\"k\">let</span>"), "{}", html[1]);
    }
}
