//! skopeo: reads a registry without Docker (tags, digests, labels, raw manifests) and
//! points a tag at an existing manifest, registry-side. Every call times out after 2
//! minutes and is retried on transient errors.

use super::retry;
use crate::ctx::Ctx;
use crate::runner::{Cmd, Out};
use anyhow::{Context, Result};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

const TIMEOUT: &str = "2m";

/// How skopeo reaches a registry: the credentials file, and whether TLS is checked
/// (never skipped but for this machine's own loopback registries).
#[derive(Clone, Debug)]
pub struct Access {
    /// `None`: anonymous (`--no-creds`), never skopeo's own default credential files.
    pub authfile: Option<PathBuf>,
    pub tls_verify: bool,
}

impl Access {
    pub fn anonymous(tls_verify: bool) -> Access {
        Access {
            authfile: None,
            tls_verify,
        }
    }
}

fn cmd(a: &Access, sub: &str) -> Cmd {
    let c = Cmd::new("skopeo").args(["--command-timeout", TIMEOUT, sub]);
    match (&a.authfile, sub) {
        (Some(f), _) => c.arg("--authfile").arg(f),
        (None, "copy") => c.args(["--src-no-creds", "--dest-no-creds"]),
        (None, _) => c.arg("--no-creds"),
    }
}

fn tls(c: Cmd, a: &Access, flags: &[&str]) -> Cmd {
    if a.tls_verify {
        return c;
    }
    c.args(flags.iter().map(|f| format!("{f}=false")))
}

/// What a tag holds: the manifest digest and the image's labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspected {
    pub digest: String,
    pub labels: BTreeMap<String, String>,
}

/// `skopeo inspect docker://REF`; `None` when the tag (or repository) does not exist.
pub fn inspect(ctx: &Ctx, a: &Access, reference: &str) -> Result<Option<Inspected>> {
    let c = tls(cmd(a, "inspect"), a, &["--tls-verify"])
        .args(["--no-tags", "--"])
        .arg(format!("docker://{reference}"));
    let Some(out) = retry::query(ctx, &format!("reading {reference}"), &c)? else {
        return Ok(None);
    };
    let v: Value =
        serde_json::from_slice(&out.stdout).with_context(|| format!("skopeo printed no JSON for {reference}"))?;
    let digest = v["Digest"]
        .as_str()
        .filter(|d| is_digest(d))
        .context("skopeo printed no digest")?;
    Ok(Some(Inspected {
        digest: digest.to_string(),
        labels: super::string_map(&v["Labels"]),
    }))
}

/// `skopeo inspect --raw docker://REF`: the manifest's exact bytes, `None` when it does
/// not exist.
fn raw(ctx: &Ctx, a: &Access, reference: &str) -> Result<Option<Out>> {
    let c = tls(cmd(a, "inspect"), a, &["--tls-verify"])
        .args(["--raw", "--"])
        .arg(format!("docker://{reference}"));
    retry::query(ctx, &format!("reading {reference}"), &c)
}

/// The raw manifest behind a reference, `None` when it does not exist.
pub fn raw_manifest(ctx: &Ctx, a: &Access, reference: &str) -> Result<Option<String>> {
    Ok(raw(ctx, a, reference)?.map(|o| o.text()))
}

/// The digest of the manifest a reference points at now (a tag's manifest list, for a
/// multi-platform image): the sha256 of its exact bytes. `None` when it does not exist.
pub fn digest_of(ctx: &Ctx, a: &Access, reference: &str) -> Result<Option<String>> {
    let Some(out) = raw(ctx, a, reference)? else {
        return Ok(None);
    };
    Ok(Some(format!("sha256:{}", super::system::sha256_of(ctx, &out.stdout)?)))
}

/// Every tag of a repository (empty when it does not exist yet).
pub fn list_tags(ctx: &Ctx, a: &Access, repo: &str) -> Result<Vec<String>> {
    let c = tls(cmd(a, "list-tags"), a, &["--tls-verify"])
        .arg("--")
        .arg(format!("docker://{repo}"));
    let Some(out) = retry::query(ctx, &format!("listing the tags of {repo}"), &c)? else {
        return Ok(Vec::new());
    };
    let v: Value = serde_json::from_slice(&out.stdout).context("skopeo list-tags printed no JSON")?;
    Ok(v["Tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(String::from))
        .collect())
}

/// `skopeo copy --preserve-digests SRC DST` (`docker://…` or `oci:…` references): the
/// manifest arrives byte for byte. `src_tls_verify` is for a `docker://` source in
/// another registry. Skipped in a dry run.
pub fn copy(ctx: &Ctx, a: &Access, src_tls_verify: bool, what: &str, src: &str, dst: &str) -> Result<()> {
    let mut c = cmd(a, "copy");
    if !src_tls_verify {
        c = c.arg("--src-tls-verify=false");
    }
    let c = tls(c, a, &["--dest-tls-verify"]).args(["--preserve-digests", "--", src, dst]);
    retry::change(ctx, what, &c)?;
    Ok(())
}

/// `skopeo copy docker://REF oci:DIR:NAME`: a manifest and its blobs into a local layout
/// folder of ours. A read (it runs in a dry run too); `None` when REF does not exist.
pub fn download(ctx: &Ctx, a: &Access, reference: &str, layout: &str) -> Result<Option<()>> {
    let mut c = cmd(a, "copy");
    if !a.tls_verify {
        c = c.arg("--src-tls-verify=false");
    }
    let c = c
        .args(["--preserve-digests", "--"])
        .arg(format!("docker://{reference}"))
        .arg(layout);
    Ok(retry::query(ctx, &format!("reading {reference}"), &c)?.map(|_| ()))
}

pub fn is_digest(s: &str) -> bool {
    s.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)))
}

/// The `config.digest` of a raw image manifest (what `skopeo inspect --raw` prints).
pub fn manifest_config(raw: &str) -> Option<String> {
    let v: Value = serde_json::from_str(raw).ok()?;
    v["config"]["digest"]
        .as_str()
        .filter(|d| is_digest(d))
        .map(String::from)
}

/// The layers (`digest`, compressed size) and the config size of a raw image manifest.
pub fn manifest_layers(raw: &str) -> Option<(Vec<(String, u64)>, u64)> {
    let v: Value = serde_json::from_str(raw).ok()?;
    let layers = v["layers"]
        .as_array()?
        .iter()
        .map(|l| Some((l["digest"].as_str()?.to_string(), l["size"].as_u64()?)))
        .collect::<Option<Vec<_>>>()?;
    Some((layers, v["config"]["size"].as_u64()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_of_a_manifest() {
        let raw = r#"{"schemaVersion":2,"config":{"size":1469,"digest":"sha256:c"},"layers":[{"size":7000,"digest":"sha256:a"},{"size":120,"digest":"sha256:b"}]}"#;
        assert_eq!(
            manifest_layers(raw),
            Some((vec![("sha256:a".into(), 7000), ("sha256:b".into(), 120)], 1469))
        );
        assert_eq!(manifest_layers(r#"{"manifests":[]}"#), None);
    }

    #[test]
    fn anonymous_reads_use_no_credentials_at_all() {
        let a = Access::anonymous(true);
        assert_eq!(
            cmd(&a, "inspect").display(),
            "skopeo --command-timeout 2m inspect --no-creds"
        );
        assert_eq!(
            cmd(&a, "copy").display(),
            "skopeo --command-timeout 2m copy --src-no-creds --dest-no-creds"
        );
    }

    #[test]
    fn manifest_config_digest() {
        let raw = r#"{"schemaVersion":2,"config":{"mediaType":"x","size":1,"digest":"sha256:30442b65e68794d03c80a587a847e5315f9bd1e39cf74cdd72b166294b406a4c"},"layers":[]}"#;
        assert_eq!(
            manifest_config(raw).unwrap(),
            "sha256:30442b65e68794d03c80a587a847e5315f9bd1e39cf74cdd72b166294b406a4c"
        );
        assert_eq!(manifest_config(r#"{"manifests":[]}"#), None);
        assert_eq!(manifest_config("not json"), None);
        assert!(!is_digest(
            "sha256:30442B65E68794D03C80A587A847E5315F9BD1E39CF74CDD72B166294B406A4C"
        ));
    }

    #[test]
    fn references_come_after_the_end_of_flags() {
        let a = Access {
            authfile: Some(PathBuf::from("/x/config.json")),
            tls_verify: false,
        };
        let c = tls(cmd(&a, "inspect"), &a, &["--tls-verify"])
            .args(["--no-tags", "--"])
            .arg("docker://h/r:t");
        assert_eq!(c.display(), "skopeo --command-timeout 2m inspect --authfile /x/config.json --tls-verify=false --no-tags -- docker://h/r:t");
    }
}
