//! `integration`: renders every chart and checks it against the policies, inside the image.

use crate::cli::{self, Args, Spec};
use crate::{ctx::Ctx, exit};
use anyhow::Result;

pub const SPEC: Spec = Spec {
    name: "integration",
    about: "Render every chart and check it against the policies, inside the image",
    positional: None,
    flags: &[cli::IMAGE, cli::DRY_RUN],
};

pub fn run(_ctx: &Ctx, _args: &Args) -> Result<()> {
    Err(exit::env("the `integration` task is not built yet (issue 3)"))
}
