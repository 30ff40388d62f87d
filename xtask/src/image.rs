//! `image`: builds the image from the Dockerfile, labels it (version, commit, tool pins,
//! base, policy hash) and tags it locally as `vX.Y.Z`, `sha-<commit>` and `latest`;
//! reports its size per layer and fails over `size-budget-mb`. Needs docker and git.
//!
//! `publish` calls [`build`] with its own [`BuildOpts`]; the pure parts (the plan, the
//! docker argv, the mirror file names, the size report) live in `image/plan.rs`.

pub mod plan;

use crate::reference::{self, ImageRef};
use crate::tools::{self, docker, git, Auth};
use crate::{ctx::Ctx, exit, release, smoke, tags};
use anyhow::{Context, Result};
use std::collections::BTreeMap;

/// How to build: the `image` flags, plus what `publish` adds (cache sources, more tags,
/// credentials to pull a private base).
#[derive(Debug, Clone, Default)]
pub struct BuildOpts {
    /// `KEY=VALUE` pairs for `docker build --build-arg`, in order (later wins).
    pub build_args: Vec<String>,
    pub pull: bool,
    pub no_cache: bool,
    /// `docker build --network` (tests use `host` to reach a loopback tool server).
    pub network: Option<String>,
    /// Base URL that replaces each tool's upstream download (same file names and sums).
    pub tools_mirror: Option<String>,
    /// `docker build --cache-from` references.
    pub cache_from: Vec<String>,
    /// More full references to tag the image with (e.g. `registry/policy-platform:v1.2.3`).
    pub extra_tags: Vec<String>,
    /// The registry credentials `docker build` may pull the base with.
    pub auth: Option<Auth>,
}

/// What a build produced. In a dry run `id` is empty and `size_bytes` 0.
#[derive(Debug, Clone)]
pub struct Built {
    /// `<image>:vX.Y.Z`, the local reference the checks default to.
    pub reference: String,
    /// `sha256:<64 hex>` from `--iidfile`.
    pub id: String,
    /// Every reference the image was tagged with (local tags, then `extra_tags`).
    pub tags: Vec<String>,
    pub size_bytes: u64,
    /// Tool → pinned version (no leading `v`), as labelled.
    pub tools: BTreeMap<String, String>,
    /// The hash of the policies the image carries, as labelled (`smoke::policy_hash`).
    pub policy_hash: String,
    /// The Dockerfile's arguments as this build used them (tool URLs and sums, bases).
    pub args: BTreeMap<String, String>,
    /// The digest of the base it was built on (its `base.digest` label), when the engine
    /// knows one.
    pub base_digest: Option<String>,
}

/// The Dockerfile's arguments as a build with `opts` would use them (tool URLs and sums,
/// bases): what the provenance of a resumed release is made of.
pub fn resolved_args(ctx: &Ctx, opts: &BuildOpts) -> Result<BTreeMap<String, String>> {
    let path = ctx.path("Dockerfile");
    let dockerfile =
        std::fs::read_to_string(&path).map_err(|e| exit::usage(format!("cannot read {} ({e})", path.display())))?;
    Ok(plan::resolve_args(&dockerfile, opts)?.1)
}

/// Builds, tags and size-checks the image. Errors: exit 2 for bad build arguments or
/// VERSION, 3 when docker or a download fails (the message names the tool), 1 over the
/// size budget.
pub fn build(ctx: &Ctx, opts: &BuildOpts) -> Result<Built> {
    tools::require(&["git"])?;
    let config = ctx.config()?.clone();
    let version = release::read_version(ctx)?;
    let head = git::head(ctx)?;
    let dockerfile_path = ctx.path("Dockerfile");
    let dockerfile = std::fs::read_to_string(&dockerfile_path).map_err(|e| {
        exit::usage(format!(
            "cannot read {} ({e}); the image is built from the repo's Dockerfile",
            dockerfile_path.display()
        ))
    })?;
    let policy_hash = smoke::policy_hash(ctx)?;
    let out_dir = ctx.out_dir("image")?;
    let p = plan::plan(&plan::Input {
        config: &config,
        dockerfile: &dockerfile,
        version: &version,
        commit: &head.commit,
        commit_time: &head.time,
        policy_hash: &policy_hash,
        opts,
        out_dir: &out_dir,
        context: &ctx.root,
    })?;
    if !ctx.dry_run() {
        docker::require(ctx)?;
    }
    let mut built = Built {
        reference: p.reference.clone(),
        id: String::new(),
        tags: p.tags.clone(),
        size_bytes: 0,
        tools: p.tools.clone(),
        policy_hash,
        args: p.args.clone(),
        base_digest: None,
    };

    ctx.step(&format!("docker build {}", p.reference));
    let _ = std::fs::remove_file(&p.build_iidfile);
    finished(
        docker::build(ctx, &ctx.root, &p.argv, None, opts.auth.as_ref())?,
        p.base_image.as_deref(),
    )?;
    let built_id = if ctx.dry_run() {
        "<id of the build above>".to_string()
    } else {
        read_id(&p.build_iidfile)?
    };
    let mut labels = p.labels.clone();
    if !ctx.dry_run() {
        built.base_digest = base_digest(ctx, p.base_image.as_deref())?;
    }
    if let Some(d) = &built.base_digest {
        labels.insert(tags::LABEL_BASE_DIGEST.to_string(), d.clone());
    }
    let label_df = plan::label_dockerfile(&built_id, &labels);
    eprintln!(
        "  with this Dockerfile on stdin (labels and tags in one step):\n    {}",
        label_df.trim_end().replace('\n', "\n    ")
    );
    let _ = std::fs::remove_file(&p.iidfile);
    // The same credentials as the first step: every `docker build` reads all of its
    // config's logins, and an ambient one may name a system credential store.
    let labelled = docker::build(ctx, &ctx.root, &p.label_argv, Some(label_df), opts.auth.as_ref())?;
    finished(labelled, p.base_image.as_deref())?;
    ctx.end_step();
    if ctx.dry_run() {
        return Ok(built);
    }
    built.id = read_id(&p.iidfile)?;
    built.size_bytes = docker::size(ctx, &built.id)?;
    let layers = plan::parse_history(&docker::history(ctx, &built.id)?);
    println!(
        "image {} id {} size {}",
        built.reference,
        built.id,
        plan::mb(built.size_bytes)
    );
    for t in &built.tags {
        println!("tagged {t}");
    }
    print!("{}", plan::layer_table(&layers));
    plan::size_gate(built.size_bytes, config.size_budget_mb, &layers)?;
    Ok(built)
}

/// The digest the base was pulled or pushed by, from the engine (the build just used it),
/// for the `base.digest` label; `None`, said so, when the engine knows no such digest.
fn base_digest(ctx: &Ctx, base: Option<&str>) -> Result<Option<String>> {
    let Some(base) = base else { return Ok(None) };
    let why = match ImageRef::parse(base) {
        Ok(r) => match reference::repo_digest(&r, &docker::repo_digests(ctx, base)?) {
            Ok(d) => {
                eprintln!("    base {base}: {d}");
                return Ok(Some(d));
            }
            Err(why) => why,
        },
        Err(why) => format!("a reference that cannot be read ({why})"),
    };
    eprintln!(
        "    note: the base {base} has {why}; the image gets no {} label",
        tags::LABEL_BASE_DIGEST
    );
    Ok(None)
}

fn read_id(path: &std::path::Path) -> Result<String> {
    let id = std::fs::read_to_string(path)
        .with_context(|| format!("docker build wrote no image id to {}", path.display()))?;
    Ok(id.trim().to_string())
}

/// A build that failed is explained in one line from the tail of its output (which tool's
/// download or checksum failed, or a missing base image).
fn finished(streamed: Option<crate::runner::Streamed>, base_image: Option<&str>) -> Result<()> {
    match streamed {
        Some(s) if s.code != Some(0) => Err(plan::explain_failure(&s.tail, tags::TOOLS.as_slice(), base_image)),
        _ => Ok(()),
    }
}
