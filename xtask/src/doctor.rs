//! `doctor`: which tools are present, their versions, and whether Docker answers.
//! Every problem lands in one report; exit 3 if anything a task needs is missing.

use crate::runner::Cmd;
use crate::tools::{self, docker};
use crate::{ctx::Ctx, exit};
use anyhow::Result;

/// Tool, the argument that prints its version, and the tasks that need it.
const CHECKS: &[(&str, &str, &str)] = &[
    ("docker", "--version", "image smoke integration scan publish"),
    ("git", "--version", "bump-version image publish"),
    ("trivy", "--version", "scan publish"),
    ("skopeo", "--version", "publish"),
    ("docker-registry", "--version", "(publish --local; else a registry:2 image)"),
    ("hadolint", "--version", "(CI lint only)"),
];

pub fn run(ctx: &Ctx) -> Result<()> {
    let mut problems = Vec::new();
    println!("{:<16} {:<8} {:<10} {:<36} needed by", "tool", "status", "version", "path");
    for (tool, flag, needed_by) in CHECKS {
        let Some(path) = tools::find(tool) else {
            println!("{tool:<16} {:<8} {:<10} {:<36} {needed_by}", "missing", "-", tools::how_to_get(tool));
            if !needed_by.starts_with('(') {
                problems.push(format!("`{tool}` missing ({})", tools::how_to_get(tool)));
            }
            continue;
        };
        let out = ctx.run.read(&Cmd::new(&path).arg(flag))?;
        let text = out.text();
        let line = text.lines().next().unwrap_or("").trim().to_string();
        let ver = version_in(&line).unwrap_or(&line).to_string();
        let status = if out.ok() { "ok" } else { "broken" };
        println!("{tool:<16} {status:<8} {ver:<10} {:<36} {needed_by}", path.display());
        if !out.ok() {
            problems.push(format!("`{tool} {flag}` failed; reinstall {tool}"));
        }
        if *tool == "trivy" && out.ok() {
            let want = &ctx.config()?.trivy_version;
            if ver != *want {
                problems.push(format!("trivy is `{ver}` but the scan accepts exactly {want}; install Trivy {want}"));
            }
        }
    }
    if tools::find("docker").is_some() {
        match docker::daemon_version(ctx) {
            Ok(v) => println!("docker daemon: answers (engine {v})"),
            Err(e) => {
                println!("docker daemon: does not answer");
                problems.push(e.to_string());
            }
        }
    }
    if problems.is_empty() {
        println!("all tools present");
        return Ok(());
    }
    Err(exit::env(format!("{} problem(s): {}", problems.len(), problems.join("; "))))
}

/// The version number in a tool's `--version` line: its first token that starts with a digit
/// (`Docker version 28.2.2, build e6534b4` -> `28.2.2`; `Version: 0.59.1` -> `0.59.1`).
fn version_in(line: &str) -> Option<&str> {
    line.split_whitespace()
        .map(|t| t.trim_end_matches(',').trim_start_matches('v'))
        .find(|t| t.starts_with(|c: char| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::version_in;

    #[test]
    fn versions_from_real_version_lines() {
        for (line, want) in [
            ("Docker version 28.2.2, build e6534b4", "28.2.2"),
            ("git version 2.47.3", "2.47.3"),
            ("Version: 0.59.1", "0.59.1"),
            ("skopeo version 1.9.3", "1.9.3"),
            ("Haskell Dockerfile Linter 2.15.1", "2.15.1"),
            ("docker-registry github.com/docker/distribution 2.8.2+ds1", "2.8.2+ds1"),
        ] {
            assert_eq!(version_in(line), Some(want), "{line}");
        }
        assert_eq!(version_in("no digits here"), None);
    }
}
