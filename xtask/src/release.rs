//! The release being worked on: VERSION read from disk, and the local image reference.

use crate::{ctx::Ctx, exit, version};
use anyhow::Result;
use semver::Version;

pub fn read_version(ctx: &Ctx) -> Result<Version> {
    let path = ctx.path("VERSION");
    let content = read_small(&path).map_err(|e| {
        exit::usage(format!(
            "cannot read {} ({e}); create it with one line like v1.0.0",
            path.display()
        ))
    })?;
    version::parse_file(&content)
}

/// A small text file of the repo (VERSION): refused when it is not a regular file or
/// over 4 KiB, so a planted FIFO or a huge file cannot stall or exhaust the xtask.
fn read_small(path: &std::path::Path) -> std::io::Result<String> {
    use std::io::Read;
    // Checked before opening: opening a FIFO would wait for a writer.
    if !std::fs::metadata(path)?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let f = std::fs::File::open(path)?;
    let mut buf = Vec::new();
    f.take(4097).read_to_end(&mut buf)?;
    if buf.len() > 4096 {
        return Err(std::io::Error::other("over 4 KiB"));
    }
    String::from_utf8(buf).map_err(|_| std::io::Error::other("not UTF-8"))
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
