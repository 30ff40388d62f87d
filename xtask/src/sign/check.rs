//! Verifying what `attach` wrote, as cosign would: every signature of `.sig` and every
//! attestation of `.att` of an image digest, against a public key, with the payloads and
//! subjects naming that digest and repository. Used by `verify` and by `publish
//! --rollback` (which moves `latest` only to a signed release).

use super::cosign;
use super::layout;
use crate::ctx::Ctx;
use crate::exit;
use crate::tools::{openssl, skopeo};
use anyhow::Result;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// What a valid signature and attestation set says.
#[derive(Debug, Clone)]
pub struct Verified {
    pub signature_digest: String,
    pub attestation_digest: String,
    /// Predicate type → predicate, for each attestation that verified.
    pub predicates: BTreeMap<String, Value>,
}

/// Fetches `repository:tag` into the layout folder `dir`; `None` when the tag does not exist.
fn fetch(ctx: &Ctx, access: &skopeo::Access, dir: &Path, repository: &str, tag: &str) -> Result<Option<layout::Read>> {
    let reference = format!("{repository}:{tag}");
    match skopeo::download(ctx, access, &reference, &layout::reference(dir))? {
        Some(()) => Ok(Some(layout::read(dir)?)),
        None => Ok(None),
    }
}

fn verifies(ctx: &Ctx, public: &Path, work: &Path, name: &str, signed: &[u8], sig: &[u8]) -> Result<bool> {
    let data = work.join(format!("{name}.data"));
    let sigf = work.join(format!("{name}.sig"));
    std::fs::write(&data, signed)?;
    std::fs::write(&sigf, sig)?;
    openssl::verify(ctx, public, &sigf, &data)
}

/// Checks `.sig` and `.att` of `repository@digest` with the public key file. Exit 1 when
/// a signature or a required attestation is missing, does not verify, or names another
/// image; exit 3 when the registry cannot be read.
pub fn verify(
    ctx: &Ctx,
    access: &skopeo::Access,
    work: &Path,
    public: &Path,
    repository: &str,
    digest: &str,
    required: &[&str],
) -> Result<Verified> {
    std::fs::create_dir_all(work)?;
    let sig_tag = cosign::tag_for(digest, "sig");
    let Some(sig) = fetch(ctx, access, &work.join("sig"), repository, &sig_tag)? else {
        return Err(exit::gate(format!(
            "{repository}@{digest} has no signature ({sig_tag} does not exist): it was not published signed"
        )));
    };
    let mut problems = Vec::new();
    let mut good = 0;
    for (i, (media, ann, payload)) in sig.layers.iter().enumerate() {
        if media != cosign::SIMPLESIGNING {
            continue;
        }
        let Some(s) = ann[cosign::SIGNATURE_ANNOTATION]
            .as_str()
            .and_then(super::base64::decode)
        else {
            problems.push("a signature layer has no base64 signature annotation".to_string());
            continue;
        };
        if !verifies(ctx, public, work, &format!("sig{i}"), payload, &s)? {
            problems.push("a signature does not verify with the public key".to_string());
            continue;
        }
        match cosign::read_payload(payload) {
            Ok((repo, d)) if d == digest && repo == repository => good += 1,
            Ok((repo, d)) => problems.push(format!("a valid signature is for {repo}@{d}, not this image")),
            Err(e) => problems.push(e),
        }
    }
    if good == 0 {
        let why = if problems.is_empty() {
            "it holds no cosign signature".to_string()
        } else {
            problems.join("; ")
        };
        return Err(exit::gate(format!(
            "{repository}@{digest}: no valid signature in {sig_tag} ({why})"
        )));
    }

    let att_tag = cosign::tag_for(digest, "att");
    let Some(att) = fetch(ctx, access, &work.join("att"), repository, &att_tag)? else {
        return Err(exit::gate(format!(
            "{repository}@{digest} has no attestations ({att_tag} does not exist)"
        )));
    };
    let mut predicates = BTreeMap::new();
    let mut problems = Vec::new();
    // Attestations this key does not verify are someone else's (`cosign attest` appends to
    // the same tag): skipped, as cosign does; only the required ones must verify.
    let mut others = 0;
    for (i, (media, _, envelope)) in att.layers.iter().enumerate() {
        if media != cosign::DSSE {
            continue;
        }
        let Ok(opened) = cosign::open_envelope(envelope) else {
            others += 1;
            continue;
        };
        let mut ok = false;
        for (j, s) in opened.signatures.iter().enumerate() {
            ok |= verifies(ctx, public, work, &format!("att{i}-{j}"), &opened.signed, s)?;
        }
        if !ok {
            others += 1;
            continue;
        }
        match cosign::read_statement(&opened.body, repository, digest) {
            Ok((ty, p)) => {
                predicates.insert(ty, p);
            }
            Err(e) => problems.push(e),
        }
    }
    let missing: Vec<&&str> = required.iter().filter(|t| !predicates.contains_key(**t)).collect();
    if !missing.is_empty() || !problems.is_empty() {
        let mut miss: Vec<String> = missing.iter().map(|t| format!("no valid {t} attestation")).collect();
        if others > 0 && !missing.is_empty() {
            miss.push(format!(
                "{others} attestation(s) there do not verify with this public key"
            ));
        }
        return Err(exit::gate(format!(
            "{repository}@{digest}: {}",
            [miss, problems].concat().join("; ")
        )));
    }
    Ok(Verified {
        signature_digest: sig.digest,
        attestation_digest: att.digest,
        predicates,
    })
}
