//! `scan`: the Trivy gate on the image. Needs trivy (the pinned version) and docker.

use crate::cli::{self, Args, Spec};
use crate::{ctx::Ctx, exit, release};
use anyhow::Result;
use serde_json::Value;

pub const SPEC: Spec = Spec {
    name: "scan",
    about: "Trivy gate on the image: vulnerabilities and secrets, with expiring waivers",
    positional: None,
    flags: &[
        cli::IMAGE,
        cli::SEVERITY,
        cli::switch("--ignore-unfixed", "Do not gate on vulnerabilities that have no fixed version"),
        cli::DRY_RUN,
    ],
};

/// What the gate fails on.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanOpts {
    /// Severities that fail the gate (upper case), default `CRITICAL`.
    pub severity: Vec<String>,
    /// Vulnerabilities without a fixed version do not fail the gate.
    pub ignore_unfixed: bool,
}

impl ScanOpts {
    /// From `--severity LIST` and `--ignore-unfixed` (either may be absent from a task's spec).
    pub fn from_args(args: &Args) -> Result<ScanOpts> {
        let severity = match args.value("--severity") {
            None => vec!["CRITICAL".to_string()],
            Some(list) => list.split(',').map(|s| s.trim().to_ascii_uppercase()).collect(),
        };
        Ok(ScanOpts { severity, ignore_unfixed: args.has("--ignore-unfixed") })
    }
}

pub fn run(ctx: &Ctx, args: &Args) -> Result<()> {
    let image = release::image_arg(ctx, args)?;
    let opts = ScanOpts::from_args(args)?;
    scan(ctx, &image, &opts)?;
    Ok(())
}

/// Scans `image` and gates on it. `Ok` is the summary for the release record (counts by
/// severity, gate findings, waived findings, report paths); a gate failure is `Err` with exit 1.
pub fn scan(_ctx: &Ctx, _image: &str, _opts: &ScanOpts) -> Result<Value> {
    Err(exit::env("the `scan` task is not built yet (issue 4)"))
}
