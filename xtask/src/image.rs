//! `image`: builds the image from the Dockerfile and tags it locally. Needs docker.

use crate::cli::{self, Args, Spec};
use crate::{ctx::Ctx, exit};
use anyhow::Result;

pub const SPEC: Spec = Spec {
    name: "image",
    about: "Build the image from the Dockerfile and tag it locally (vX.Y.Z, sha-<commit>, latest)",
    positional: None,
    flags: &[cli::BUILD_ARG, cli::PULL, cli::NO_CACHE, cli::NETWORK, cli::TOOLS_MIRROR, cli::DRY_RUN],
};

pub fn run(_ctx: &Ctx, _args: &Args) -> Result<()> {
    Err(exit::env("the `image` task is not built yet (issue 3)"))
}
