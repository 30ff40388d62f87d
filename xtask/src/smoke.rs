//! `smoke`: checks the tools and the policies inside the image. Needs docker.

use crate::cli::{self, Args, Spec};
use crate::{ctx::Ctx, exit};
use anyhow::Result;

pub const SPEC: Spec = Spec {
    name: "smoke",
    about: "Check the tools and the policies inside the image",
    positional: None,
    flags: &[cli::IMAGE, cli::DRY_RUN],
};

pub fn run(_ctx: &Ctx, _args: &Args) -> Result<()> {
    Err(exit::env("the `smoke` task is not built yet (issue 3)"))
}
