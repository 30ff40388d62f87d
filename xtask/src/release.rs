//! The release being worked on: VERSION read from disk, and the local image reference.

use crate::{cli::Args, ctx::Ctx, exit, version};
use anyhow::Result;
use semver::Version;

pub fn read_version(ctx: &Ctx) -> Result<Version> {
    let path = ctx.path("VERSION");
    let content = std::fs::read_to_string(&path).map_err(|e| {
        exit::usage(format!("cannot read {} ({e}); create it with one line like v1.0.0", path.display()))
    })?;
    version::parse_file(&content)
}

/// `<image>:v<VERSION>`, the tag `image` builds and the checks default to.
pub fn local_ref(ctx: &Ctx) -> Result<String> {
    let v = read_version(ctx)?;
    Ok(format!("{}:{}", ctx.config()?.image, version::tag(&v)))
}

/// `--image REF` if given, else the local image of this VERSION.
pub fn image_arg(ctx: &Ctx, args: &Args) -> Result<String> {
    match args.value("--image") {
        Some(r) if !r.trim().is_empty() => Ok(r.to_string()),
        Some(_) => Err(exit::usage("--image needs a non-empty image reference")),
        None => local_ref(ctx),
    }
}
