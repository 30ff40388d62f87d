//! `publish`: preflight, image, smoke, integration, scan, login, push, verify, release record.
//! Needs docker, git, skopeo (registry reads) and the scan's trivy; credentials from
//! `REGISTRY_USERNAME` and `REGISTRY_PASSWORD` or `REGISTRY_PASSWORD_FILE`.
//!
//! A publish either pushes every tag and verifies each against the registry, or stops
//! before the first push. Modes: a release (default), `--rebuild` (the weekly job),
//! `--rollback vX.Y.Z`, and `--local` (a throwaway registry on 127.0.0.1).

mod gates;
mod local;
mod plan;
mod preflight;
mod rebuild;
mod registry;
mod rollback;

use crate::cli::{self, Args, Spec};
use crate::image::{self, BuildOpts};
use crate::{ctx::Ctx, exit, git, tags, version};
use anyhow::{Context, Result};
use plan::{Pushed, Remote, Step, Target};
use preflight::Problems;
use registry::{Creds, Session};
use semver::Version;
use serde_json::Value;
use std::collections::BTreeMap;

pub const SPEC: Spec = Spec {
    name: "publish",
    about: "Preflight, build, test, scan, then push every tag, verify the digests and write the release record\n\n\
            Credentials: REGISTRY_USERNAME and REGISTRY_PASSWORD, or REGISTRY_PASSWORD_FILE (a key file such as\n\
            Google's _json_key); they reach `docker login --password-stdin` only. Registries: --registry, else\n\
            `registries` in Cargo.toml. Writes target/xtask/release.json and prints <registry>/<image>@sha256:...\n\
            Exit: 1 a gate failed, 2 bad input (dirty tree, version already published, public registry...),\n\
            3 environment (tool missing, login refused, push failed after retries). Nothing is pushed unless\n\
            every check passed; rerunning a failed publish completes it.",
    positional: None,
    flags: &[
        cli::many("--registry", "HOST[/PATH]", "Registry to publish to (repeatable; overrides the configured ones)"),
        cli::switch("--allow-public", "Allow a public registry (Docker Hub)"),
        cli::switch("--rebuild", "Weekly rebuild: refresh the base, push latest and a dated tag only if the digest changed"),
        cli::value("--rollback", "vX.Y.Z", "Point latest at this published version's digest, without rebuilding"),
        cli::switch("--local", "Publish to a throwaway registry on 127.0.0.1 that is started and stopped here"),
        cli::BUILD_ARG,
        cli::PULL,
        cli::NO_CACHE,
        cli::NETWORK,
        cli::TOOLS_MIRROR,
        cli::SEVERITY,
        cli::DRY_RUN,
    ],
};

/// Tools every publish needs before it starts (the scan checks its trivy itself).
const TOOLS: [&str; 3] = ["docker", "git", "skopeo"];

pub fn run(ctx: &Ctx, args: &Args) -> Result<()> {
    let modes = ["--rebuild", "--rollback", "--local"].into_iter().filter(|m| args.has(m)).collect::<Vec<_>>();
    if modes.len() > 1 {
        return Err(exit::usage(format!("{} cannot be combined; pick one mode", modes.join(" and "))));
    }
    if args.has("--local") {
        return local::run(ctx, args);
    }
    if let Some(v) = args.value("--rollback") {
        return rollback::run(ctx, args, v, Creds::from_env());
    }
    if args.has("--rebuild") {
        return rebuild::run(ctx, args, Creds::from_env());
    }
    let mut p = Problems::default();
    let targets = preflight::targets(ctx, args, &mut p);
    release(ctx, args, targets, Creds::from_env(), p).map(|_| ())
}

/// One registry's push plan: its tags' steps, and why `latest` stays (if it does).
type TargetPlan<'a> = (&'a Target, Vec<(String, Step)>, Option<String>);

/// What a release leaves for its caller (`--local` prints how to pull it).
pub struct Released {
    pub pushed: Vec<Pushed>,
    pub version: Version,
}

/// A release: preflight, build, refuse to move fixed tags, gates, push, verify, record.
pub fn release(ctx: &Ctx, args: &Args, targets: Vec<Target>, creds: Result<Creds, Vec<String>>, mut p: Problems) -> Result<Released> {
    ctx.step("publish preflight");
    let (version, creds) = preflight::common(ctx, &mut p, &TOOLS, true, creds);
    let head = p.take(git::head(ctx));
    let image = ctx.config().map(|c| c.image.clone()).unwrap_or_default();
    if let Some(v) = &version {
        p.take(gates::preflight(ctx, args, &format!("{image}:{}", version::tag(v))));
    }
    let session = preflight::login(ctx, &mut p, &targets, creds.as_ref());
    let mut published: BTreeMap<String, Vec<String>> = BTreeMap::new();
    // A partly done release of this commit: the rebuild must come out as the same image.
    let mut resume: Option<(&Target, Remote)> = None;
    if let (Some(s), Some(v), Some(h)) = (&session, &version, &head) {
        for t in &targets {
            let Some(tags) = p.take(s.list_tags(ctx, t, &image)) else { continue };
            if tags.contains(&version::tag(v)) {
                if let Some(Some((digest, labels))) = p.take(s.inspect(ctx, t, &image, &version::tag(v))) {
                    let rev = labels[tags::LABEL_REVISION].as_str().unwrap_or("an unknown commit");
                    if rev != h.commit {
                        p.usage(format!(
                            "{} is already published in {} ({digest}, built from {rev}); a version is released once: \
                             bump VERSION (cargo xtask bump-version patch) and publish again",
                            version::tag(v),
                            t.spec
                        ));
                    } else {
                        eprintln!("    {} is already in {} from this commit: resuming", version::tag(v), t.spec);
                        if resume.is_none() {
                            resume = p.take(s.remote(ctx, t, &image, &version::tag(v))).flatten().map(|r| (t, r));
                        }
                    }
                }
            }
            published.insert(t.spec.clone(), tags);
        }
    }
    p.finish("publish")?;
    let (Some(version), Some(head), Some(session)) = (version, head, session) else {
        unreachable!("preflight passed")
    };
    ctx.end_step();

    let mut opts = BuildOpts::from_args(args);
    let vtag = version::tag(&version);
    let built = build_like(ctx, ctx, &mut opts, resume.as_ref().map(|(t, r)| (*t, r, vtag.as_str())), &image)?;
    let sha = tags::sha_tag(&head.commit, ctx.config()?.sha_length);
    // Per registry: which tags to push, skip or refuse (a fixed tag holding another image).
    let plan_pushes = || -> Result<Vec<TargetPlan>> {
        let mut plans = Vec::new();
        for t in &targets {
            let mut want = vec![version::tag(&version), sha.clone()];
            let latest = plan::latest_decision(&version, published.get(&t.spec).map(Vec::as_slice).unwrap_or(&[]));
            if latest.is_ok() {
                want.push("latest".to_string());
            }
            let remote = if ctx.dry_run { BTreeMap::new() } else { session.remotes(ctx, t, &image, &want)? };
            let steps = plan::tag_steps(&built.id, &want, &remote, &["latest"]);
            for (tag, step) in &steps {
                if let Step::Refuse(there) = step {
                    return Err(exit::usage(format!(
                        "{tag} in {} already holds {there}, another image than this build ({}); a version or commit tag \
                         never moves: bump VERSION (cargo xtask bump-version patch) and publish again",
                        t.spec, built.id
                    )));
                }
            }
            plans.push((t, steps, latest.err()));
        }
        Ok(plans)
    };
    // The gates also run in a dry run: there they only print their commands.
    let (passed, plans) = gates::run(ctx, args, &built.reference, plan_pushes);
    let plans = plans?;
    let passed = passed?;

    let mut pushed = Vec::new();
    for (t, steps, latest_skipped) in plans {
        ctx.step(&format!("push to {}", t.spec));
        if let Some(why) = &latest_skipped {
            eprintln!("    latest stays where it is in {}: {why}", t.spec);
        }
        pushed.push(push_steps(ctx, &session, t, &image, &built.id, &steps, latest_skipped)?);
        ctx.end_step();
    }
    verify(ctx, &session, &image, &pushed)?;
    untag(ctx, &image, &pushed);
    if !ctx.dry_run {
        write_record(ctx, &plan::Record {
            mode: "release",
            version: &version,
            commit: &head.commit,
            image_id: &built.id,
            pushed: &pushed,
            tools: &built.tools,
            policy_hash: &built.policy_hash,
            scan: &passed.scan,
            integration: &passed.integration,
        })?;
    }
    drop(session);
    Ok(Released { pushed, version })
}

/// Builds so that unchanged inputs give the image already published under `like`'s tag
/// (the weekly rebuild's `latest`, a resumed release's `vX.Y.Z`): with the local build
/// cache when that image is here (warm runner), else with it pulled from the registry as
/// `--cache-from` (fresh runner). The classic builder only reuses cache-from images when
/// given one, so a warm runner that picked another cached chain builds once more with the
/// published image as the cache. Same inputs, same image id: no clock goes into it (the
/// label step takes the same `cache_from`, or its layer would get a new `created`).
pub fn build_like(ctx: &Ctx, bctx: &Ctx, opts: &mut BuildOpts, like: Option<(&Target, &Remote, &str)>, image: &str) -> Result<image::Built> {
    let Some((t, remote, tag)) = like.filter(|_| !opts.no_cache) else {
        return image::build(bctx, opts);
    };
    let local = ctx.probe_output(ctx.sh.cmd("docker").args(["image", "inspect", "--format", "{{.Id}}", &remote.config]));
    if !ctx.dry_run && local.is_ok_and(|o| o.status.success()) {
        let built = image::build(bctx, opts)?;
        if built.id == remote.config {
            return Ok(built);
        }
        eprintln!("    the local cache gave another image than {tag}; building again with {tag} as the cache");
        opts.cache_from.push(remote.config.clone());
        return image::build(bctx, opts);
    }
    let cache = t.reference(image, tag);
    if ctx.dry_run {
        ctx.run(ctx.sh.cmd("docker").args(["pull", "-q", &cache]))?;
        opts.cache_from.push(cache);
        return image::build(bctx, opts);
    }
    if ctx.probe_output(ctx.sh.cmd("docker").args(["pull", "-q", &cache]))?.status.success() {
        opts.cache_from.push(cache.clone());
    } else {
        eprintln!("    warning: cannot pull {cache} as build cache; building without it (the digest will differ)");
    }
    let built = image::build(bctx, opts);
    // Only the name goes; the layers stay as long as the new image uses them.
    let _ = ctx.sh.cmd("docker").args(["rmi", &cache]).quiet().ignore_stdout().ignore_stderr().run();
    built
}

/// Pushes one registry's tags in order (`latest` comes last in `steps`); skipped tags
/// already hold this image. Every tag of a registry must come out at one digest.
fn push_steps(
    ctx: &Ctx,
    session: &Session,
    t: &Target,
    image: &str,
    id: &str,
    steps: &[(String, Step)],
    latest_skipped: Option<String>,
) -> Result<Pushed> {
    let mut digest: Option<String> = None;
    let mut tags = BTreeMap::new();
    for (tag, step) in steps {
        let (d, how) = match step {
            Step::Skip(d) => {
                eprintln!("    {tag} already holds this image in {} ({d}): skipped", t.spec);
                (Some(d.clone()), "unchanged")
            }
            // Once the registry holds the image, the other tags point at that very manifest
            // (registry-side, nothing uploaded): one digest per registry, even on a rerun from
            // another machine whose push would compress the layers anew.
            Step::Push if digest.is_some() => {
                let d = digest.clone().unwrap_or_default();
                session.retag(ctx, t, image, &d, tag)?;
                (Some(d), "pushed")
            }
            Step::Push => {
                let reference = t.reference(image, tag);
                let src = if id.is_empty() { "<built image>" } else { id };
                ctx.run(ctx.sh.cmd("docker").args(["tag", src, &reference]))?;
                let d = session.push(ctx, t, &reference, tag)?;
                (d.or_else(|| ctx.dry_run.then(|| "sha256:<digest of that push>".to_string())), "pushed")
            }
            Step::Refuse(_) => unreachable!("refused before the gates"),
        };
        if let (Some(first), Some(d)) = (&digest, &d) {
            if first != d {
                return Err(exit::env(format!(
                    "{tag} in {} came out as {d}, but the tags before it as {first}; the registry holds two manifests \
                     of one image: check it, then rerun",
                    t.spec
                )));
            }
        }
        digest = digest.or(d);
        tags.insert(tag.clone(), how);
    }
    Ok(Pushed {
        target: t.clone(),
        repo: t.repo(image),
        digest: digest.unwrap_or_default(),
        tags,
        latest_skipped,
    })
}

/// Asks each registry (not the local daemon) for the digest behind every tag.
fn verify(ctx: &Ctx, session: &Session, image: &str, pushed: &[Pushed]) -> Result<()> {
    if ctx.dry_run {
        return Ok(());
    }
    ctx.step("verify");
    // Every (registry, tag) at once: each read is a round trip of its own.
    let checks: Vec<(&Pushed, &String)> = pushed.iter().flat_map(|p| p.tags.keys().map(move |t| (p, t))).collect();
    let ctxs = checks.iter().map(|_| ctx.sibling(false)).collect::<Result<Vec<_>>>()?;
    let found: Vec<Result<Option<String>>> = std::thread::scope(|s| {
        let handles: Vec<_> = checks
            .iter()
            .zip(ctxs)
            .map(|(&(p, tag), c)| s.spawn(move || Ok(session.inspect(&c, &p.target, image, tag)?.map(|(d, _)| d))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a registry read panicked")))).collect()
    });
    for ((p, tag), there) in checks.iter().zip(found) {
        let there = there?;
        if there.as_deref() != Some(p.digest.as_str()) {
            return Err(exit::env(format!(
                "verify: {}:{tag} holds {}, but {} was pushed; something else wrote to the registry: check it and rerun",
                p.repo,
                there.as_deref().unwrap_or("nothing"),
                p.digest
            )));
        }
    }
    for p in pushed {
        eprintln!("    {}: {} verified at {}", p.target.spec, p.tags.keys().cloned().collect::<Vec<_>>().join(", "), p.digest);
    }
    ctx.end_step();
    Ok(())
}

/// Drops the local `registry/image:tag` names pushing needed (the image keeps its own tags).
fn untag(ctx: &Ctx, image: &str, pushed: &[Pushed]) {
    if ctx.dry_run {
        return;
    }
    for p in pushed {
        for (tag, how) in &p.tags {
            if *how == "pushed" {
                let _ = ctx.sh.cmd("docker").args(["rmi", &p.target.reference(image, tag)]).quiet().ignore_stdout().ignore_stderr().run();
            }
        }
    }
}

/// `target/xtask/release.json`, the deploy references on stdout, and in CI a Markdown
/// summary (appended to `$GITHUB_STEP_SUMMARY` when set).
fn write_record(ctx: &Ctx, r: &plan::Record<'_>) -> Result<Value> {
    let rec = plan::record(r);
    let dir = ctx.out_dir("")?;
    let path = dir.join("release.json");
    std::fs::write(&path, serde_json::to_string_pretty(&rec)? + "\n").with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("    release record: {}", path.display());
    for p in r.pushed {
        println!("{}@{}", p.repo, p.digest);
    }
    if ctx.ci {
        let md = plan::summary_markdown(&rec);
        let md_path = dir.join("release-summary.md");
        std::fs::write(&md_path, &md)?;
        if let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY") {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&summary)?;
            f.write_all(md.as_bytes())?;
        }
        eprintln!("    CI summary: {}", md_path.display());
    }
    Ok(rec)
}
