//! `bump-tool`: upgrades one tool of the image. Downloads the release tarball (upstream,
//! from the Dockerfile's `T_URL` pattern, or `--tools-mirror`), checks its sha256 against
//! the vendor's published checksum file and/or `--sha256`, then rewrites the tool's
//! `T_VERSION` and `T_SHA256` in the Dockerfile atomically and says what follows. Needs curl.
//!
//! A sum we compute ourselves proves nothing about the upstream: without a published
//! checksum file, `--sha256` (the vendor's value, copied by a human) is required.

pub mod plan;

use crate::bump::{self, AutoInput};
use crate::tools::{http, system};
use crate::{cleanup, ctx::Ctx, exit, files, tags};
use anyhow::Result;
use plan::{Listed, Wanted};
use std::time::Duration;

/// A release tarball is a few tens of MB; anything far bigger is not one.
const MAX_TARBALL: u64 = 256 << 20;
const MAX_CHECKSUMS: u64 = 1 << 20;
const TARBALL_TIMEOUT: Duration = Duration::from_secs(600);
const CHECKSUMS_TIMEOUT: Duration = Duration::from_secs(60);

/// The `bump-tool` options, validated at the edge (`cli.rs`).
#[derive(Debug, Clone, PartialEq)]
pub struct BumpToolOpts {
    pub wanted: Wanted,
    /// Lowercase hex.
    pub sha256: Option<String>,
    pub tools_mirror: Option<String>,
    pub dry_run: bool,
}

pub fn run(ctx: &Ctx, opts: &BumpToolOpts) -> Result<()> {
    let tool = opts.wanted.tool;
    let version = opts.wanted.version.to_string();
    let path = ctx.path("Dockerfile");
    let original = std::fs::read_to_string(&path).map_err(|e| {
        exit::usage(format!(
            "cannot read {} ({e}); bump-tool rewrites the repo's Dockerfile",
            path.display()
        ))
    })?;
    let pin = plan::pin(&original, tool)?;
    plan::check_newer(tool, &pin.version, &opts.wanted.version)?;
    let sources = plan::sources(tool, &opts.wanted.version, &pin, opts.tools_mirror.as_deref())?;
    // Fails now, before the download, if the Dockerfile cannot take the new pin.
    plan::rewrite(&original, tool, &version, &"0".repeat(64))?;

    ctx.step(&format!("download {tool} {version}"));
    let dir = cleanup::temp_dir(ctx, "bump-tool")?;
    let tarball = dir.path().join(&sources.file);
    let size = match http::download(ctx, &format!("{tool} {version}"), &sources.tarball_url, &tarball, MAX_TARBALL, TARBALL_TIMEOUT)? {
        http::Fetched::Done(n) => n,
        http::Fetched::Missing(status) => {
            return Err(exit::env(format!(
                "cannot download {tool} {version}: {} answered HTTP {status}; check the version (is {version} released?) or the mirror",
                sources.tarball_url
            )))
        }
    };
    let sum = system::sha256_file(ctx, &tarball)?;
    let published = published_sum(ctx, tool, &sources, dir.path())?;
    ctx.end_step();

    let mut checked = Vec::new();
    match &published {
        Published::Sum(p) if *p != sum => {
            return Err(exit::gate(format!(
                "{tool} {version}: the download from {} has sha256 {sum}, but {} publishes {p}; the Dockerfile is unchanged (a corrupt or substituted download: retry, or check the mirror)",
                sources.tarball_url, sources.checksum_url
            )))
        }
        Published::Sum(_) => checked.push(format!("the published {}", sources.checksum_url)),
        Published::None(why) if opts.sha256.is_none() => {
            return Err(exit::usage(format!(
                "{tool} {version}: no published checksum to check the download against ({why}); pass --sha256 <the sha256 the vendor publishes for {}>",
                sources.file
            )))
        }
        Published::None(why) => eprintln!("    no published checksum ({why}); checking against --sha256 only"),
    }
    if let Some(given) = &opts.sha256 {
        if *given != sum {
            return Err(exit::gate(format!(
                "{tool} {version}: the download from {} has sha256 {sum}, but --sha256 says {given}; the Dockerfile is unchanged (check the value you copied)",
                sources.tarball_url
            )));
        }
        checked.push("--sha256".to_string());
    }

    let new_text = plan::rewrite(&original, tool, &version, &sum)?;
    let up = plan::upper(tool);
    println!("{tool} {} -> {version}", pin.version);
    println!("  downloaded  {} ({size} bytes)", sources.tarball_url);
    println!("  sha256      {sum}");
    println!("  matches     {}", checked.join(" and "));
    if ctx.dry_run() {
        println!("dry run: the download ran (a read); the Dockerfile is not written. It would set {up}_VERSION={version} {up}_SHA256={sum}");
        return Ok(());
    }
    // The file was read at the start: a change since then is not overwritten.
    let now = std::fs::read_to_string(&path).unwrap_or_default();
    if now != original {
        return Err(exit::usage(format!(
            "{} changed while bump-tool ran; rerun it",
            path.display()
        )));
    }
    files::write_atomic(&path, new_text.as_bytes(), mode_of(&path))?;
    println!("Dockerfile: {up}_VERSION={version} {up}_SHA256={sum}");
    print_next(tool, &pin.version, &version, &original, &new_text);
    Ok(())
}

/// What the vendor's checksum file says about the tarball.
enum Published {
    Sum(String),
    /// Why there is none (not published, or the file does not list the tarball).
    None(String),
}

fn published_sum(ctx: &Ctx, tool: &str, s: &plan::Sources, dir: &std::path::Path) -> Result<Published> {
    let dest = dir.join("checksums");
    let what = format!("{tool}'s checksum file");
    Ok(
        match http::download(ctx, &what, &s.checksum_url, &dest, MAX_CHECKSUMS, CHECKSUMS_TIMEOUT)? {
            http::Fetched::Missing(status) => Published::None(format!("{} answered HTTP {status}", s.checksum_url)),
            http::Fetched::Done(_) => {
                let bytes = std::fs::read(&dest)?;
                match plan::listed_sum(&String::from_utf8_lossy(&bytes), &s.file) {
                Listed::Sum(sum) => Published::Sum(sum),
                Listed::Absent => Published::None(format!("{} does not list {}", s.checksum_url, s.file)),
                Listed::Conflict(a, b) => {
                    return Err(exit::gate(format!(
                        "{} lists {} twice, with sha256 {a} and {b}; the Dockerfile is unchanged (ask the vendor, or pass --sha256 with a mirror you trust)",
                        s.checksum_url, s.file
                    )))
                }
            }
            }
        },
    )
}

/// The Dockerfile keeps its permissions.
fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0o644)
}

/// The release this makes, by the same rule as `bump-version auto`, and the commands next.
fn print_next(tool: &str, old: &str, new: &str, old_df: &str, new_df: &str) {
    let none = Default::default();
    let input = AutoInput {
        changes: &[bump::Change {
            path: "Dockerfile".into(),
            note: "",
        }],
        old_repos: &none,
        new_repos: &none,
        old_pins: &tags::tool_pins(&tags::dockerfile_args(old_df, &[])),
        new_pins: &tags::tool_pins(&tags::dockerfile_args(new_df, &[])),
    };
    let (level, reasons) = bump::classify(&input).unwrap_or((crate::version::Level::Major, Vec::new()));
    println!(
        "release: {level} ({})",
        reasons.first().map(String::as_str).unwrap_or("a tool pin changed")
    );
    println!("next:");
    println!("  cargo xtask bump-version {level}");
    println!("  git commit -am \"{tool} {old} -> {new}\"");
    println!("  cargo xtask publish");
}
