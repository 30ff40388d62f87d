//! Small host programs: `sha256sum`, `cargo metadata`, `htpasswd`, `docker-registry`.

use crate::ctx::Ctx;
use crate::exit;
use crate::runner::{Background, Cmd};
use anyhow::{Context, Result};
use std::path::Path;

/// `sha256sum -- FILES…` run in `dir`: `path → hex`. Errors name what could not be hashed.
pub fn sha256_files(ctx: &Ctx, dir: &Path, files: &[String]) -> Result<Vec<(String, String)>> {
    let mut sums = Vec::new();
    for chunk in files.chunks(500) {
        let out = ctx.run.read(&Cmd::new("sha256sum").arg("--").args(chunk).dir(dir))?;
        out.env_ok(format_args!("sha256sum failed in {}", dir.display()))?;
        for line in out.text().lines() {
            if let Some((sum, path)) = line.split_once("  ") {
                sums.push((path.to_string(), sum.to_string()));
            }
        }
    }
    Ok(sums)
}

/// sha256 of bytes given on stdin.
pub fn sha256_of(ctx: &Ctx, bytes: &[u8]) -> Result<String> {
    let out = ctx.run.read(&Cmd::new("sha256sum").stdin(bytes.to_vec()))?;
    out.text()
        .split_whitespace()
        .next()
        .map(String::from)
        .filter(|_| out.ok())
        .context("sha256sum printed nothing")
}

/// sha256 of one file.
pub fn sha256_file(ctx: &Ctx, file: &Path) -> Result<String> {
    let out = ctx.run.read(&Cmd::new("sha256sum").arg("--").arg(file))?;
    out.text()
        .split_whitespace()
        .next()
        .map(String::from)
        .filter(|_| out.ok())
        .with_context(|| format!("cannot hash {}: {}", file.display(), out.error_line()))
}

/// `cargo metadata` of a manifest, offline (the config lives in its workspace metadata).
pub fn cargo_metadata(ctx: &Ctx, manifest: &Path) -> Result<serde_json::Value> {
    let c = Cmd::new("cargo")
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
            "--manifest-path",
        ])
        .arg(manifest);
    let out = ctx.run.read(&c)?;
    if !out.ok() {
        return Err(exit::usage(format!(
            "cannot read {}: {}; fix the manifest",
            manifest.display(),
            out.stderr.trim()
        )));
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// One bcrypt htpasswd line (the only hash the registry takes), the password on stdin.
pub fn htpasswd_line(ctx: &Ctx, user: &str, password: &str) -> Result<String> {
    let out = ctx
        .run
        .read(&Cmd::new("htpasswd").args(["-Bin", user]).secret_stdin(password))?;
    out.env_ok("htpasswd failed")?;
    Ok(out.text())
}

/// `docker-registry serve CONFIG`, its log in `log`. It reads `REGISTRY_*` variables as
/// config overrides: it gets none of ours.
pub fn serve_registry(ctx: &Ctx, config: &Path, log: &Path) -> Result<Background> {
    let c = Cmd::new("docker-registry")
        .arg("serve")
        .arg(config)
        .env_remove("REGISTRY_USERNAME")
        .env_remove("REGISTRY_PASSWORD")
        .env_remove("REGISTRY_PASSWORD_FILE");
    let server = ctx.run.spawn(&c, Some(log))?;
    if let Some(pid) = server.pid() {
        crate::cleanup::own_process(pid);
    }
    Ok(server)
}
