//! `publish`: preflight, image, smoke, integration, scan, login, push, verify, release record.
//! Needs docker, git, skopeo (registry reads) and the scan's trivy; credentials from
//! `REGISTRY_USERNAME` and `REGISTRY_PASSWORD` or `REGISTRY_PASSWORD_FILE`.
//!
//! A publish either pushes every tag and verifies each against the registry, or stops
//! before the first push. Every mode (a release, `--rebuild`, `--rollback vX.Y.Z`,
//! `--local`) ends in a [`plan::PushPlan`] carried out by the one executor (`push.rs`), and
//! in `target/xtask/release.json`, written whether the run succeeded or not.

mod attest;
mod base;
mod gates;
mod local;
pub mod plan;
mod preflight;
pub mod push;
mod rebuild;
mod registry;
mod release;
mod rollback;
mod target;
mod transfer;

pub use base::bump as bump_base;
pub use plan::Pushed;
pub use registry::{Credentials, Creds, Session, PASSWORD_FILE_VAR, PASSWORD_VAR, USER_VAR};
pub use target::Target;

use crate::image::BuildOpts;
use crate::scan::ScanOpts;
use crate::tools::git;
use crate::{ctx::Ctx, exit, files, version};
use anyhow::Result;
use semver::Version;
use serde_json::{json, Value};

/// What `publish` was asked to do, parsed at the edge.
#[derive(Debug)]
pub struct PublishOpts {
    pub build: BuildOpts,
    pub scan: ScanOpts,
    /// `--registry` values (empty: the configured `registries`).
    pub registries: Vec<Target>,
    pub allow_public: bool,
    pub mode: Mode,
    pub dry_run: bool,
    /// From `REGISTRY_*`, else the user's own Docker login.
    pub creds: Credentials,
    /// `SIGNING_KEY_FILE` and its password.
    pub signing: crate::sign::signer::SigningInput,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Release,
    Rebuild,
    Rollback(Version),
    Local,
}

impl Mode {
    fn name(&self) -> &'static str {
        match self {
            Mode::Release | Mode::Local => "release",
            Mode::Rebuild => "rebuild",
            Mode::Rollback(_) => "rollback",
        }
    }
}

/// Tools every publish needs before it starts (the scan checks its trivy itself).
const TOOLS: [&str; 3] = ["docker", "git", "skopeo"];

pub fn run(ctx: &Ctx, opts: PublishOpts) -> Result<()> {
    let record_path = ctx.path("target/xtask/release.json");
    if !ctx.dry_run() {
        // A failed run's artifacts must never carry the previous release's record.
        match std::fs::remove_file(&record_path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(exit::env(format!(
                    "cannot remove the old {} ({e}); remove it by hand",
                    record_path.display()
                )))
            }
            _ => {}
        }
    }
    let outcome = match &opts.mode {
        Mode::Local => local::run(ctx, &opts),
        Mode::Rollback(v) => rollback::run(ctx, &opts, v),
        Mode::Rebuild => rebuild::run(ctx, &opts),
        Mode::Release => release::run(ctx, &opts, None).map(|r| r.record),
    };
    if ctx.dry_run() {
        return outcome.map(|_| ());
    }
    let record = match &outcome {
        Ok(rec) => rec.clone(),
        Err(e) => failed_record(ctx, opts.mode.name(), e),
    };
    write_record(ctx, &record)?;
    outcome.map(|_| ())
}

/// What a failed run's record can say: the mode, the version and commit it was about, and
/// the error.
fn failed_record(ctx: &Ctx, mode: &str, e: &anyhow::Error) -> Value {
    let version = crate::release::read_version(ctx).ok().map(|v| version::tag(&v));
    let commit = git::head(ctx).ok().map(|h| h.commit);
    json!({
        "status": "failed",
        "mode": mode,
        "version": version,
        "commit": commit,
        "error": exit::one_line(e),
        "exit_code": exit::code_of(e),
    })
}

/// `target/xtask/release.json` (written atomically), the deploy references on stdout, and
/// in CI a Markdown summary (appended to `$GITHUB_STEP_SUMMARY` when set).
fn write_record(ctx: &Ctx, rec: &Value) -> Result<()> {
    let dir = ctx.out_dir("")?;
    let path = dir.join("release.json");
    files::write_atomic(&path, (serde_json::to_string_pretty(rec)? + "\n").as_bytes(), 0o644)?;
    eprintln!(
        "    release record: {} ({})",
        path.display(),
        rec["status"].as_str().unwrap_or("?")
    );
    if rec["status"] == "published" {
        for r in rec["registries"].as_array().into_iter().flatten() {
            println!("{}", r["reference"].as_str().unwrap_or_default());
        }
    }
    if ctx.ci() {
        let md = plan::summary_markdown(rec);
        files::write_atomic(&dir.join("release-summary.md"), md.as_bytes(), 0o644)?;
        if let Some(summary) = &ctx.env.step_summary {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().create(true).append(true).open(summary)?;
            f.write_all(md.as_bytes())?;
        }
        eprintln!("    CI summary: {}", dir.join("release-summary.md").display());
    }
    Ok(())
}
