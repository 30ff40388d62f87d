//! `publish --rollback vX.Y.Z`: point `latest` at that version's digest in every registry,
//! without Docker rebuilding or even pulling it (`skopeo copy` by digest), then verify.

use super::plan::{Pushed, Target};
use super::preflight::{self, Problems};
use super::registry::Creds;
use super::{verify, write_record};
use crate::{cli::Args, ctx::Ctx, tags, version};
use anyhow::Result;
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub fn run(ctx: &Ctx, args: &Args, want: &str, creds: Result<Creds, Vec<String>>) -> Result<()> {
    ctx.step("rollback preflight");
    let mut p = Problems::default();
    let targets = preflight::targets(ctx, args, &mut p);
    let v = match version::parse_tag(want).or_else(|_| version::parse_plain(want)) {
        Ok(v) if v.pre.is_empty() => Some(v),
        Ok(v) => {
            p.usage(format!("--rollback {want}: {} is a pre-release, and latest never points at one; name a release", version::tag(&v)));
            None
        }
        Err(why) => {
            p.usage(format!("--rollback {want}: {why}; expected a released version like v1.2.3"));
            None
        }
    };
    let (_, creds) = preflight::common(ctx, &mut p, &["docker", "skopeo"], false, creds);
    let session = preflight::login(ctx, &mut p, &targets, creds.as_ref());
    let image = ctx.config().map(|c| c.image.clone()).unwrap_or_default();
    let mut found: Vec<(&Target, String, Value)> = Vec::new();
    if let (Some(s), Some(v)) = (&session, &v) {
        for t in &targets {
            match p.take(s.inspect(ctx, t, &image, &version::tag(v))) {
                Some(Some((digest, labels))) => found.push((t, digest, labels)),
                Some(None) => p.usage(format!("{} is not published in {}, so latest cannot go back to it", version::tag(v), t.spec)),
                None => {}
            }
        }
    }
    p.finish("publish --rollback")?;
    let (Some(session), Some(v)) = (session, v) else { unreachable!("preflight passed") };
    ctx.end_step();

    let mut pushed = Vec::new();
    for (t, digest, _) in &found {
        ctx.step(&format!("latest → {} in {}", version::tag(&v), t.spec));
        let now = session.inspect(ctx, t, &image, "latest")?.map(|(d, _)| d);
        let how = if now.as_deref() == Some(digest.as_str()) {
            eprintln!("    latest already holds {digest} in {}", t.spec);
            "unchanged"
        } else {
            session.retag(ctx, t, &image, digest, "latest")?;
            "pushed"
        };
        pushed.push(Pushed {
            target: (*t).clone(),
            repo: t.repo(&image),
            digest: digest.clone(),
            tags: BTreeMap::from([("latest".to_string(), how)]),
            latest_skipped: None,
        });
        ctx.end_step();
    }
    verify(ctx, &session, &image, &pushed)?;
    if ctx.dry_run {
        return Ok(());
    }
    let labels = &found[0].2;
    let tools: BTreeMap<String, String> = labels
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, val)| Some((k.strip_prefix(&tags::tool_label(""))?.to_string(), val.as_str()?.to_string())))
        .collect();
    write_record(ctx, &super::plan::Record {
        mode: "rollback",
        version: &v,
        commit: labels[tags::LABEL_REVISION].as_str().unwrap_or(""),
        image_id: "",
        pushed: &pushed,
        tools: &tools,
        policy_hash: labels[tags::LABEL_POLICY_HASH].as_str().unwrap_or(""),
        scan: &json!(null),
        integration: &json!(null),
    })?;
    Ok(())
}
