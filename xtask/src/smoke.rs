//! `smoke`: starts the image once and checks that each tool runs and reports exactly the
//! version pinned in the image's labels, and that `/repos/` holds exactly the checkout's
//! `policies/` (same files, same sha256, nothing else). Needs docker.

mod check;

use crate::tools::{docker, system};
use crate::{ctx::Ctx, exit, tags};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// Runs every check on `image`. Exit 1 naming each failed check; exit 3 if the image
/// is not there or cannot be run.
pub fn check(ctx: &Ctx, image: &str) -> Result<()> {
    check_as(ctx, image, image)
}

/// [`check`] of `image` (publish gives the built image's id, so that no other build's tag
/// can slip in between) under the name `shown`.
pub fn check_as(ctx: &Ctx, image: &str, shown: &str) -> Result<()> {
    let run = docker::Run {
        image,
        script: check::SCRIPT,
        args: tags::TOOLS.iter().map(|t| t.to_string()).collect(),
        mount_ro: None,
        workdir: None,
    };
    if ctx.dry_run() {
        ctx.run.show(&run.cmd());
        return Ok(());
    }
    docker::require(ctx)?;
    ctx.step(&format!("smoke {shown}"));
    // Start the container first: it is the slow part; the label and host reads overlap it.
    let child = run.start(ctx)?;
    let labels = docker::labels(ctx, image);
    let host = host_files(ctx);
    let out = child.wait()?;
    let (labels, host) = (labels?, host?);
    let stdout = out.text();
    let Some(seen) = check::parse_output(&stdout) else {
        let why = crate::runner::first_line(&out.stderr, &stdout);
        return Err(exit::env(format!(
            "cannot run the checks inside {shown} ({why}); the image needs /bin/sh, find, xargs and sha256sum"
        )));
    };
    let pins: BTreeMap<String, String> = tags::TOOLS
        .iter()
        .filter_map(|t| Some((t.to_string(), labels.get(&tags::tool_label(t))?.clone())))
        .collect();
    let outcomes = check::evaluate(&tags::TOOLS, &pins, &seen, &host);
    println!("smoke {shown}");
    for o in &outcomes {
        println!("  {:<5} {:<9} {}", if o.ok { "ok" } else { "FAIL" }, o.name, o.detail);
    }
    ctx.end_step();
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.ok)
        .map(|o| format!("{}: {}", o.name, o.detail))
        .collect();
    if failed.is_empty() {
        return Ok(());
    }
    Err(exit::gate(format!(
        "smoke: {} check(s) failed in {shown}: {}; rebuild with `cargo xtask image` from this checkout",
        failed.len(),
        failed.join("; ")
    )))
}

/// `repo/path` → sha256 for every regular file under `policies/`.
pub fn host_files(ctx: &Ctx) -> Result<BTreeMap<String, String>> {
    let root = ctx.path("policies");
    let mut rel = Vec::new();
    if root.is_dir() {
        walk(&root, "", &mut rel)?;
    }
    rel.sort();
    let sums: BTreeMap<String, String> = system::sha256_files(ctx, &root, &rel)?.into_iter().collect();
    if sums.len() != rel.len() {
        anyhow::bail!("sha256sum hashed {} of {} files under policies/", sums.len(), rel.len());
    }
    Ok(sums)
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
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
    system::sha256_of(ctx, text.as_bytes())
}
