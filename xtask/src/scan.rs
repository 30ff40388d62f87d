//! `scan`: the Trivy gate on the image. Needs trivy (pinned version) and docker.

use crate::cli::{self, Args, Spec};
use crate::{ctx::Ctx, exit};
use anyhow::Result;

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

pub fn run(_ctx: &Ctx, _args: &Args) -> Result<()> {
    Err(exit::env("the `scan` task is not built yet (issue 4)"))
}
