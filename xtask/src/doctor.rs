//! `doctor`: which tools are present, their versions, and whether Docker answers.
//! Every problem lands in one report; exit 3 if anything a task needs is missing.

use crate::cli::{Args, Spec};
use crate::{ctx::Ctx, exit, tools};
use anyhow::Result;

pub const SPEC: Spec = Spec {
    name: "doctor",
    about: "Which tools are present, their versions, and whether the Docker daemon answers",
    positional: None,
    flags: &[],
};

/// Tool, the argument that prints its version, and the tasks that need it.
const CHECKS: &[(&str, &str, &str)] = &[
    ("docker", "--version", "image smoke integration scan publish"),
    ("git", "--version", "bump-version image publish"),
    ("trivy", "--version", "scan publish"),
    ("skopeo", "--version", "publish"),
    ("hadolint", "--version", "(CI lint only)"),
];

pub fn run(ctx: &Ctx, _args: &Args) -> Result<()> {
    let mut problems = Vec::new();
    println!("{:<10} {:<10} {:<28} {:<34} needed by", "tool", "status", "version", "path");
    for (tool, flag, needed_by) in CHECKS {
        let Some(path) = tools::find(tool) else {
            println!("{tool:<10} {:<10} {:<28} {:<34} {needed_by}", "missing", "-", tools::how_to_get(tool));
            if !needed_by.starts_with('(') {
                problems.push(format!("`{tool}` missing ({})", tools::how_to_get(tool)));
            }
            continue;
        };
        let out = ctx.probe_output(ctx.sh.cmd(&path).arg(flag))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let ver = text.lines().next().unwrap_or("").trim().to_string();
        let status = if out.status.success() { "ok" } else { "broken" };
        println!("{tool:<10} {status:<10} {ver:<28} {:<34} {needed_by}", path.display());
        if !out.status.success() {
            problems.push(format!("`{tool} {flag}` failed; reinstall {tool}"));
        }
        if *tool == "trivy" && out.status.success() {
            let want = &ctx.config()?.trivy_version;
            if !ver.ends_with(want.as_str()) {
                problems.push(format!("trivy is `{ver}` but the scan accepts exactly {want}; install Trivy {want}"));
            }
        }
    }
    if tools::find("docker").is_some() {
        match tools::docker_daemon(ctx) {
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
