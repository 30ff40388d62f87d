//! `publish --rebuild`, the weekly job: rebuild the released version on a refreshed base,
//! reusing the registry's `latest` as cache, and move `latest` (plus a dated audit tag)
//! only when the image changed. Never creates or moves a `vX.Y.Z` or `sha-` tag. With
//! `base-image-track` configured, the base is what that tag names now when it moved since
//! the release (`base.rs`).
//!
//! Same inputs give the same image id: labels come from the release commit (never the
//! clock), and the classic builder keeps its cached layers' ids, `created` included,
//! when `--cache-from` offers the published image.

use super::attest::{self, Attestor};
use super::plan::{self, PushPlan, Remote, Source, Target};
use super::preflight::{self, Problems};
use super::registry::Session;
use super::{base, gates, release, PublishOpts};
use crate::image::{self, BuildOpts};
use crate::scan::{self, sbom};
use crate::tools::{docker, git};
use crate::{ctx::Ctx, date, exit, files, tags, version};
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// What decides whether the checkout holds unreleased image changes.
const IMAGE_INPUTS: [&str; 4] = ["Dockerfile", ".dockerignore", "policies", "VERSION"];

pub fn run(ctx: &Ctx, opts: &PublishOpts) -> Result<Value> {
    let started = date::now();
    ctx.step("rebuild preflight");
    let mut p = Problems::default();
    let targets = preflight::targets(ctx, opts, &mut p);
    let preflight::Gathered {
        version,
        head,
        image,
        session,
    } = preflight::gather(ctx, &mut p, &opts.scan, &targets, opts.creds.clone());
    if let Some(v) = version.as_ref().filter(|v| !v.pre.is_empty()) {
        p.usage(format!(
            "VERSION is {}, a pre-release; --rebuild moves latest, which never points at a pre-release: run it on a released version",
            version::tag(v)
        ));
    }
    let signer = release::signer_of(ctx, opts, &mut p);
    let mut release_commit: Option<String> = None;
    let mut latest: BTreeMap<String, Remote> = BTreeMap::new();
    if let (Some(s), Some(v)) = (&session, &version) {
        let vtag = version::tag(v);
        for t in &targets {
            match p.take(s.inspect(t, &image, &vtag)) {
                Some(None) => p.usage(format!(
                    "{vtag} is not published in {}: --rebuild refreshes a released version; publish it first (cargo xtask publish)",
                    t.spec
                )),
                Some(Some(found)) => match (found.labels.get(tags::LABEL_REVISION), &release_commit) {
                    (None, _) => p.usage(format!("{vtag} in {} has no {} label; publish it with this xtask first", t.spec, tags::LABEL_REVISION)),
                    (Some(r), Some(known)) if r != known => p.usage(format!(
                        "{vtag} was built from {known} in one registry and from {r} in {}; fix the registries before a rebuild",
                        t.spec
                    )),
                    // A label is the registry's word: it reaches git only as a commit id.
                    (Some(r), _) if !is_commit_id(r) => p.usage(format!(
                        "{vtag} in {} names the commit `{r}` in its {} label, which is not a git commit id; publish it with this xtask first",
                        t.spec,
                        tags::LABEL_REVISION
                    )),
                    (Some(r), _) => release_commit = Some(r.clone()),
                },
                None => {}
            }
            if let Some(all) = p.take(s.list_tags(t, &image)) {
                if let Err(why) = plan::latest_decision(v, &all) {
                    p.usage(format!(
                        "{why} in {}; --rebuild would move latest back: check out the newest release",
                        t.spec
                    ));
                }
            }
            if let Some(Some(r)) = p.take(s.remote_of(t, &image, "latest")) {
                latest.insert(t.spec.clone(), r);
            }
        }
    }
    if let (Some(rc), Some(h), Some(v)) = (&release_commit, &head, &version) {
        if *rc != h.commit {
            unreleased_changes(ctx, &mut p, rc, &version::tag(v));
        }
    }
    let line = base_line(ctx, opts, &mut p, session.as_ref(), &targets, &image, version.as_ref());
    p.finish("publish --rebuild")?;
    let (Some(version), Some(head), Some(session), Some(rc)) = (version, head, session, release_commit) else {
        return Err(exit::env(
            "publish --rebuild preflight could not gather its facts (version, commit, release commit, login); rerun",
        ));
    };
    ctx.end_step();

    // Build the release commit itself, so that the labels (and the digest) match it.
    let worktree = if rc == head.commit {
        None
    } else {
        Worktree::add(ctx, &rc)?
    };
    let bctx = worktree.as_ref().map(|w| ctx.at(w.src()));
    let bctx = bctx.as_ref().unwrap_or(ctx);

    let mut opts_b = BuildOpts {
        pull: true,
        auth: Some(session.auth().clone()),
        ..opts.build.clone()
    };
    if let Some(l) = &line {
        println!("{}", l.message());
        opts_b.build_args.push(format!("BASE_IMAGE={}", l.base_image));
    }
    // A moved base cannot give the image latest holds: no cache from it, no second build.
    let moved = line.as_ref().is_some_and(base::Line::moved);
    let like = targets
        .iter()
        .find_map(|t| latest.get(&t.spec).map(|r| (t, r)))
        .filter(|_| !moved);
    let built = build_like(ctx, bctx, &session, &mut opts_b, like, &image)?;

    let changed: Vec<Target> = targets
        .iter()
        .filter(|t| latest.get(&t.spec).map(|r| r.config.as_str()) != Some(built.id.as_str()))
        .cloned()
        .collect();
    if !ctx.dry_run() && changed.is_empty() {
        let r = latest.values().next().map(|r| r.digest.clone()).unwrap_or_default();
        // The weekly job watches what is published: the same image (same id as latest's),
        // scanned with today's vulnerability DB. A new finding stops here, nothing pushed.
        eprintln!("    the rebuilt image is the one latest holds ({r}); scanning it with today's DB");
        let scan = scan::scan_as(bctx, &built.id, &built.reference, &opts.scan).with_context(|| {
            format!(
                "the published {}@{r} (latest) has a new finding; rebuild on a fixed base or bump the tool",
                version::tag(&version)
            )
        })?;
        println!(
            "unchanged: the rebuilt {} is the image latest already holds ({r}); nothing pushed",
            version::tag(&version)
        );
        return Ok(json!({
            "status": "unchanged",
            "mode": "rebuild",
            "version": version::tag(&version),
            "commit": rc,
            "image_id": built.id,
            "digest": r,
            "base": line.as_ref().map(base::Line::json),
            "scan": scan,
        }));
    }

    let meanwhile = |id: &str| match &signer {
        Some(_) => sbom::sbom(bctx, id, &built.reference),
        None => Ok(None),
    };
    let (passed, sbom) = gates::run(bctx, &opts.scan, (&built.id, &built.reference), meanwhile);
    let (passed, sbom) = (passed?, sbom?);
    let attestor = match &signer {
        Some(s) => {
            let prov = attest::provenance(
                bctx,
                &attest::Facts {
                    base_digest: built.base_digest.as_deref(),
                    args: &built.args,
                    policy_hash: &built.policy_hash,
                    head: &head_of(bctx)?,
                    version: &version::tag(&version),
                    user_args: &opts_b.build_args,
                    started,
                },
            )?;
            Some(Attestor::new(ctx, &session, s, prov, sbom.as_ref())?)
        }
        None => None,
    };
    let dated = plan::dated_tag(date::now());
    let plan = PushPlan::rebuild(&version, &dated, Source::Built { id: built.id.clone() }, &changed);
    let hook = |t: &Target, d: &str| attestor.as_ref().map_or(Ok(()), |a| a.sign(t, &image, d));
    let pushed = release::execute(ctx, &session.registry(&image), &image, &plan, &hook)?;
    let mut rec = release::record("rebuild", &version, &rc, &built, &pushed, &passed);
    rec["signing"] = attestor
        .as_ref()
        .map_or(Value::Null, |a| a.record(sbom.as_ref(), &ctx.root));
    if let Some(l) = &line {
        rec["base"] = l.json();
    }
    Ok(rec)
}

/// 40 (SHA-1) or 64 (SHA-256) lowercase hex digits.
fn is_commit_id(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The release commit as the worktree has it (the provenance names it).
fn head_of(ctx: &Ctx) -> Result<git::Head> {
    git::head(ctx)
}

/// With `base-image-track` configured: where the base line stands (the rebuild then runs
/// on the base it names); `None` without it (the build's own BASE_IMAGE, as given).
fn base_line(
    ctx: &Ctx,
    opts: &PublishOpts,
    p: &mut Problems,
    s: Option<&Session<'_>>,
    targets: &[Target],
    image: &str,
    version: Option<&semver::Version>,
) -> Option<base::Line> {
    let track = ctx.config().ok()?.base_image_track.clone()?;
    if opts.build.build_args.iter().any(|a| a.starts_with("BASE_IMAGE=")) {
        p.usage(format!(
            "--build-arg BASE_IMAGE: --rebuild follows base-image-track ({track}, Cargo.toml); \
             drop the flag, or the key to rebuild on a base of your own"
        ));
        return None;
    }
    p.take(base::line(ctx, s?, targets, image, &version::tag(version?), &track))
}

/// Builds so that unchanged inputs give the image already published as `latest`: with
/// the local build cache when that image is here (warm runner), else with it pulled from
/// the registry as `--cache-from` (fresh runner). The classic builder only reuses
/// cache-from images when given one, so a warm runner that picked another cached chain
/// builds once more with the published image as the cache. Same inputs, same image id: no
/// clock goes into it (the label step takes the same `cache_from`, or its layer would get
/// a new `created`).
fn build_like(
    ctx: &Ctx,
    bctx: &Ctx,
    session: &Session<'_>,
    opts: &mut BuildOpts,
    like: Option<(&Target, &Remote)>,
    image: &str,
) -> Result<image::Built> {
    let Some((t, remote)) = like.filter(|_| !opts.no_cache) else {
        return image::build(bctx, opts);
    };
    if !ctx.dry_run() && docker::image_id(ctx, &remote.config)?.is_some() {
        let built = image::build(bctx, opts)?;
        if built.id == remote.config {
            return Ok(built);
        }
        eprintln!("    the local cache gave another image than latest; building again with latest as the cache");
        opts.cache_from.push(remote.config.clone());
        return image::build(bctx, opts);
    }
    let cache = t.reference(image, "latest");
    if docker::pull(ctx, Some(session.auth()), &cache)? || ctx.dry_run() {
        opts.cache_from.push(cache.clone());
    } else {
        eprintln!("    warning: cannot pull {cache} as build cache; building without it (the digest will differ)");
    }
    let built = image::build(bctx, opts);
    // Only the name goes; the layers stay as long as the new image uses them.
    docker::untag(ctx, &cache);
    built
}

/// Refuses when the image's inputs changed since the release: they would reach `latest`
/// without a version.
fn unreleased_changes(ctx: &Ctx, p: &mut Problems, rc: &str, vtag: &str) {
    if !git::has_commit(ctx, rc) {
        p.usage(format!(
            "{vtag} was built from commit {rc}, which this clone does not have: fetch the history (git fetch --unshallow --tags)"
        ));
        return;
    }
    match git::changed_between(ctx, rc, "HEAD", &IMAGE_INPUTS) {
        Ok(files) if !files.is_empty() => {
            let shown: Vec<&str> = files.iter().take(10).map(String::as_str).collect();
            p.usage(format!(
                "the checkout changes {} since {vtag} was released (commit {}): release them first (cargo xtask bump-version, \
                 then publish); --rebuild only refreshes the base of a released version",
                shown.join(", "),
                &rc[..rc.len().min(12)]
            ));
        }
        Ok(_) => {}
        Err(e) => p.env(format!("cannot compare the checkout with {rc}: {}", exit::one_line(&e))),
    }
}

/// A detached `git worktree` of the release commit in a private folder under
/// `target/xtask/`, removed on drop.
struct Worktree<'a> {
    ctx: &'a Ctx,
    dir: files::TempDir,
}

impl<'a> Worktree<'a> {
    /// `None` in a dry run (the command is only shown; the plan builds the checkout).
    fn add(ctx: &'a Ctx, commit: &str) -> Result<Option<Worktree<'a>>> {
        let parent = ctx.path("target/xtask");
        if ctx.dry_run() {
            git::worktree_add(ctx, &parent.join("rebuild-src-<random>"), commit)?;
            return Ok(None);
        }
        std::fs::create_dir_all(&parent)?;
        let holder = files::TempDir::new(&parent, "rebuild-src-")?;
        // git creates the worktree folder itself: hand it a path inside our private one.
        let w = Worktree { ctx, dir: holder };
        git::worktree_add(ctx, &w.src(), commit)?;
        Ok(Some(w))
    }

    fn src(&self) -> std::path::PathBuf {
        self.dir.path().join("src")
    }
}

impl Drop for Worktree<'_> {
    fn drop(&mut self) {
        git::worktree_remove(self.ctx, &self.src());
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_commit_ids_reach_git() {
        assert!(super::is_commit_id("0123456789abcdef0123456789abcdef01234567"));
        for bad in [
            "--output=/tmp/x",
            "HEAD",
            "0123456789ABCDEF0123456789ABCDEF01234567",
            "0123",
            "",
        ] {
            assert!(!super::is_commit_id(bad), "{bad}");
        }
    }
}
