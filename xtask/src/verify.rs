//! `verify [REF]`: what a deployer checks before trusting a published image. Reads the
//! digest behind REF (default: `latest` in each configured registry), verifies its cosign
//! signature and its SLSA provenance and CycloneDX SBOM attestations against the
//! committed public key (or `--key`), and prints what the signed provenance says: version,
//! commit, tools, base image digest, and the SBOM's size. Needs skopeo and openssl.
//!
//! Exit 0: valid. 1: a signature or attestation is missing, does not verify, or names
//! another image. 2: bad input. 3: a registry cannot be read.

use crate::publish::{Credentials, Creds, Pushed, Target};
use crate::sign::check::{self, Verified};
use crate::sign::{cosign, provenance};
use crate::tools::{self, openssl, skopeo};
use crate::{cleanup, ctx::Ctx, exit};
use anyhow::Result;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct VerifyOpts {
    /// `TAG`, `vX.Y.Z`, or `HOST[:PORT]/PATH/NAME[:TAG|@DIGEST]`; `None`: `latest`.
    pub reference: Option<String>,
    pub key: Option<PathBuf>,
    pub creds: Credentials,
}

/// The attestations every release carries.
pub const REQUIRED: [&str; 2] = [cosign::SLSA_PROVENANCE_V1, cosign::CYCLONEDX];

/// One image to check: its registry, repository and the tag or digest asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Wanted {
    pub target: Target,
    pub repository: String,
    /// `:tag` or `@sha256:…`.
    pub reference: String,
}

/// What REF means: every configured registry's `image:TAG`, or one full reference.
pub fn wanted(reference: Option<&str>, image: &str, registries: &[String]) -> Result<Vec<Wanted>> {
    let r = reference.unwrap_or("latest");
    if r.contains('/') {
        let (repo, rest) = match r.split_once('@') {
            Some((repo, d)) if skopeo::is_digest(d) => (repo.to_string(), format!("@{d}")),
            Some(_) => return Err(exit::usage(format!("`{r}` has a digest that is not sha256:<64 hex>"))),
            None => match r.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
                Some((repo, tag)) => (repo.to_string(), format!(":{tag}")),
                None => (r.to_string(), ":latest".to_string()),
            },
        };
        if let Some(tag) = rest.strip_prefix(':') {
            crate::tags::check_tag(tag).map_err(|why| exit::usage(format!("`{r}`: {why}")))?;
        }
        let target = Target::parse(&repo).map_err(|e| exit::usage(format!("`{r}`: {e}")))?;
        if !repo
            .split('/')
            .next()
            .is_some_and(|h| h.contains('.') || h.contains(':') || h == "localhost")
        {
            return Err(exit::usage(format!(
                "`{r}` names no registry host; write HOST[:PORT]/PATH/NAME:TAG"
            )));
        }
        return Ok(vec![Wanted {
            target,
            repository: repo,
            reference: rest,
        }]);
    }
    crate::tags::check_tag(r).map_err(|why| exit::usage(format!("REF `{r}`: {why}")))?;
    if registries.is_empty() {
        return Err(exit::usage(format!(
            "`{r}` is a tag, but no `registries` are configured in Cargo.toml: pass a full reference like ghcr.io/org/{image}:{r}"
        )));
    }
    registries
        .iter()
        .map(|spec| {
            let t = Target::parse(spec).map_err(|e| exit::usage(format!("Cargo.toml `registries`: {e}")))?;
            Ok(Wanted {
                repository: t.repo(image),
                target: t,
                reference: format!(":{r}"),
            })
        })
        .collect()
}

pub fn run(ctx: &Ctx, opts: &VerifyOpts) -> Result<()> {
    tools::require(&["skopeo", "openssl"])?;
    let cfg = ctx.config()?;
    let key = match (&opts.key, &cfg.signing_public_key) {
        (Some(k), _) => k.clone(),
        (None, Some(rel)) => ctx.path(rel),
        (None, None) => {
            return Err(exit::usage(
                "no public key to verify with: pass --key PATH, or set `signing-public-key` in Cargo.toml",
            ))
        }
    };
    let fingerprint = key_fingerprint(ctx, &key)?;
    let wanted = wanted(opts.reference.as_deref(), &cfg.image, &cfg.registries)?;
    let creds = match &opts.creds {
        Credentials::Given(c) => Some(c),
        Credentials::User => None,
        Credentials::Broken(p) => return Err(exit::usage(p.join("; "))),
    };
    let targets: Vec<Target> = wanted.iter().map(|w| w.target.clone()).collect();
    let session = session(ctx, creds, &targets)?;
    let work = cleanup::temp_dir(ctx, "verify")?;
    for (i, w) in wanted.iter().enumerate() {
        let a = session.access(&w.target);
        let full = format!("{}{}", w.repository, w.reference);
        let found = skopeo::inspect(ctx, &a, &full)?
            .ok_or_else(|| exit::usage(format!("{full} does not exist; name a published tag or digest")))?;
        let v = check::verify(
            ctx,
            &a,
            &work.path().join(i.to_string()),
            &key,
            &w.repository,
            &found.digest,
            &REQUIRED,
        )?;
        print_verified(&w.repository, &found.digest, &fingerprint, &v);
    }
    Ok(())
}

/// `publish --local`: each pushed digest checked as a consumer would.
pub fn check_published(ctx: &Ctx, creds: &Creds, key: &Path, pushed: &[Pushed]) -> Result<()> {
    let fingerprint = key_fingerprint(ctx, key)?;
    let targets: Vec<Target> = pushed.iter().map(|p| p.target.clone()).collect();
    let session = session(ctx, Some(creds), &targets)?;
    let work = cleanup::temp_dir(ctx, "verify")?;
    for (i, p) in pushed.iter().enumerate() {
        let v = check::verify(
            ctx,
            &session.access(&p.target),
            &work.path().join(i.to_string()),
            key,
            &p.repo,
            &p.digest,
            &REQUIRED,
        )?;
        print_verified(&p.repo, &p.digest, &fingerprint, &v);
    }
    Ok(())
}

/// With `REGISTRY_*` credentials, a throwaway Docker config with a login per registry;
/// without (`None`), the user's own Docker login.
fn session<'a>(ctx: &'a Ctx, creds: Option<&Creds>, targets: &[Target]) -> Result<crate::publish::Session<'a>> {
    Ok(match creds {
        Some(c) => {
            let s = crate::publish::Session::new(ctx, targets)?;
            for t in targets {
                s.login(t, c)?;
            }
            s
        }
        None => {
            let dir = ctx.env.docker_config.clone().ok_or_else(|| {
                exit::usage(
                    "no registry credentials: set REGISTRY_USERNAME and REGISTRY_PASSWORD, or log in with docker",
                )
            })?;
            crate::publish::Session::user(ctx, dir)
        }
    })
}

fn key_fingerprint(ctx: &Ctx, key: &Path) -> Result<String> {
    let pem = std::fs::metadata(key)
        .ok()
        .filter(|m| m.is_file() && m.len() < 16 * 1024)
        .and_then(|_| std::fs::read_to_string(key).ok())
        .ok_or_else(|| {
            exit::usage(format!(
                "the public key {} cannot be read; pass --key PATH of a PEM public key",
                key.display()
            ))
        })?;
    if openssl::curve_of(ctx, &pem)?.as_deref() != Some("prime256v1") {
        return Err(exit::usage(format!(
            "{} is not a PEM EC P-256 public key (cosign's keys are)",
            key.display()
        )));
    }
    openssl::fingerprint(ctx, &pem)
}

/// What a deployer wants to know, from the signed provenance and SBOM.
fn print_verified(repository: &str, digest: &str, fingerprint: &str, v: &Verified) {
    let prov = &v.predicates[cosign::SLSA_PROVENANCE_V1];
    let ext = &prov["buildDefinition"]["externalParameters"];
    println!("verified {repository}@{digest}");
    println!("  signed by      {fingerprint}");
    println!("  version        {}", ext["version"].as_str().unwrap_or("?"));
    println!("  commit         {}", ext["commit"].as_str().unwrap_or("?"));
    let tools: Vec<String> = prov["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| {
            d["name"]
                .as_str()
                .filter(|n| n.contains('@'))
                .map(|n| n.replace('@', " "))
        })
        .collect();
    println!("  tools          {}", tools.join(", "));
    if let Some(base) = provenance::dependency(prov, "base-image") {
        let d = base["digest"]["sha256"]
            .as_str()
            .map(|h| format!("sha256:{h}"))
            .unwrap_or_else(|| "(no digest recorded)".into());
        println!(
            "  base image     {} {d}",
            base["uri"].as_str().unwrap_or("?").trim_start_matches("docker://")
        );
    }
    println!(
        "  built by       {}",
        prov["runDetails"]["builder"]["id"].as_str().unwrap_or("?")
    );
    let sbom = &v.predicates[cosign::CYCLONEDX];
    println!(
        "  SBOM           {} components (CycloneDX {})",
        sbom["components"].as_array().map_or(0, Vec::len),
        sbom["specVersion"].as_str().unwrap_or("?")
    );
    println!(
        "  signature      {} ({})",
        cosign::tag_for(digest, "sig"),
        v.signature_digest
    );
    println!(
        "  attestations   {} ({})",
        cosign::tag_for(digest, "att"),
        v.attestation_digest
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let regs = vec!["127.0.0.1:5000/team".to_string(), "ghcr.io/org".to_string()];
        let w = wanted(None, "pp", &regs).unwrap();
        assert_eq!(
            w.iter()
                .map(|w| format!("{}{}", w.repository, w.reference))
                .collect::<Vec<_>>(),
            ["127.0.0.1:5000/team/pp:latest", "ghcr.io/org/pp:latest"]
        );
        let w = wanted(Some("v1.2.3"), "pp", &regs).unwrap();
        assert_eq!(w[1].reference, ":v1.2.3");
        let d = "sha256:97fc222cee7991b5b061d4d4afdb5f3428fcb0c9054e1690313786befa1e4e36";
        let w = wanted(Some(&format!("127.0.0.1:5000/x/pp@{d}")), "pp", &[]).unwrap();
        assert_eq!(
            (w[0].repository.as_str(), w[0].reference.as_str()),
            ("127.0.0.1:5000/x/pp", format!("@{d}").as_str())
        );
        let w = wanted(Some("ghcr.io/org/pp:v1"), "pp", &[]).unwrap();
        assert_eq!((w[0].target.host.as_str(), w[0].reference.as_str()), ("ghcr.io", ":v1"));
        for bad in [
            "-x",
            "ghcr.io/org/pp@sha256:zz",
            "org/pp:v1",
            "ghcr.io/Org/pp",
            "a b",
            "ghcr.io/org/pp:-x",
        ] {
            let e = wanted(Some(bad), "pp", &regs).unwrap_err();
            assert_eq!(exit::code_of(&e), 2, "{bad}");
        }
        assert_eq!(exit::code_of(&wanted(Some("latest"), "pp", &[]).unwrap_err()), 2);
    }
}
