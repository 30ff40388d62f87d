//! `smoke`: starts the image once and checks that each tool runs and reports exactly the
//! version pinned in the image's labels, and that `/repos/` holds exactly the checkout's
//! `policies/` (same files, same sha256, nothing else). Needs docker.

mod check;

use crate::cli::{self, Args, Spec};
use crate::{ctx::Ctx, exit, release, tags, tools};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::Path;

pub const SPEC: Spec = Spec {
    name: "smoke",
    about: "Check the tools and the policies inside the image (one container run)",
    positional: None,
    flags: &[cli::IMAGE, cli::DRY_RUN],
};

pub fn run(ctx: &Ctx, args: &Args) -> Result<()> {
    let image = release::image_arg(ctx, args)?;
    check(ctx, &image)
}

/// Runs every check on `image`. Exit 1 naming each failed check; exit 3 if the image
/// is not there or cannot be run.
pub fn check(ctx: &Ctx, image: &str) -> Result<()> {
    if !ctx.dry_run {
        tools::require_docker(ctx, &["docker"])?;
    }
    let mut run = ctx.sh.cmd("docker").args(["run", "--rm", "--pull", "never", "--network", "none", "--entrypoint", "sh"]);
    run = run.args([image, "-c", check::SCRIPT, "sh"]).args(tags::TOOLS);
    let inspect = ctx.sh.cmd("docker").args(["image", "inspect", "--format", "{{json .Config.Labels}}", image]);
    if ctx.dry_run {
        ctx.echo(&inspect);
        ctx.echo(&run);
        return Ok(());
    }
    ctx.step(&format!("smoke {image}"));
    // Start the container first: it is the slow part; the label and host reads overlap it.
    ctx.echo(&run);
    let child = std::process::Command::from(run)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("cannot start `docker run`")?;
    let labels = read_labels(ctx, image);
    let host = host_files(ctx);
    let out = child.wait_with_output().context("waiting for `docker run`")?;
    let (labels, host) = (labels?, host?);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let Some(seen) = check::parse_output(&stdout) else {
        let err = String::from_utf8_lossy(&out.stderr);
        let why = err.lines().chain(stdout.lines()).find(|l| !l.trim().is_empty()).unwrap_or("no output").trim().to_string();
        return Err(exit::env(format!(
            "cannot run the checks inside {image} ({why}); the image needs /bin/sh, find, xargs and sha256sum"
        )));
    };
    let pins: BTreeMap<String, String> = tags::TOOLS
        .iter()
        .filter_map(|t| Some((t.to_string(), labels.get(&tags::tool_label(t))?.clone())))
        .collect();
    let outcomes = check::evaluate(&tags::TOOLS, &pins, &seen, &host);
    println!("smoke {image}");
    for o in &outcomes {
        println!("  {:<5} {:<9} {}", if o.ok { "ok" } else { "FAIL" }, o.name, o.detail);
    }
    ctx.end_step();
    let failed: Vec<String> = outcomes.iter().filter(|o| !o.ok).map(|o| format!("{}: {}", o.name, o.detail)).collect();
    if failed.is_empty() {
        return Ok(());
    }
    Err(exit::gate(format!(
        "smoke: {} check(s) failed in {image}: {}; rebuild with `cargo xtask image` from this checkout",
        failed.len(),
        failed.join("; ")
    )))
}

/// The image's labels; exit 3 with the fix when the image is not there.
fn read_labels(ctx: &Ctx, image: &str) -> Result<BTreeMap<String, String>> {
    let out = ctx.probe_output(ctx.sh.cmd("docker").args(["image", "inspect", "--format", "{{json .Config.Labels}}", image]))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("No such image") || err.contains("No such object") {
            return Err(exit::env(format!("image {image} not found locally; run `cargo xtask image` first (or pass --image REF)")));
        }
        return Err(exit::env(format!("docker image inspect {image} failed: {}", err.trim())));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("docker image inspect printed no JSON")?;
    Ok(v.as_object()
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
        .unwrap_or_default())
}

/// `repo/path` → sha256 for every regular file under `policies/`, via `sha256sum`.
pub fn host_files(ctx: &Ctx) -> Result<BTreeMap<String, String>> {
    let root = ctx.path("policies");
    let mut rel = Vec::new();
    if root.is_dir() {
        walk(&root, "", &mut rel)?;
    }
    rel.sort();
    let mut sums = BTreeMap::new();
    for chunk in rel.chunks(500) {
        let _dir = ctx.sh.push_dir(&root);
        let cmd = ctx.sh.cmd("sha256sum").arg("--").args(chunk);
        let out = ctx.probe(cmd)?;
        for line in out.lines() {
            if let Some((sum, path)) = line.split_once("  ") {
                sums.insert(path.to_string(), sum.to_string());
            }
        }
    }
    if sums.len() != rel.len() {
        anyhow::bail!("sha256sum hashed {} of {} files under policies/", sums.len(), rel.len());
    }
    Ok(sums)
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        let ty = entry.file_type()?;
        if ty.is_dir() {
            walk(&entry.path(), &rel, out)?;
        } else if ty.is_file() {
            out.push(rel);
        }
    }
    Ok(())
}

/// One sha256 over the sorted `<sha256>  <repo/path>` lines of every policy file: the
/// policy content of a release, for its labels and record.
pub fn policy_hash(ctx: &Ctx) -> Result<String> {
    let files = host_files(ctx)?;
    let text: String = files.iter().map(|(p, s)| format!("{s}  {p}\n")).collect();
    let out = ctx.probe(ctx.sh.cmd("sha256sum").stdin(text))?;
    Ok(out.split_whitespace().next().context("sha256sum printed nothing")?.to_string())
}
