//! Test results: JUnit XML (the format most runners can write) and TAP,
//! read into one [`TestReport`], failures first.

use quick_xml::events::{BytesStart, Event};

use crate::protocol::{TestCase, TestOutcome, TestReport};

/// Cases kept per report; the counts are of all of them.
const MAX_CASES: usize = 2000;
/// A failure message is cut here.
const MAX_MESSAGE: usize = 2048;

/// Whether `text` is a JUnit XML report: its root is `testsuites` or `testsuite`.
pub fn is_junit(text: &str) -> bool {
    let head: String = text.chars().take(4096).collect();
    head.contains("<testsuite")
}

/// Whether `text` is TAP: a `.tap` file, or one opening with a TAP version or plan.
pub fn is_tap(path: &str, text: &str) -> bool {
    let first = text.lines().map(str::trim).find(|line| !line.is_empty()).unwrap_or_default();
    let plan = first.strip_prefix("1..").is_some_and(|count| count.split(' ').next().is_some_and(is_number));
    path.ends_with(".tap") || first.starts_with("TAP version") || plan
}

fn is_number(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit())
}

/// The case being read, inside `<testcase>`.
struct Open {
    case: TestCase,
    /// Text of a `<failure>`/`<error>` without a `message` attribute.
    body: Option<String>,
}

pub fn parse_junit(path: &str, text: &str) -> Result<TestReport, String> {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut suites: Vec<String> = Vec::new();
    let mut cases = Vec::new();
    let mut open: Option<Open> = None;
    loop {
        let event = reader
            .read_event()
            .map_err(|error| format!("not valid XML at byte {}: {error}", reader.error_position()))?;
        match event {
            Event::Start(tag) if tag.local_name().as_ref() == "testsuite" => {
                suites.push(attribute(&tag, "name").unwrap_or_default());
            }
            Event::Empty(tag) if tag.local_name().as_ref() == "testsuite" => {}
            Event::End(tag) if tag.local_name().as_ref() == "testsuite" => {
                suites.pop();
            }
            Event::Start(tag) if tag.local_name().as_ref() == "testcase" => {
                open = Some(Open { case: case_of(&tag, suites.last()), body: None });
            }
            Event::Empty(tag) if tag.local_name().as_ref() == "testcase" => cases.push(case_of(&tag, suites.last())),
            Event::Start(tag) | Event::Empty(tag) => {
                let Some(open) = &mut open else { continue };
                match tag.local_name().as_ref() {
                    "failure" | "error" => {
                        open.case.outcome = TestOutcome::Failed;
                        match attribute(&tag, "message").filter(|message| !message.is_empty()) {
                            Some(message) => open.case.message = Some(super::cut(&message, MAX_MESSAGE)),
                            None => open.body = Some(String::new()),
                        }
                    }
                    "skipped" if open.case.outcome != TestOutcome::Failed => open.case.outcome = TestOutcome::Skipped,
                    _ => {}
                }
            }
            Event::Text(content) => {
                if let Some(body) = open.as_mut().and_then(|open| open.body.as_mut())
                    && body.len() < MAX_MESSAGE
                {
                    body.push_str(&content.xml10_content());
                }
            }
            Event::GeneralRef(reference) => {
                if let Some(body) = open.as_mut().and_then(|open| open.body.as_mut()) {
                    let name = reference.xml10_content();
                    match reference.resolve_char_ref().ok().flatten() {
                        Some(char) => body.push(char),
                        None => body.push_str(quick_xml::escape::resolve_predefined_entity(&name).unwrap_or("")),
                    }
                }
            }
            Event::CData(content) => {
                if let Some(body) = open.as_mut().and_then(|open| open.body.as_mut())
                    && body.len() < MAX_MESSAGE
                {
                    body.push_str(&content.xml10_content());
                }
            }
            Event::End(tag) if tag.local_name().as_ref() == "testcase" => {
                if let Some(Open { mut case, body }) = open.take() {
                    if case.message.is_none() {
                        case.message = body.map(|body| super::cut(body.trim(), MAX_MESSAGE)).filter(|m| !m.is_empty());
                    }
                    cases.push(case);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(report(path, "junit", cases))
}

fn attribute(tag: &BytesStart<'_>, name: &str) -> Option<String> {
    let attribute = tag.try_get_attribute(name).ok()??;
    Some(
        attribute
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map(|value| value.into_owned())
            .unwrap_or_else(|_| attribute.value.clone().into_owned()),
    )
}

fn case_of(tag: &BytesStart<'_>, suite: Option<&String>) -> TestCase {
    let name = attribute(tag, "name").unwrap_or_else(|| "(unnamed)".into());
    let class = attribute(tag, "classname").filter(|class| !class.is_empty());
    let name = match (class, suite.filter(|suite| !suite.is_empty())) {
        (Some(class), _) => format!("{class}::{name}"),
        (None, Some(suite)) => format!("{suite}::{name}"),
        (None, None) => name,
    };
    let time_ms = attribute(tag, "time")
        .and_then(|time| time.trim().parse::<f64>().ok())
        .filter(|time| time.is_finite() && *time >= 0.0)
        .map(|time| (time * 1000.0).round() as u64);
    TestCase { name, outcome: TestOutcome::Passed, time_ms, message: None }
}

/// TAP 12/13/14: `ok`/`not ok` lines; `# SKIP` and `# TODO` count as skipped;
/// the comment and YAML lines after a `not ok` are its message.
pub fn parse_tap(path: &str, text: &str) -> TestReport {
    let mut cases: Vec<TestCase> = Vec::new();
    let mut collecting = false;
    for line in text.lines() {
        let trimmed = line.trim();
        let result = trimmed
            .strip_prefix("not ok")
            .map(|rest| (false, rest))
            .or_else(|| trimmed.strip_prefix("ok").map(|rest| (true, rest)))
            .filter(|(_, rest)| rest.is_empty() || rest.starts_with(' '));
        if let Some((ok, rest)) = result {
            let (description, directive) = match rest.split_once(" # ") {
                Some((description, directive)) => (description, directive.trim().to_ascii_uppercase()),
                None => (rest, String::new()),
            };
            let description = description.trim();
            let number = description.split(' ').next().filter(|word| is_number(word));
            let name = description
                .strip_prefix(number.unwrap_or_default())
                .unwrap_or(description)
                .trim()
                .trim_start_matches("- ")
                .trim();
            let name = if name.is_empty() { format!("test {}", number.unwrap_or("?")) } else { name.to_string() };
            let skipped = directive.starts_with("SKIP") || directive.starts_with("TODO");
            let outcome = match (ok, skipped) {
                (_, true) => TestOutcome::Skipped,
                (true, false) => TestOutcome::Passed,
                (false, false) => TestOutcome::Failed,
            };
            collecting = outcome == TestOutcome::Failed;
            cases.push(TestCase { name, outcome, time_ms: None, message: None });
        } else if collecting && (line.starts_with(' ') || line.starts_with('#')) && !trimmed.is_empty() {
            let message =
                cases.last_mut().expect("holds because collecting follows a case").message.get_or_insert_default();
            if message.len() < MAX_MESSAGE {
                let detail = trimmed.trim_start_matches('#').trim();
                if !matches!(detail, "---" | "...") {
                    if !message.is_empty() {
                        message.push('\n');
                    }
                    message.push_str(detail);
                }
            }
        } else {
            collecting = false;
        }
    }
    for case in &mut cases {
        case.message = case.message.take().map(|message| super::cut(&message, MAX_MESSAGE)).filter(|m| !m.is_empty());
    }
    report(path, "tap", cases)
}

fn report(path: &str, format: &str, mut cases: Vec<TestCase>) -> TestReport {
    let count = |outcome| cases.iter().filter(|case| case.outcome == outcome).count() as u64;
    let (passed, failed, skipped) =
        (count(TestOutcome::Passed), count(TestOutcome::Failed), count(TestOutcome::Skipped));
    // Failures first, then skipped, then passed; each in the report's order.
    cases.sort_by_key(|case| case.outcome);
    let truncated = cases.len() > MAX_CASES;
    cases.truncate(MAX_CASES);
    TestReport { path: path.to_string(), format: format.to_string(), passed, failed, skipped, cases, truncated }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JUNIT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites>
  <testsuite name="math" tests="4">
    <testcase classname="math.add" name="adds" time="0.012"/>
    <testcase classname="math.div" name="divides" time="0.5">
      <failure message="expected 2 &amp; got 3" type="AssertionError">stack here</failure>
    </testcase>
    <testcase name="later"><skipped/></testcase>
    <testcase name="crashes"><error><![CDATA[panicked at <src/lib.rs>]]></error></testcase>
  </testsuite>
  <testsuite name="empty"/>
</testsuites>"#;

    #[test]
    fn junit_failures_come_first_with_their_messages() {
        assert!(is_junit(JUNIT));
        let report = parse_junit("target/junit.xml", JUNIT).unwrap();
        assert_eq!((report.passed, report.failed, report.skipped), (1, 2, 1));
        let cases: Vec<_> =
            report.cases.iter().map(|case| (case.name.as_str(), case.outcome, case.message.as_deref())).collect();
        assert_eq!(
            cases,
            [
                ("math.div::divides", TestOutcome::Failed, Some("expected 2 & got 3")),
                ("math::crashes", TestOutcome::Failed, Some("panicked at <src/lib.rs>")),
                ("math::later", TestOutcome::Skipped, None),
                ("math.add::adds", TestOutcome::Passed, None),
            ]
        );
        assert_eq!(report.cases[0].time_ms, Some(500));
    }

    #[test]
    fn broken_junit_is_an_error_naming_where() {
        let error = parse_junit("j.xml", "<testsuite><testcase name='a'></testsuite>").unwrap_err();
        assert!(error.contains("not valid XML"), "{error}");
    }

    #[test]
    fn tap_reads_plans_directives_and_diagnostics() {
        let text = "TAP version 13\n1..4\nok 1 - parses\nnot ok 2 - divides\n  ---\n  message: 'expected 2'\n  ...\nok 3 # SKIP no network\nnot ok 4 - flaky # TODO later\n";
        assert!(is_tap("out.txt", text));
        assert!(!is_tap("notes.txt", "hello\nok then"));
        let report = parse_tap("out.tap", text);
        assert_eq!((report.passed, report.failed, report.skipped), (1, 1, 2));
        assert_eq!(report.cases[0].name, "divides");
        assert_eq!(report.cases[0].message.as_deref(), Some("message: 'expected 2'"));
        assert_eq!(report.cases.last().unwrap().name, "parses");
    }
}
