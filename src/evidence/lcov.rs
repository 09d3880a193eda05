//! lcov tracefiles (`coverage/lcov.info`): lines found and hit per source file.

use crate::protocol::{CoverageReport, FileCoverage};

/// Files kept per report; the totals count all of them.
const MAX_FILES: usize = 500;

pub fn is_lcov(path: &str, text: &str) -> bool {
    let named = path.ends_with(".info") || path.rsplit('/').next().unwrap_or(path).contains("lcov");
    named && text.lines().any(|line| line.starts_with("SF:")) && text.contains("end_of_record")
}

pub fn parse(path: &str, text: &str) -> CoverageReport {
    let mut files = Vec::new();
    let mut current: Option<FileCoverage> = None;
    // DA lines, for records without LF/LH.
    let (mut da_found, mut da_hit) = (0u64, 0u64);
    let (mut lf, mut lh) = (None, None);
    for line in text.lines().map(str::trim) {
        if let Some(file) = line.strip_prefix("SF:") {
            current = Some(FileCoverage { file: file.to_string(), lines_found: 0, lines_hit: 0 });
            (da_found, da_hit, lf, lh) = (0, 0, None, None);
        } else if let Some(data) = line.strip_prefix("DA:") {
            da_found += 1;
            let hits = data.split(',').nth(1).and_then(|hits| hits.trim().parse::<u64>().ok()).unwrap_or(0);
            da_hit += u64::from(hits > 0);
        } else if let Some(found) = line.strip_prefix("LF:") {
            lf = found.trim().parse().ok();
        } else if let Some(hit) = line.strip_prefix("LH:") {
            lh = hit.trim().parse().ok();
        } else if line == "end_of_record"
            && let Some(mut file) = current.take()
        {
            file.lines_found = lf.unwrap_or(da_found);
            file.lines_hit = lh.unwrap_or(da_hit).min(file.lines_found);
            files.push(file);
        }
    }
    let lines_found = files.iter().map(|file| file.lines_found).fold(0u64, u64::saturating_add);
    let lines_hit = files.iter().map(|file| file.lines_hit).fold(0u64, u64::saturating_add);
    files.sort_by(|a, b| {
        let ratio = |file: &FileCoverage| file.lines_hit as f64 / file.lines_found.max(1) as f64;
        ratio(a).total_cmp(&ratio(b)).then_with(|| a.file.cmp(&b.file))
    });
    files.truncate(MAX_FILES);
    CoverageReport { path: path.to_string(), lines_found, lines_hit, files }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_summed_per_file_least_covered_first() {
        let text = "TN:\nSF:src/a.rs\nDA:1,1\nDA:2,0\nLF:2\nLH:1\nend_of_record\nSF:src/b.rs\nDA:1,3\nDA:2,0\nDA:3,0\nDA:4,1\nend_of_record\nSF:src/c.rs\nLF:3\nLH:0\nend_of_record\n";
        assert!(is_lcov("coverage/lcov.info", text));
        assert!(!is_lcov("notes.txt", text));
        let report = parse("coverage/lcov.info", text);
        assert_eq!((report.lines_found, report.lines_hit), (9, 3));
        let names: Vec<_> =
            report.files.iter().map(|file| (file.file.as_str(), file.lines_hit, file.lines_found)).collect();
        assert_eq!(names, [("src/c.rs", 0, 3), ("src/a.rs", 1, 2), ("src/b.rs", 2, 4)]);
        assert_eq!(report.percent(), Some(33.3));
    }
}
