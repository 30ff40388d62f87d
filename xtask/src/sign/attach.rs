//! Signing a pushed digest and attaching its attestations, in cosign's places: the
//! signature manifest under `sha256-<hex>.sig`, the attestations (one layer each) under
//! `sha256-<hex>.att`, in the image's own repository. Signatures come from openssl; the
//! manifests travel as OCI layouts through `skopeo copy`, byte for byte.

use super::cosign::{self, Layer};
use super::layout;
use super::signer::Signer;
use crate::ctx::Ctx;
use crate::tools::{openssl, skopeo};
use anyhow::{Context, Result};
use serde_json::Value;
use std::path::Path;

/// What one repository got: the tags and the manifest digests written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    pub repository: String,
    pub signature_tag: String,
    pub signature_digest: String,
    pub attestation_tag: String,
    pub attestation_digest: String,
}

/// Signs `payload` (written to a file in `work`) with the release key.
fn sign_bytes(ctx: &Ctx, signer: &Signer, work: &Path, name: &str, bytes: &[u8]) -> Result<Vec<u8>> {
    let f = work.join(name);
    std::fs::write(&f, bytes).with_context(|| format!("cannot write {}", f.display()))?;
    openssl::sign(ctx, &signer.key(), &f)
}

/// The signature layer of `repository@digest`.
pub fn signature_layer(ctx: &Ctx, signer: &Signer, work: &Path, repository: &str, digest: &str) -> Result<Layer> {
    let payload = cosign::payload(repository, digest);
    let sig = sign_bytes(ctx, signer, work, "payload.json", &payload)?;
    Ok(Layer::signature(payload, &sig))
}

/// One attestation layer: the statement about `repository@digest`, in a signed envelope.
pub fn attestation_layer(
    ctx: &Ctx,
    signer: &Signer,
    work: &Path,
    repository: &str,
    digest: &str,
    predicate_type: &str,
    predicate: Value,
) -> Result<Layer> {
    let body = serde_json::to_vec(&cosign::statement(repository, digest, predicate_type, predicate))?;
    let name = format!("pae-{}", predicate_type.rsplit('/').next().unwrap_or("x"));
    let sig = sign_bytes(ctx, signer, work, &name, &cosign::pae(cosign::IN_TOTO, &body))?;
    Ok(Layer::attestation(cosign::envelope(&body, &sig), predicate_type))
}

/// Writes the layers as one manifest under `tag` in `repository`; its digest. In a dry
/// run the copy is only shown.
pub fn push(
    ctx: &Ctx,
    access: &skopeo::Access,
    work: &Path,
    repository: &str,
    tag: &str,
    layers: &[Layer],
) -> Result<String> {
    let dir = work.join(tag);
    let digest = layout::write(ctx, &dir, layers)?;
    let what = format!("pushing {tag} to {repository}");
    skopeo::copy(
        ctx,
        access,
        true,
        &what,
        &layout::reference(&dir),
        &format!("docker://{repository}:{tag}"),
    )?;
    Ok(digest)
}

/// Signs and attests `repository@digest`: `.sig` with one signature, `.att` with one
/// layer per `(predicate type, predicate)`.
pub fn attach(
    ctx: &Ctx,
    access: &skopeo::Access,
    work: &Path,
    signer: &Signer,
    repository: &str,
    digest: &str,
    predicates: &[(&str, Value)],
) -> Result<Attached> {
    let sig = signature_layer(ctx, signer, work, repository, digest)?;
    let mut atts = Vec::new();
    for (ty, p) in predicates {
        atts.push(attestation_layer(ctx, signer, work, repository, digest, ty, p.clone())?);
    }
    let signature_tag = cosign::tag_for(digest, "sig");
    let attestation_tag = cosign::tag_for(digest, "att");
    let signature_digest = push(ctx, access, work, repository, &signature_tag, &[sig])?;
    let attestation_digest = push(ctx, access, work, repository, &attestation_tag, &atts)?;
    Ok(Attached {
        repository: repository.to_string(),
        signature_tag,
        signature_digest,
        attestation_tag,
        attestation_digest,
    })
}
