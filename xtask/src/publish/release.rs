//! A release: preflight (every problem at once), build, gates side by side with the
//! registry reads, then the push plan (`vX.Y.Z`, `sha-…`, `latest`) through the executor.
//!
//! A rerun after a failure resumes by identity: when a registry already holds `vX.Y.Z`
//! built from this very commit, the missing tags are pointed at that manifest,
//! registry-side, with no rebuild (that image passed the gates before it got its tag).

use super::plan::{self, PushPlan, Pushed, Source, Target};
use super::preflight::{self, Problems};
use super::registry::{Creds, Credentials};
use super::{gates, push, PublishOpts, TOOLS};
use crate::image::{self, BuildOpts};
use crate::tools::git;
use crate::{ctx::Ctx, exit, tags, version};
use anyhow::Result;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// What a release leaves for its caller (`--local` prints how to pull it).
pub struct Released {
    pub pushed: Vec<Pushed>,
    pub version: semver::Version,
    pub record: Value,
}

/// `local`: the registry and credentials of `--local`'s own registry; `None` for the
/// ones the options name.
pub fn run(ctx: &Ctx, opts: &PublishOpts, mut p: Problems, local: Option<(Vec<Target>, Creds)>) -> Result<Released> {
    ctx.step("publish preflight");
    let (targets, creds) = match local {
        Some((t, c)) => (t, Credentials::Given(c)),
        None => (preflight::targets(ctx, opts, &mut p), opts.creds.clone()),
    };
    let (version, creds) = preflight::common(ctx, &mut p, &TOOLS, true, creds);
    let head = p.take(git::head(ctx));
    let image = ctx.config().map(|c| c.image.clone()).unwrap_or_default();
    if let Some(v) = &version {
        p.take(gates::preflight(ctx, &opts.scan, &format!("{image}:{}", version::tag(v))));
    }
    let session = preflight::login(ctx, &mut p, &targets, creds.as_ref(), &image);
    // A release of this version already in a registry: from this commit (resume), or not.
    let mut resume: Option<(Source, BTreeMap<String, String>)> = None;
    if let (Some(s), Some(v), Some(h)) = (&session, &version, &head) {
        for t in &targets {
            let Some(Some(found)) = p.take(s.inspect(t, &image, &version::tag(v))) else { continue };
            let rev = found.labels.get(tags::LABEL_REVISION).map(String::as_str).unwrap_or("an unknown commit");
            if rev != h.commit {
                p.usage(format!(
                    "{} is already published in {} ({}, built from {rev}); a version is released once: \
                     bump VERSION (cargo xtask bump-version patch) and publish again",
                    version::tag(v),
                    t.spec,
                    found.digest
                ));
            } else if resume.is_none() {
                eprintln!("    {} is already in {} from this commit ({}): resuming from it, no rebuild", version::tag(v), t.spec, found.digest);
                resume = Some((Source::Remote { repo: t.repo(&image), digest: found.digest }, found.labels));
            }
        }
    }
    p.finish("publish")?;
    let (Some(version), Some(head), Some(session)) = (version, head, session) else {
        return Err(exit::env("publish preflight could not gather its facts (version, commit, registry login); rerun"));
    };
    ctx.end_step();
    let sha = tags::sha_tag(&head.commit, ctx.config()?.sha_length);
    let reg = session.registry(&image);

    if let Some((source, labels)) = resume {
        let plan = PushPlan::release(&version, &sha, source, &targets);
        let pushed = execute(ctx, &reg, &image, &plan)?;
        let rec = plan::record(&plan::Record {
            mode: "release",
            version: &version,
            commit: &head.commit,
            image_id: "",
            pushed: &pushed,
            tools: &tools_of(&labels),
            policy_hash: labels.get(tags::LABEL_POLICY_HASH).map(String::as_str).unwrap_or(""),
            scan: &json!({ "resumed": "its gates passed when it was first pushed" }),
            integration: &json!(null),
        });
        return Ok(Released { pushed, version, record: rec });
    }

    let build = BuildOpts { auth: Some(session.auth().clone()), ..opts.build.clone() };
    let built = image::build(ctx, &build)?;
    let plan = PushPlan::release(&version, &sha, Source::Built { id: built.id.clone() }, &targets);
    // While the gates run: would any fixed tag have to move? Then stop before pushing.
    let precheck = || if ctx.dry_run { Ok(()) } else { refusals(&reg, &plan) };
    let (passed, refused) = gates::run(ctx, &opts.scan, &built.reference, precheck);
    refused?;
    let passed = passed?;
    let pushed = execute(ctx, &reg, &image, &plan)?;
    let rec = plan::record(&plan::Record {
        mode: "release",
        version: &version,
        commit: &head.commit,
        image_id: &built.id,
        pushed: &pushed,
        tools: &built.tools,
        policy_hash: &built.policy_hash,
        scan: &passed.scan,
        integration: &passed.integration,
    });
    Ok(Released { pushed, version, record: rec })
}

/// Carries the plan out, then reads every tag back.
pub fn execute(ctx: &Ctx, reg: &dyn push::Registry, image: &str, plan: &PushPlan) -> Result<Vec<Pushed>> {
    for t in &plan.targets {
        ctx.step(&format!("push to {}", t.target.spec));
    }
    let pushed = push::execute(reg, image, plan, ctx.dry_run, &|m| eprintln!("    {m}"))?;
    if !ctx.dry_run {
        ctx.step("verify");
        push::verify(reg, &pushed)?;
        for p in &pushed {
            eprintln!("    {}: {} verified at {}", p.target.spec, p.tags.keys().cloned().collect::<Vec<_>>().join(", "), p.digest);
            eprintln!("    {}: {}", p.target.spec, p.upload.summary());
        }
        ctx.end_step();
    }
    Ok(pushed)
}

/// A fixed tag of the plan that already holds another image: exit 2 before any push.
fn refusals(reg: &dyn push::Registry, plan: &PushPlan) -> Result<()> {
    for tp in &plan.targets {
        for tag in tp.tags.iter().filter(|t| t.kind == plan::Kind::Fixed) {
            let now = reg.remote(&tp.target, &tag.tag)?;
            if let plan::Decision::Refuse { there } = plan::decide(tag, &plan.source, &plan.version, now.as_ref(), &[]) {
                return Err(exit::usage(format!(
                    "{} in {} already holds {there}, another image than this build ({}); a version or commit tag \
                     never moves: bump VERSION (cargo xtask bump-version patch) and publish again",
                    tag.tag,
                    tp.target.spec,
                    plan.source.describe()
                )));
            }
        }
    }
    Ok(())
}

/// Tool → version from an image's labels.
pub fn tools_of(labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let prefix = tags::tool_label("");
    labels.iter().filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?.to_string(), v.clone()))).collect()
}
