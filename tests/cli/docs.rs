//! The documentation stays true: the README's example policy is valid and releases on the
//! sample data, and every link between the README and `docs/` reaches a file and a heading.

use std::path::Path;

use crate::common::*;

/// The first ```toml block after `heading` in `text`.
fn toml_after(text: &str, heading: &str) -> String {
    let at = text.find(heading).expect("the heading");
    let start = text[at..].find("```toml\n").expect("a toml block") + at + 8;
    let end = text[start..].find("```").unwrap() + start;
    text[start..end].to_string()
}

#[test]
fn the_readme_policy_is_valid_and_releases() {
    let readme = fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    let s = sample();
    s.write(
        "policies/brief.toml",
        &toml_after(&readme, "## A policy in brief"),
    );
    s.run(&["check", "policies/brief.toml"]).expect_code(0);
    s.run(&["release", "policies/brief.toml"]).expect_code(0);
}

/// GitHub's anchor of a heading: lower case, punctuation but `-` and `_` dropped, spaces as `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn every_link_between_the_readme_and_the_docs_resolves() {
    let root = Path::new(ROOT);
    let mut files = vec![root.join("README.md")];
    for e in fs::read_dir(root.join("docs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            files.push(p);
        }
    }
    let mut broken = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).unwrap();
        let mut rest = text.as_str();
        while let Some(i) = rest.find("](") {
            rest = &rest[i + 2..];
            let Some(end) = rest.find(')') else { break };
            let link = &rest[..end];
            if link.starts_with("http") || link.contains(' ') {
                continue;
            }
            let (path, fragment) = link.split_once('#').unwrap_or((link, ""));
            let target = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            let Ok(target_text) = fs::read_to_string(&target).or_else(|e| {
                // An image or another file: it must exist.
                if target.exists() {
                    Ok(String::new())
                } else {
                    Err(e)
                }
            }) else {
                broken.push(format!("{}: {link} (no such file)", file.display()));
                continue;
            };
            if !fragment.is_empty()
                && !target_text
                    .lines()
                    .filter(|l| l.starts_with('#'))
                    .any(|l| anchor(l.trim_start_matches('#')) == fragment)
            {
                broken.push(format!("{}: {link} (no such heading)", file.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links: {broken:#?}");
    assert!(files.len() >= 6, "{files:?}");
}
