//! `publish`: preflight, image, smoke, integration, scan, login, push, verify, release record.

use crate::cli::{self, Args, Spec};
use crate::{ctx::Ctx, exit};
use anyhow::Result;

pub const SPEC: Spec = Spec {
    name: "publish",
    about: "Preflight, build, test, scan, then push every tag, verify the digests and write the release record",
    positional: None,
    flags: &[
        cli::many("--registry", "HOST[/PATH]", "Registry to publish to (repeatable; overrides the configured ones)"),
        cli::switch("--allow-public", "Allow a public registry (Docker Hub)"),
        cli::switch("--rebuild", "Weekly rebuild: refresh the base, push latest and a dated tag only if the digest changed"),
        cli::value("--rollback", "vX.Y.Z", "Point latest at this published version's digest, without rebuilding"),
        cli::switch("--local", "Publish to a throwaway registry on 127.0.0.1 that is started and stopped here"),
        cli::BUILD_ARG,
        cli::PULL,
        cli::NO_CACHE,
        cli::NETWORK,
        cli::TOOLS_MIRROR,
        cli::SEVERITY,
        cli::DRY_RUN,
    ],
};

pub fn run(_ctx: &Ctx, _args: &Args) -> Result<()> {
    Err(exit::env("the `publish` task is not built yet (issue 5)"))
}
