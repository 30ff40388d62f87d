//! `doctor`: which tools are present, their versions, and whether Docker answers; and the
//! tools the image pins (Dockerfile) next to what this machine has of them.
//! Every problem lands in one report; exit 3 if anything a task needs is missing.

use crate::runner::Cmd;
use crate::tools::{self, docker};
use crate::{ctx::Ctx, exit, tags};
use anyhow::Result;
use std::collections::BTreeMap;
use std::time::Duration;

/// Tool, the argument that prints its version, and the tasks that need it.
const CHECKS: &[(&str, &str, &str)] = &[
    ("docker", "--version", "image smoke integration scan publish"),
    ("git", "--version", "bump-version image publish"),
    ("trivy", "--version", "scan publish"),
    ("skopeo", "--version", "publish"),
    (
        "docker-registry",
        "--version",
        "(publish --local; else a registry:2 image)",
    ),
    ("hadolint", "--version", "(CI lint only)"),
    ("curl", "--version", "(bump-tool)"),
];

pub fn run(ctx: &Ctx) -> Result<()> {
    let mut problems = Vec::new();
    println!(
        "{:<16} {:<8} {:<10} {:<36} needed by",
        "tool", "status", "version", "path"
    );
    for (tool, flag, needed_by) in CHECKS {
        let Some(path) = tools::find(tool) else {
            println!(
                "{tool:<16} {:<8} {:<10} {:<36} {needed_by}",
                "missing",
                "-",
                tools::how_to_get(tool)
            );
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
                problems.push(format!(
                    "trivy is `{ver}` but the scan accepts exactly {want}; install Trivy {want}"
                ));
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
    pins(ctx);
    if problems.is_empty() {
        println!("all tools present");
        return Ok(());
    }
    Err(exit::env(format!(
        "{} problem(s): {}",
        problems.len(),
        problems.join("; ")
    )))
}

/// The image's tools as the Dockerfile pins them, and what this machine has of them (for
/// information: they run inside the image, so none is needed here and none is a problem).
fn pins(ctx: &Ctx) {
    let args = match std::fs::read_to_string(ctx.path("Dockerfile")) {
        Ok(df) => tags::dockerfile_args(&df, &[]),
        Err(e) => {
            println!("image pins: cannot read the Dockerfile ({e})");
            return;
        }
    };
    let found: BTreeMap<&str, String> = tags::TOOLS.iter().map(|t| (*t, on_this_machine(ctx, t))).collect();
    print!("{}", pin_table(&args, &found));
}

/// `tool  pinned  sha256 (prefix)  on this machine`, one row per tool of the image.
fn pin_table(args: &BTreeMap<String, String>, found: &BTreeMap<&str, String>) -> String {
    let mut s = format!(
        "{:<16} {:<8} {:<14} on this machine\n",
        "image tool", "pinned", "sha256"
    );
    for tool in tags::TOOLS {
        let up = tool.to_ascii_uppercase();
        let arg = |k: &str| args.get(&format!("{up}_{k}")).filter(|v| !v.is_empty());
        let ver = arg("VERSION").map_or("-", |v| v.trim_start_matches('v'));
        let sum = arg("SHA256").map_or("-".to_string(), |v| {
            format!("{}…", v.chars().take(12).collect::<String>())
        });
        let here = found.get(tool).map_or("-", String::as_str);
        s.push_str(&format!("{tool:<16} {ver:<8} {sum:<14} {here}\n"));
    }
    s
}

/// The version a tool on PATH reports, with its path; or that it is absent.
fn on_this_machine(ctx: &Ctx, tool: &str) -> String {
    let Some(path) = tools::find(tool) else {
        return "not installed (not needed: it runs in the image)".to_string();
    };
    let args: &[&str] = match tool {
        "helm" => &["version", "--template", "{{.Version}}"],
        _ => &["version"],
    };
    let out = ctx
        .run
        .read(&Cmd::new(&path).args(args).timeout(Duration::from_secs(10)));
    match out {
        Ok(o) if o.ok() => {
            let text = o.text();
            let ver = reported_version(&text).unwrap_or("?");
            format!("{ver} ({})", path.display())
        }
        _ => format!("does not run ({})", path.display()),
    }
}

/// The version in `kyverno version` (`Version: 1.19.1`), `pluto version`
/// (`Version:5.24.0 Commit:...`) or `helm version --template '{{.Version}}'` (`v3.22.0`).
fn reported_version(text: &str) -> Option<&str> {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    let first = line.split_whitespace().next()?;
    match first.strip_prefix("Version:") {
        Some("") => version_in(line),
        Some(v) => Some(v.trim_start_matches('v')),
        None => version_in(line),
    }
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
    use super::*;

    #[test]
    fn pins_next_to_the_machine() {
        let df = "ARG HELM_VERSION=3.22.0\nARG HELM_SHA256=1e4ab49e429626cf6c6958d914248b78c9730803c2751b87627e171dc800e7bb\nARG PLUTO_VERSION=v5.24.0\n";
        let args = tags::dockerfile_args(df, &[]);
        let found = BTreeMap::from([("helm", "3.21.0 (/usr/bin/helm)".to_string())]);
        let t = pin_table(&args, &found);
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[0].starts_with("image tool") && lines[0].ends_with("on this machine"),
            "{t}"
        );
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            ["kyverno", "-", "-", "-"]
        );
        assert_eq!(
            lines[2].split_whitespace().collect::<Vec<_>>(),
            ["helm", "3.22.0", "1e4ab49e4296…", "3.21.0", "(/usr/bin/helm)"]
        );
        assert_eq!(
            lines[3].split_whitespace().collect::<Vec<_>>(),
            ["pluto", "5.24.0", "-", "-"]
        );
        assert_eq!(reported_version("Version: 1.19.1\nTime: x\n"), Some("1.19.1"));
        assert_eq!(reported_version("Version:5.24.0 Commit:abc\n"), Some("5.24.0"));
        assert_eq!(reported_version("v3.22.0"), Some("3.22.0"));
        assert_eq!(reported_version(""), None);
    }

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
