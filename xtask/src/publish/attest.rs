//! Signing a release: the key is checked in preflight (against the committed public key),
//! the SBOM is written while the gates run, the provenance comes from the build's own
//! facts, and in each registry, before `latest` moves, the pushed digest gets its
//! signature (`.sig`) and its SLSA provenance and CycloneDX SBOM attestations (`.att`).

use super::plan::Target;
use super::registry::Session;
use crate::scan::sbom::Sbom;
use crate::sign::attach::{self, Attached};
use crate::sign::check;
use crate::sign::cosign;
use crate::sign::provenance::{self, Builder, Dependency};
use crate::sign::signer::Signer;
use crate::tools::git::Head;
use crate::{cleanup, ctx::Ctx, date, tags};
use anyhow::Result;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Signs and attests each registry's digest of one release.
pub struct Attestor<'a> {
    ctx: &'a Ctx,
    session: &'a Session<'a>,
    signer: &'a Signer,
    predicates: Vec<(&'static str, Value)>,
    work: crate::files::TempDir,
    pub attached: Mutex<Vec<Attached>>,
}

impl<'a> Attestor<'a> {
    pub fn new(
        ctx: &'a Ctx,
        session: &'a Session<'a>,
        signer: &'a Signer,
        provenance: Value,
        sbom: Option<&Sbom>,
    ) -> Result<Attestor<'a>> {
        let mut predicates = vec![(cosign::SLSA_PROVENANCE_V1, provenance)];
        if let Some(s) = sbom {
            predicates.push((cosign::CYCLONEDX, s.document.clone()));
        }
        Ok(Attestor {
            ctx,
            session,
            signer,
            predicates,
            work: cleanup::temp_dir(ctx, "sign")?,
            attached: Mutex::new(Vec::new()),
        })
    }

    /// Signs `digest` in `t`'s repository, unless its signature and attestations already
    /// verify with this key (a rerun).
    pub fn sign(&self, t: &Target, image: &str, digest: &str) -> Result<()> {
        let repo = t.repo(image);
        let access = self.session.access(t);
        let n = self.attached.lock().map(|a| a.len()).unwrap_or(0);
        let work = self.work.path().join(format!("{n}"));
        std::fs::create_dir_all(&work)?;
        // Part of the push step that calls it (a group of its own would nest in CI logs).
        eprintln!("    sign {repo}@{digest}");
        if !self.ctx.dry_run() {
            let types: Vec<&str> = self.predicates.iter().map(|(t, _)| *t).collect();
            if let Ok(v) = check::verify(
                self.ctx,
                &access,
                &work.join("existing"),
                &self.signer.public_file,
                &repo,
                digest,
                &types,
            ) {
                eprintln!("    {repo}@{digest} is already signed and attested with this key: kept");
                self.push_attached(Attached {
                    repository: repo,
                    signature_tag: cosign::tag_for(digest, "sig"),
                    signature_digest: v.signature_digest,
                    attestation_tag: cosign::tag_for(digest, "att"),
                    attestation_digest: v.attestation_digest,
                });
                return Ok(());
            }
        }
        let a = attach::attach(self.ctx, &access, &work, self.signer, &repo, digest, &self.predicates)?;
        eprintln!(
            "    signed ({}) and attested ({}) with {}",
            a.signature_tag, a.attestation_tag, self.signer.fingerprint
        );
        self.push_attached(a);
        Ok(())
    }

    fn push_attached(&self, a: Attached) {
        if let Ok(mut v) = self.attached.lock() {
            v.push(a);
        }
    }

    /// The record's `signing` part.
    pub fn record(&self, sbom: Option<&Sbom>, root: &std::path::Path) -> Value {
        let attached = self.attached.lock().map(|a| a.clone()).unwrap_or_default();
        json!({
            "fingerprint": self.signer.fingerprint,
            "public_key": self.signer.public_file.strip_prefix(root).unwrap_or(&self.signer.public_file).display().to_string(),
            "predicate_types": self.predicates.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
            "sbom": sbom.map(|s| json!({
                "path": s.path.strip_prefix(root).unwrap_or(&s.path).display().to_string(),
                "components": s.components,
            })),
            "registries": attached.iter().map(|a| json!({
                "repository": a.repository,
                "signature": { "tag": a.signature_tag, "digest": a.signature_digest },
                "attestations": { "tag": a.attestation_tag, "digest": a.attestation_digest },
            })).collect::<Vec<_>>(),
        })
    }
}

/// What a provenance is made of: the build's own facts.
pub struct Facts<'a> {
    /// The base's digest as the build recorded it (its `base.digest` label).
    pub base_digest: Option<&'a str>,
    /// The Dockerfile's arguments as the build used them.
    pub args: &'a BTreeMap<String, String>,
    pub policy_hash: &'a str,
    pub head: &'a Head,
    pub version: &'a str,
    /// The `--build-arg`s given (secrets are left out).
    pub user_args: &'a [String],
    /// When the publish started (Unix seconds).
    pub started: u64,
}

/// The SLSA provenance of a build, from its own facts (nothing secret goes in).
pub fn provenance(ctx: &Ctx, f: &Facts<'_>) -> Result<Value> {
    let Facts {
        base_digest,
        args,
        policy_hash,
        head,
        version,
        user_args,
        started,
    } = *f;
    let cfg = ctx.config()?;
    let source = if cfg.source.is_empty() {
        "urn:policy-platform:source".to_string()
    } else {
        cfg.source.clone()
    };
    let mut deps = vec![Dependency {
        name: "source".into(),
        uri: format!("git+{source}@{}", head.commit),
        digest: vec![("gitCommit".into(), head.commit.clone())],
    }];
    for (name, arg, recorded) in [
        ("base-image", "BASE_IMAGE", base_digest),
        ("download-image", "DOWNLOAD_IMAGE", None),
    ] {
        let Some(reference) = args.get(arg) else { continue };
        // The digest the build recorded (a label), else the one the reference pins, else
        // the manifest digest the engine pulled it at (a base given by tag).
        let digest = recorded
            .map(String::from)
            .or_else(|| reference.split_once('@').map(|(_, d)| d.to_string()))
            .or_else(|| repo_digest(ctx, reference));
        let digest = digest
            .and_then(|d| d.strip_prefix("sha256:").map(String::from))
            .map(|h| vec![("sha256".to_string(), h)])
            .unwrap_or_default();
        deps.push(Dependency {
            name: name.into(),
            uri: format!("docker://{reference}"),
            digest,
        });
    }
    for (tool, version, url, sha) in tags::tool_sources(args) {
        deps.push(Dependency {
            name: format!("{tool}@{version}"),
            uri: url,
            digest: vec![("sha256".into(), sha)],
        });
    }
    deps.push(Dependency {
        name: "policies".into(),
        uri: format!("git+{source}@{}#policies", head.commit),
        digest: vec![("sha256".into(), policy_hash.to_string())],
    });
    let args: Vec<(String, String)> = user_args
        .iter()
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| !provenance::is_secret_arg(k))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let builder = Builder {
        id: ctx.env.builder_id.clone(),
        invocation: ctx.env.invocation.clone(),
    };
    Ok(provenance::predicate(&provenance::Input {
        version,
        commit: &head.commit,
        source: &source,
        build_args: &args,
        dependencies: &deps,
        builder: &builder,
        started_on: &date::rfc3339(started),
        finished_on: &date::rfc3339(date::now()),
    }))
}

/// The manifest digest of `reference` (a `REPO:TAG` the engine pulled), from its
/// `RepoDigests` entry of the same repository; `None` for an image that was never pulled
/// (built or imported locally): it has no registry digest to record.
fn repo_digest(ctx: &Ctx, reference: &str) -> Option<String> {
    digest_of_repo(reference, &crate::tools::docker::repo_digests(ctx, reference).ok()?)
}

/// The digest of the `REPO@DIGEST` entry naming `reference`'s repository (Docker Hub
/// names compared in their short form, as the engine lists them).
fn digest_of_repo(reference: &str, repo_digests: &[String]) -> Option<String> {
    let short = |r: &str| {
        let r = r
            .strip_prefix("docker.io/")
            .or_else(|| r.strip_prefix("index.docker.io/"))
            .unwrap_or(r);
        r.strip_prefix("library/").unwrap_or(r).to_string()
    };
    let repo = match reference.rsplit_once(':') {
        Some((r, tag)) if !tag.contains('/') => r,
        _ => reference,
    };
    repo_digests.iter().find_map(|d| {
        d.split_once('@')
            .filter(|(r, _)| short(r) == short(repo))
            .map(|(_, d)| d.to_string())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_tag_is_pinned_by_the_repo_digest_of_its_own_repository() {
        let d = "sha256:4b7ce07002c69e8f3d704a9c5d6fd3053be500b7f1c69fc0d80990c2ad8dd412";
        let listed = vec![
            "127.0.0.1:5000/other@sha256:00".to_string(),
            format!("127.0.0.1:5000/team/base@{d}"),
        ];
        assert_eq!(
            super::digest_of_repo("127.0.0.1:5000/team/base:1", &listed).as_deref(),
            Some(d)
        );
        assert_eq!(
            super::digest_of_repo("127.0.0.1:5000/team/base", &listed).as_deref(),
            Some(d)
        );
        assert_eq!(super::digest_of_repo("127.0.0.1:5000/team/nope:1", &listed), None);
        let hub = vec![format!("alpine@{d}")];
        assert_eq!(
            super::digest_of_repo("docker.io/library/alpine:3.22", &hub).as_deref(),
            Some(d)
        );
        assert_eq!(super::digest_of_repo("alpine:3.22", &hub).as_deref(), Some(d));
        assert_eq!(super::digest_of_repo("pp-test-base:busybox", &[]), None);
    }
}
