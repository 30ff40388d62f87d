//! `publish --rollback vX.Y.Z`: point `latest` at that version's digest in every registry,
//! without Docker rebuilding or even pulling it (`skopeo copy` by digest), then verify.
//! When releases are signed (`signing-public-key`), `latest` only goes back to a version
//! whose signature and attestations verify with the committed key in every registry.

use super::plan::{PushPlan, Source, Target};
use super::preflight::{self, Problems};
use super::{release, PublishOpts};
use crate::sign::check;
use crate::tools::skopeo::Inspected;
use crate::{cleanup, ctx::Ctx, exit, tags, verify, version};
use anyhow::Result;
use semver::Version;
use serde_json::{json, Value};

pub fn run(ctx: &Ctx, opts: &PublishOpts, v: &Version) -> Result<Value> {
    ctx.step("rollback preflight");
    let mut p = Problems::default();
    let targets = preflight::targets(ctx, opts, &mut p);
    let (_, creds) = preflight::common(ctx, &mut p, &["docker", "skopeo"], false, opts.creds.clone());
    let image = ctx.config().map(|c| c.image.clone()).unwrap_or_default();
    let session = preflight::login(ctx, &mut p, &targets, creds.as_ref(), &image);
    let mut found: Vec<(&Target, Inspected)> = Vec::new();
    if let Some(s) = &session {
        for t in &targets {
            match p.take(s.inspect(t, &image, &version::tag(v))) {
                Some(Some(i)) => found.push((t, i)),
                Some(None) => p.usage(format!(
                    "{} is not published in {}, so latest cannot go back to it",
                    version::tag(v),
                    t.spec
                )),
                None => {}
            }
        }
    }
    p.finish("publish --rollback")?;
    let (Some(session), Some(labels)) = (session, found.first().map(|(_, i)| i.labels.clone())) else {
        return Err(exit::env(
            "publish --rollback preflight could not gather its facts (registry login, the version's digest); rerun",
        ));
    };
    ctx.end_step();

    // Each registry points at its own copy of that version.
    let mut pushed = Vec::new();
    let reg = session.registry(&image);
    let public = ctx.config()?.signing_public_key.as_ref().map(|p| ctx.path(p));
    let work = cleanup::temp_dir(ctx, "rollback")?;
    // Before latest moves anywhere: the version's signature in every registry, when
    // releases are signed, so that a copy that does not verify in one registry leaves
    // latest unchanged in all of them.
    if let (Some(key), false) = (&public, ctx.dry_run()) {
        for (t, i) in &found {
            let dir = work.path().join(t.spec.replace(['/', ':'], "_"));
            check::verify(
                ctx,
                &session.access(t),
                &dir,
                key,
                &t.repo(&image),
                &i.digest,
                &verify::REQUIRED,
            )
            .map_err(|e| {
                let msg = format!(
                    "{} cannot become latest: {}; roll back to a signed release",
                    version::tag(v),
                    exit::one_line(&e)
                );
                anyhow::Error::from(exit::Exit {
                    code: exit::code_of(&e),
                    msg,
                })
            })?;
            eprintln!(
                "    {} in {} is signed and attested with {}: latest may go back to it",
                version::tag(v),
                t.spec,
                key.display()
            );
        }
    }
    for (t, i) in &found {
        let plan = PushPlan::rollback(
            v,
            Source::Remote {
                repo: t.repo(&image),
                digest: i.digest.clone(),
            },
            &[(*t).clone()],
        );
        pushed.extend(release::execute(ctx, &reg, &image, &plan, &|_, _| Ok(()))?);
    }
    let commit = labels.get(tags::LABEL_REVISION).map(String::as_str).unwrap_or("");
    Ok(release::remote_record(
        "rollback",
        v,
        commit,
        &pushed,
        &labels,
        &json!(null),
    ))
}
