//! A release: preflight (every problem at once), build, gates side by side with the
//! registry reads and the SBOM, then the push plan (`vX.Y.Z`, `sha-…`, `latest`) through
//! the executor, which signs and attests each registry's digest before `latest` moves.
//!
//! A rerun after a failure resumes by identity: when a registry already holds `vX.Y.Z`
//! built from this very commit, the missing tags are pointed at that manifest,
//! registry-side, with no rebuild (that image passed the gates before it got its tag).

use super::attest::{self, Attestor};
use super::plan::{self, PushPlan, Pushed, Source, Target};
use super::preflight::{self, Problems};
use super::registry::{Credentials, Creds};
use super::{gates, push, PublishOpts};
use crate::image::{self, BuildOpts};
use crate::scan::sbom::{self, Sbom};
use crate::sign::signer::{self, Signer};
use crate::tools::docker;
use crate::{ctx::Ctx, date, exit, tags, version};
use anyhow::Result;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// What a release leaves for its caller (`--local` prints how to pull it).
pub struct Released {
    pub pushed: Vec<Pushed>,
    pub version: semver::Version,
    pub record: Value,
}

/// `publish --local`'s own registry, credentials and throwaway key pair.
pub struct Local {
    pub targets: Vec<Target>,
    pub creds: Creds,
    pub signer: Signer,
}

/// The signing key of a publish: checked in preflight; `None` (with one warning) when no
/// `signing-public-key` is configured.
pub fn signer_of(ctx: &Ctx, opts: &PublishOpts, p: &mut Problems) -> Option<Signer> {
    match p.take(signer::load(ctx, &opts.signing)) {
        Some(None) => {
            eprintln!(
                "warning: this release will be UNSIGNED: no `signing-public-key` is configured (see README, Signing)"
            );
            None
        }
        Some(s) => s,
        None => None,
    }
}

pub fn run(ctx: &Ctx, opts: &PublishOpts, local: Option<Local>) -> Result<Released> {
    let started = date::now();
    let mut p = Problems::default();
    ctx.step("publish preflight");
    let (targets, creds, signer) = match local {
        Some(l) => (l.targets, Credentials::Given(l.creds), Some(l.signer)),
        None => (
            preflight::targets(ctx, opts, &mut p),
            opts.creds.clone(),
            signer_of(ctx, opts, &mut p),
        ),
    };
    let preflight::Gathered {
        version,
        head,
        image,
        session,
    } = preflight::gather(ctx, &mut p, &opts.scan, &targets, creds);
    // A release of this version already in a registry: from this commit (resume), or not.
    let mut resume: Option<(Source, BTreeMap<String, String>)> = None;
    if let (Some(s), Some(v), Some(h)) = (&session, &version, &head) {
        for t in &targets {
            let Some(Some(found)) = p.take(s.inspect(t, &image, &version::tag(v))) else {
                continue;
            };
            let rev = found
                .labels
                .get(tags::LABEL_REVISION)
                .map(String::as_str)
                .unwrap_or("an unknown commit");
            if rev != h.commit {
                p.usage(format!(
                    "{} is already published in {} ({}, built from {rev}); a version is released once: \
                     bump VERSION (cargo xtask bump-version patch) and publish again",
                    version::tag(v),
                    t.spec,
                    found.digest
                ));
            } else if resume.is_none() {
                eprintln!(
                    "    {} is already in {} from this commit ({}): resuming from it, no rebuild",
                    version::tag(v),
                    t.spec,
                    found.digest
                );
                resume = Some((
                    Source::Remote {
                        repo: t.repo(&image),
                        digest: found.digest,
                    },
                    found.labels,
                ));
            }
        }
    }
    p.finish("publish")?;
    let (Some(version), Some(head), Some(session)) = (version, head, session) else {
        return Err(exit::env(
            "publish preflight could not gather its facts (version, commit, registry login); rerun",
        ));
    };
    ctx.end_step();
    let sha = tags::sha_tag(&head.commit, ctx.config()?.sha_length);
    let reg = session.registry(&image);
    let vtag = version::tag(&version);

    if let Some((source, labels)) = resume {
        let plan = PushPlan::release(&version, &sha, source.clone(), &targets);
        // Signing may be what the failed run did not get to: the image is pulled by digest
        // for its SBOM, and the provenance comes from this commit's Dockerfile and labels.
        let mut signing = None;
        if let (Some(signer), Source::Remote { repo, digest }) = (&signer, &source) {
            let local = format!("{repo}@{digest}");
            if !docker::pull(ctx, Some(session.auth()), &local)? && !ctx.dry_run() {
                return Err(exit::env(format!(
                    "cannot pull {local} to sign it; check the registry and rerun"
                )));
            }
            let sbom = sbom::sbom(ctx, &local, &format!("{image}:{vtag}"))?;
            let args = image::resolved_args(ctx, &opts.build)?;
            let policy_hash = labels.get(tags::LABEL_POLICY_HASH).cloned().unwrap_or_default();
            let prov = attest::provenance(
                ctx,
                &attest::Facts {
                    base_digest: labels.get(tags::LABEL_BASE_DIGEST).map(String::as_str),
                    args: &args,
                    policy_hash: &policy_hash,
                    head: &head,
                    version: &vtag,
                    user_args: &opts.build.build_args,
                    started,
                },
            )?;
            signing = Some((Attestor::new(ctx, &session, signer, prov, sbom.as_ref())?, sbom));
        }
        let hook = |t: &Target, d: &str| signing.as_ref().map_or(Ok(()), |(a, _)| a.sign(t, &image, d));
        let pushed = execute(ctx, &reg, &image, &plan, &hook)?;
        let mut rec = remote_record(
            "release",
            &version,
            &head.commit,
            &pushed,
            &labels,
            &json!({ "resumed": "its gates passed when it was first pushed" }),
        );
        rec["signing"] = signing
            .as_ref()
            .map_or(Value::Null, |(a, s)| a.record(s.as_ref(), &ctx.root));
        return Ok(Released {
            pushed,
            version,
            record: rec,
        });
    }

    let build = BuildOpts {
        auth: Some(session.auth().clone()),
        ..opts.build.clone()
    };
    let built = image::build(ctx, &build)?;
    let plan = PushPlan::release(&version, &sha, Source::Built { id: built.id.clone() }, &targets);
    // While the gates run: would any fixed tag have to move (then stop before pushing)?
    // And the SBOM, when the release is signed.
    let meanwhile = |id: &str| -> Result<Option<Sbom>> {
        if !ctx.dry_run() {
            refusals(&reg, &plan)?;
        }
        match &signer {
            Some(_) => sbom::sbom(ctx, id, &built.reference),
            None => Ok(None),
        }
    };
    let (passed, sbom) = gates::run(ctx, &opts.scan, (&built.id, &built.reference), meanwhile);
    let sbom = sbom?;
    let passed = passed?;
    let attestor = match &signer {
        Some(s) => {
            let prov = attest::provenance(
                ctx,
                &attest::Facts {
                    base_digest: built.base_digest.as_deref(),
                    args: &built.args,
                    policy_hash: &built.policy_hash,
                    head: &head,
                    version: &vtag,
                    user_args: &opts.build.build_args,
                    started,
                },
            )?;
            Some(Attestor::new(ctx, &session, s, prov, sbom.as_ref())?)
        }
        None => None,
    };
    let hook = |t: &Target, d: &str| attestor.as_ref().map_or(Ok(()), |a| a.sign(t, &image, d));
    let pushed = execute(ctx, &reg, &image, &plan, &hook)?;
    let mut rec = record("release", &version, &head.commit, &built, &pushed, &passed);
    rec["signing"] = attestor
        .as_ref()
        .map_or(Value::Null, |a| a.record(sbom.as_ref(), &ctx.root));
    Ok(Released {
        pushed,
        version,
        record: rec,
    })
}

/// The record of a build that passed its gates and was pushed.
pub fn record(
    mode: &str,
    version: &semver::Version,
    commit: &str,
    built: &image::Built,
    pushed: &[Pushed],
    passed: &gates::Passed,
) -> Value {
    plan::record(&plan::Record {
        mode,
        version,
        commit,
        image_id: &built.id,
        pushed,
        tools: &built.tools,
        policy_hash: &built.policy_hash,
        scan: &passed.scan,
        integration: &passed.integration,
    })
}

/// The record of an image that was already in a registry (a resumed release, a rollback):
/// what it holds comes from its labels; no local image, no gates run now.
pub fn remote_record(
    mode: &str,
    version: &semver::Version,
    commit: &str,
    pushed: &[Pushed],
    labels: &BTreeMap<String, String>,
    scan: &Value,
) -> Value {
    plan::record(&plan::Record {
        mode,
        version,
        commit,
        image_id: "",
        pushed,
        tools: &tools_of(labels),
        policy_hash: labels.get(tags::LABEL_POLICY_HASH).map(String::as_str).unwrap_or(""),
        scan,
        integration: &json!(null),
    })
}

/// Carries the plan out, then reads every tag back.
pub fn execute(
    ctx: &Ctx,
    reg: &dyn push::Registry,
    image: &str,
    plan: &PushPlan,
    before_latest: push::BeforeLatest<'_>,
) -> Result<Vec<Pushed>> {
    let specs: Vec<&str> = plan.targets.iter().map(|t| t.target.spec.as_str()).collect();
    ctx.step(&format!("push to {}", specs.join(", ")));
    let pushed = push::execute(
        reg,
        image,
        plan,
        ctx.dry_run(),
        &|m| eprintln!("    {m}"),
        before_latest,
    );
    ctx.end_step();
    let pushed = pushed?;
    if !ctx.dry_run() {
        ctx.step("verify");
        push::verify(reg, &pushed)?;
        for p in &pushed {
            eprintln!(
                "    {}: {} verified at {}",
                p.target.spec,
                p.tags.keys().cloned().collect::<Vec<_>>().join(", "),
                p.digest
            );
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
            if let plan::Decision::Refuse { there } = plan::decide(tag, &plan.source, &plan.version, now.as_ref(), &[])
            {
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
fn tools_of(labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let prefix = tags::tool_label("");
    labels
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?.to_string(), v.clone())))
        .collect()
}
