//! README.md's rules name the tests that check them: every rule of the Security section, and
//! the "How requests are checked" section, cites at least one test, and every test it cites
//! exists (a black-box test in `tests/api/<file>.rs`, or a unit test where it says
//! `config::tests`).

use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The text of README.md from `from` to the next `## ` heading.
fn section<'a>(readme: &'a str, from: &str) -> &'a str {
    let start = readme
        .find(from)
        .unwrap_or_else(|| panic!("README has {from}"));
    let rest = &readme[start + from.len()..];
    &rest[..rest.find("\n## ").unwrap_or(rest.len())]
}

/// The `module::test` names cited in `*( ... )*` groups.
fn cited(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for group in text.split("*(").skip(1) {
        let inside = group.split(")*").next().unwrap_or("");
        for name in inside.split(',') {
            let name = name.trim();
            if !name.is_empty() {
                out.push(name.to_string());
            }
        }
    }
    out
}

fn exists(name: &str) -> bool {
    let (file, test) = match name.strip_prefix("config::tests::") {
        Some(test) => ("src/config/tests.rs".to_string(), test),
        None => {
            let Some((module, test)) = name.split_once("::") else {
                return false;
            };
            (format!("tests/api/{module}.rs"), test)
        }
    };
    std::fs::read_to_string(root().join(file))
        .is_ok_and(|text| text.contains(&format!("fn {test}(")))
}

#[test]
fn every_security_rule_names_the_test_that_checks_it() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let security = section(&readme, "\n## Security\n");
    let rules = security.split("\n- **").skip(1);
    let mut n = 0;
    for rule in rules {
        let rule = rule.split("\n\n").next().unwrap_or(rule);
        let names = cited(rule);
        let title = rule.split("**").next().unwrap_or(rule);
        assert!(
            !names.is_empty(),
            "the Security rule {title:?} names no test"
        );
        for name in names {
            assert!(
                exists(&name),
                "the rule {title:?} names {name}, which is not a test"
            );
        }
        n += 1;
    }
    assert!(
        n >= 25,
        "only {n} Security rules read: has the section's shape changed?"
    );
}

#[test]
fn how_requests_are_checked_names_its_tests() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let checked = section(&readme, "\n## How requests are checked\n");
    let names = cited(checked);
    assert!(names.len() >= 10, "{names:?}");
    for name in names {
        assert!(
            exists(&name),
            "How requests are checked names {name}, which is not a test"
        );
    }
    // The rules can fail.
    assert!(!exists("auth::no_such_test"));
    assert!(cited("x *(a::b, c::d)* y").len() == 2);
}

/// bench/README.md is a reference, not a diary: under 300 lines, with the current figures.
#[test]
fn the_benchmark_readme_is_a_reference() {
    let text = std::fs::read_to_string(root().join("bench/README.md")).unwrap();
    assert!(
        text.lines().count() < 300,
        "bench/README.md has {} lines; keep it under 300 (git keeps the history)",
        text.lines().count()
    );
    for heading in [
        "## The scripts",
        "## Current figures",
        "## What the measurements taught",
    ] {
        assert!(text.contains(heading), "bench/README.md lacks {heading:?}");
    }
}
