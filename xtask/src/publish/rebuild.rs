//! `publish --rebuild`, the weekly job: rebuild the released version on a refreshed base,
//! reusing the registry's `latest` as cache, and move `latest` (plus a dated audit tag)
//! only when the image changed. Never creates or moves a `vX.Y.Z` or `sha-` tag.
//!
//! Same inputs give the same image id: labels come from the release commit (never the
//! clock), and the classic builder keeps its cached layers' ids, `created` included,
//! when `--cache-from` offers the published image.

use super::plan::{self, Remote, Step, Target};
use super::preflight::{self, Problems};
use super::registry::{Creds, Session};
use super::{build_like, gates, push_steps, untag, verify, write_record, TOOLS};
use crate::{cli::Args, ctx::Ctx, exit, git, tags, version};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What decides whether the checkout holds unreleased image changes.
const IMAGE_INPUTS: [&str; 4] = ["Dockerfile", ".dockerignore", "policies", "VERSION"];

pub fn run(ctx: &Ctx, args: &Args, creds: Result<Creds, Vec<String>>) -> Result<()> {
    ctx.step("rebuild preflight");
    let mut p = Problems::default();
    let targets = preflight::targets(ctx, args, &mut p);
    let (version, creds) = preflight::common(ctx, &mut p, &TOOLS, true, creds);
    let head = p.take(git::head(ctx));
    if let Some(v) = version.as_ref().filter(|v| !v.pre.is_empty()) {
        p.usage(format!(
            "VERSION is {}, a pre-release; --rebuild moves latest, which never points at a pre-release: run it on a released version",
            version::tag(v)
        ));
    }
    let image = ctx.config().map(|c| c.image.clone()).unwrap_or_default();
    if let Some(v) = &version {
        p.take(gates::preflight(ctx, args, &format!("{image}:{}", version::tag(v))));
    }
    let session = preflight::login(ctx, &mut p, &targets, creds.as_ref());
    let mut release_commit: Option<String> = None;
    let mut latest: BTreeMap<String, Remote> = BTreeMap::new();
    if let (Some(s), Some(v)) = (&session, &version) {
        let vtag = version::tag(v);
        for t in &targets {
            match p.take(s.inspect(ctx, t, &image, &vtag)) {
                Some(None) => p.usage(format!(
                    "{vtag} is not published in {}: --rebuild refreshes a released version; publish it first (cargo xtask publish)",
                    t.spec
                )),
                Some(Some((_, labels))) => match (labels[tags::LABEL_REVISION].as_str(), &release_commit) {
                    (None, _) => p.usage(format!("{vtag} in {} has no {} label; publish it with this xtask first", t.spec, tags::LABEL_REVISION)),
                    (Some(r), Some(known)) if r != known => p.usage(format!(
                        "{vtag} was built from {known} in one registry and from {r} in {}; fix the registries before a rebuild",
                        t.spec
                    )),
                    (Some(r), _) => release_commit = Some(r.to_string()),
                },
                None => {}
            }
            if let Some(all) = p.take(s.list_tags(ctx, t, &image)) {
                if let Err(why) = plan::latest_decision(v, &all) {
                    p.usage(format!("{why} in {}; --rebuild would move latest back: check out the newest release", t.spec));
                }
            }
            if let Some(Some(r)) = p.take(s.remote(ctx, t, &image, "latest")) {
                latest.insert(t.spec.clone(), r);
            }
        }
    }
    if let (Some(rc), Some(h), Some(v)) = (&release_commit, &head, &version) {
        if *rc != h.commit {
            unreleased_changes(ctx, &mut p, rc, &version::tag(v));
        }
    }
    p.finish("publish --rebuild")?;
    let (Some(version), Some(head), Some(session), Some(rc)) = (version, head, session, release_commit) else {
        unreachable!("preflight passed")
    };
    ctx.end_step();

    // Build the release commit itself, so that the labels (and the digest) match it.
    let worktree = if rc == head.commit { None } else { Worktree::add(ctx, &rc)? };
    let bctx_owned = match &worktree {
        Some(w) => Some(w.ctx(ctx, &session)?),
        None => None,
    };
    let bctx = bctx_owned.as_ref().unwrap_or(ctx);

    let mut opts = crate::image::BuildOpts::from_args(args);
    opts.pull = true;
    let like = targets.iter().find_map(|t| latest.get(&t.spec).map(|r| (t, r, "latest")));
    let built = build_like(ctx, bctx, &mut opts, like, &image)?;

    let changed: Vec<&Target> = targets.iter().filter(|t| latest.get(&t.spec).map(|r| r.config.as_str()) != Some(built.id.as_str())).collect();
    if !ctx.dry_run && changed.is_empty() {
        let r = latest.values().next().map(|r| r.digest.clone()).unwrap_or_default();
        println!("unchanged: the rebuilt {} is the image latest already holds ({r}); nothing pushed", version::tag(&version));
        eprintln!("    gates skipped: this exact image passed them when it was published (re-scan it with `cargo xtask scan`)");
        return Ok(());
    }

    let passed = gates::run(bctx, args, &built.reference, || ()).0?;
    let dated = plan::dated_tag(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs());
    let mut pushed = Vec::new();
    for t in changed {
        ctx.step(&format!("push to {}", t.spec));
        let want = vec![dated.clone(), "latest".to_string()];
        let remote = if ctx.dry_run { BTreeMap::new() } else { session.remotes(ctx, t, &image, &want)? };
        let steps = plan::tag_steps(&built.id, &want, &remote, &["latest"]);
        if let Some((tag, Step::Refuse(d))) = steps.iter().find(|(_, s)| matches!(s, Step::Refuse(_))) {
            return Err(exit::usage(format!("{tag} in {} already holds {d}; another rebuild ran in the same second: rerun", t.spec)));
        }
        pushed.push(push_steps(ctx, &session, t, &image, &built.id, &steps, None)?);
        ctx.end_step();
    }
    verify(ctx, &session, &image, &pushed)?;
    untag(ctx, &image, &pushed);
    if !ctx.dry_run {
        write_record(ctx, &plan::Record {
            mode: "rebuild",
            version: &version,
            commit: &rc,
            image_id: &built.id,
            pushed: &pushed,
            tools: &built.tools,
            policy_hash: &built.policy_hash,
            scan: &passed.scan,
            integration: &passed.integration,
        })?;
    }
    drop(bctx_owned);
    drop(worktree);
    Ok(())
}

/// Refuses when the image's inputs changed since the release: they would reach `latest`
/// without a version.
fn unreleased_changes(ctx: &Ctx, p: &mut Problems, rc: &str, vtag: &str) {
    let known = ctx.probe_output(ctx.sh.cmd("git").args(["cat-file", "-e", &format!("{rc}^{{commit}}")]));
    if !known.is_ok_and(|o| o.status.success()) {
        p.usage(format!(
            "{vtag} was built from commit {rc}, which this clone does not have: fetch the history (git fetch --unshallow --tags)"
        ));
        return;
    }
    let cmd = ctx.sh.cmd("git").args(["diff", "--name-only", rc, "HEAD", "--"]).args(IMAGE_INPUTS);
    match ctx.probe(cmd) {
        Ok(out) if !out.trim().is_empty() => {
            let files: Vec<&str> = out.lines().take(10).collect();
            p.usage(format!(
                "the checkout changes {} since {vtag} was released (commit {}): release them first (cargo xtask bump-version, \
                 then publish); --rebuild only refreshes the base of a released version",
                files.join(", "),
                &rc[..rc.len().min(12)]
            ));
        }
        Ok(_) => {}
        Err(e) => p.env(format!("cannot compare the checkout with {rc}: {}", exit::one_line(&e))),
    }
}

/// A detached `git worktree` of the release commit under `target/xtask/`, removed on drop.
struct Worktree<'a> {
    ctx: &'a Ctx,
    dir: PathBuf,
}

impl<'a> Worktree<'a> {
    /// `None` in a dry run (the command is only shown; the plan builds the checkout).
    fn add(ctx: &'a Ctx, commit: &str) -> Result<Option<Worktree<'a>>> {
        let dir = ctx.path("target/xtask/rebuild-src");
        if ctx.dry_run {
            ctx.run(ctx.sh.cmd("git").args(["worktree", "add", "--detach"]).arg(&dir).arg(commit))?;
            return Ok(None);
        }
        if dir.exists() {
            let _ = ctx.sh.cmd("git").args(["worktree", "remove", "--force"]).arg(&dir).quiet().ignore_status().output();
            let _ = std::fs::remove_dir_all(&dir);
        }
        ctx.run(ctx.sh.cmd("git").args(["worktree", "add", "--detach"]).arg(&dir).arg(commit))
            .with_context(|| format!("cannot check out the release commit {commit}"))?;
        Ok(Some(Worktree { ctx, dir }))
    }

    /// A context rooted at the worktree, using the same credentials folder.
    fn ctx(&self, parent: &Ctx, session: &Session) -> Result<Ctx> {
        let c = Ctx::at(self.dir.clone(), parent.dry_run)?;
        c.sh.set_var("DOCKER_CONFIG", session.dir());
        Ok(c)
    }
}

impl Drop for Worktree<'_> {
    fn drop(&mut self) {
        let _ = self.ctx.sh.cmd("git").args(["worktree", "remove", "--force"]).arg(&self.dir).quiet().ignore_status().output();
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = self.ctx.sh.cmd("git").args(["worktree", "prune"]).quiet().ignore_status().output();
    }
}
