//! OCI image layout folders (`oci-layout`, `index.json`, `blobs/sha256/…`): how signature
//! and attestation manifests travel to and from a registry with `skopeo copy`, byte for
//! byte (`--preserve-digests`).

use super::cosign::{self, Layer};
use crate::ctx::Ctx;
use crate::tools::system;
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// The name a manifest has inside a layout (`oci:DIR:NAME`).
pub const REF: &str = "artifact";

/// Writes `bytes` as a blob; its `sha256:<hex>` digest.
fn put_blob(ctx: &Ctx, dir: &Path, bytes: &[u8]) -> Result<String> {
    let hex = system::sha256_of(ctx, bytes)?;
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs)?;
    std::fs::write(blobs.join(&hex), bytes).with_context(|| format!("cannot write a blob in {}", dir.display()))?;
    Ok(format!("sha256:{hex}"))
}

/// A layout in `dir` holding one manifest of `layers`; the manifest's digest (what the
/// registry will report for it).
pub fn write(ctx: &Ctx, dir: &Path, layers: &[Layer]) -> Result<String> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}")?;
    let mut described = Vec::new();
    for l in layers {
        described.push((l, put_blob(ctx, dir, &l.bytes)?));
    }
    let digests: Vec<String> = described.iter().map(|(_, d)| d.clone()).collect();
    let config = cosign::config(&digests);
    let config_digest = put_blob(ctx, dir, &config)?;
    let manifest = cosign::manifest((&config_digest, config.len()), &described);
    let manifest_digest = put_blob(ctx, dir, &manifest)?;
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": cosign::OCI_MANIFEST,
            "digest": manifest_digest,
            "size": manifest.len(),
            "annotations": { "org.opencontainers.image.ref.name": REF },
        }],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index)?)?;
    Ok(manifest_digest)
}

/// A layout read back: its manifest's digest and its layers with their blobs.
pub struct Read {
    pub digest: String,
    /// `(media type, annotations, blob bytes)`.
    pub layers: Vec<(String, Value, Vec<u8>)>,
}

/// Reads the one manifest of a layout `skopeo copy` wrote to `dir`.
pub fn read(dir: &Path) -> Result<Read> {
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json"))?).context("index.json is not JSON")?;
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .context("index.json names no manifest")?
        .to_string();
    let manifest = std::fs::read(blob_path(dir, &digest)?)?;
    let mut layers = Vec::new();
    for (media_type, layer_digest, annotations) in cosign::manifest_layers(&manifest).map_err(anyhow::Error::msg)? {
        // A blob larger than any signature or SBOM we write is not read into memory.
        let path = blob_path(dir, &layer_digest)?;
        if std::fs::metadata(&path)?.len() > 64 * 1024 * 1024 {
            anyhow::bail!("{layer_digest} is over 64 MiB: not a signature or attestation");
        }
        layers.push((media_type, annotations, std::fs::read(&path)?));
    }
    Ok(Read { digest, layers })
}

fn blob_path(dir: &Path, digest: &str) -> Result<PathBuf> {
    let hex = digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .context("a blob digest is not sha256:<hex>")?;
    Ok(dir.join("blobs/sha256").join(hex))
}

/// `oci:DIR:artifact`, the skopeo reference of a layout.
pub fn reference(dir: &Path) -> String {
    format!("oci:{}:{REF}", dir.display())
}
