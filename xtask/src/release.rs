//! The release being worked on: VERSION read from disk, and the local image reference.

use crate::files::{self, SmallFileError};
use crate::{ctx::Ctx, exit, version};
use anyhow::Result;
use semver::Version;

pub fn read_version(ctx: &Ctx) -> Result<Version> {
    let path = ctx.path("VERSION");
    // At most 4 KiB, a regular file: a planted FIFO or a huge file cannot stall the xtask.
    let content = files::read_small(&path, 4096).map_err(|e| {
        let e = match e {
            SmallFileError::Unreadable(e) | SmallFileError::Read(e) => e.to_string(),
            SmallFileError::NotAFile => "not a regular file".to_string(),
            SmallFileError::TooBig => "over 4 KiB".to_string(),
            SmallFileError::NotUtf8 => "not UTF-8".to_string(),
        };
        exit::usage(format!(
            "cannot read {} ({e}); create it with one line like v1.0.0",
            path.display()
        ))
    })?;
    version::parse_file(&content)
}

/// `<image>:v<VERSION>`, the tag `image` builds and the checks default to.
pub fn local_ref(ctx: &Ctx) -> Result<String> {
    let v = read_version(ctx)?;
    Ok(format!("{}:{}", ctx.config()?.image, version::tag(&v)))
}

/// `--image REF` if given, else the local image of this VERSION.
pub fn image_or_local(ctx: &Ctx, image: Option<String>) -> Result<String> {
    match image {
        Some(r) => Ok(r),
        None => local_ref(ctx),
    }
}
