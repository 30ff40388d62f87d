//! The image's CycloneDX SBOM, written by the pinned Trivy (offline: `--format cyclonedx`
//! lists the packages and scans for nothing, so no vulnerability DB is needed). Saved
//! under `target/xtask/sbom/` and attested with the release.

use super::{report, trivy};
use crate::tools::{self, docker};
use crate::{cleanup, ctx::Ctx, exit};
use anyhow::{Context, Result};
use serde_json::Value;
use std::path::PathBuf;

pub struct Sbom {
    pub path: PathBuf,
    pub document: Value,
    pub components: usize,
}

/// Trivy's arguments: the image from the local engine, CycloneDX JSON on stdout.
pub fn args(image: &str) -> Vec<String> {
    [
        "image",
        "--config",
        trivy::NO_CONFIG,
        "--format",
        "cyclonedx",
        "--image-src",
        "docker",
        image,
    ]
    .map(String::from)
    .to_vec()
}

/// The SBOM of a local image (`None` in a dry run, which only shows the command), saved
/// under the name `shown` (`image` may be an image id).
pub fn sbom(ctx: &Ctx, image: &str, shown: &str) -> Result<Option<Sbom>> {
    let cfg = ctx.config()?;
    let refused = trivy::refused_env(&ctx.env.trivy);
    if !refused.is_empty() {
        return Err(exit::usage(format!(
            "{} set: unset it (the SBOM is written by the pinned Trivy with no other settings)",
            refused.join(", ")
        )));
    }
    let env = trivy::passed_env(&ctx.env.trivy);
    let cwd = cleanup::temp_dir(ctx, "trivy-cwd")?;
    docker::require(ctx)?;
    let runner = tools::trivy::find(ctx, cfg, cwd.path())?;
    let dir = ctx.out_dir("sbom")?;
    let path = dir.join(format!("{}.cdx.json", report::file_stem(shown)));
    let cmd = tools::trivy::command(&runner, &args(image), &env, cwd.path(), &[]);
    if ctx.dry_run() {
        ctx.run.show(&cmd);
        return Ok(None);
    }
    let _ = std::fs::remove_file(&path);
    let res = ctx.run.stream(&cmd, true, Some(&path))?.context("trivy did not run")?;
    let bytes = std::fs::read(&path).unwrap_or_default();
    let document: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if res.code != Some(0) || document["bomFormat"] != "CycloneDX" {
        let _ = std::fs::remove_file(&path);
        return Err(exit::env(format!(
            "Trivy wrote no CycloneDX SBOM for {shown} (exit {:?}): {}; run it by hand to see why",
            res.code,
            trivy::fatal(&res.tail.join("\n"))
        )));
    }
    let components = document["components"].as_array().map_or(0, Vec::len);
    Ok(Some(Sbom {
        path,
        document,
        components,
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn sbom_args_read_the_local_engine_with_no_config() {
        assert_eq!(
            super::args("pp:v1").join(" "),
            "image --config /dev/null --format cyclonedx --image-src docker pp:v1"
        );
    }
}
