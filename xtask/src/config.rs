//! `[workspace.metadata.policy-platform]` in the root Cargo.toml, read through
//! `cargo metadata` (no TOML parser to compile).

use crate::reference::ImageRef;
use crate::{ctx::Ctx, exit};
use anyhow::Result;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub image: String,
    pub description: String,
    pub source: String,
    pub registries: Vec<String>,
    pub trivy_version: String,
    pub trivy_db_repository: Vec<String>,
    /// The scan's fallback when `trivy` is not on PATH: `<trivy-image>:<trivy-version>`.
    pub trivy_image: String,
    /// sha256 of the `trivy` binary the scan accepts (empty: only the version is checked).
    pub trivy_sha256: String,
    pub kubernetes_version: String,
    pub size_budget_mb: u64,
    pub sha_length: usize,
    /// The committed public key releases are signed for (a path in the repo); `None`:
    /// releases are unsigned.
    pub signing_public_key: Option<String>,
    /// The floating tag the weekly rebuild follows (`alpine:3.22`); `None`: it rebuilds on
    /// whatever BASE_IMAGE the build is given.
    pub base_image_track: Option<String>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            image: "policy-platform".into(),
            description: String::new(),
            source: String::new(),
            registries: Vec::new(),
            trivy_version: "0.59.1".into(),
            trivy_db_repository: Vec::new(),
            trivy_image: "aquasec/trivy".into(),
            trivy_sha256: String::new(),
            kubernetes_version: "v1.37.0".into(),
            size_budget_mb: 400,
            sha_length: 7,
            signing_public_key: None,
            base_image_track: None,
        }
    }
}

const KEYS: &[&str] = &[
    "image",
    "description",
    "source",
    "registries",
    "trivy-version",
    "trivy-db-repository",
    "trivy-image",
    "trivy-sha256",
    "kubernetes-version",
    "size-budget-mb",
    "sha-length",
    "signing-public-key",
    "base-image-track",
];

impl Config {
    pub fn load(ctx: &Ctx) -> Result<Config> {
        let meta = crate::tools::system::cargo_metadata(ctx, &ctx.path("Cargo.toml"))?;
        Config::from_metadata(&meta)
    }

    /// Pure: the config from `cargo metadata` JSON.
    pub fn from_metadata(meta: &Value) -> Result<Config> {
        let mut c = Config::default();
        let table = &meta["metadata"]["policy-platform"];
        let Some(table) = table.as_object() else {
            return Ok(c);
        };
        for (key, v) in table {
            let bad = |want: &str| {
                exit::usage(format!(
                    "Cargo.toml [workspace.metadata.policy-platform] `{key}`: expected {want}, found {v}"
                ))
            };
            match key.as_str() {
                "image" => {
                    c.image = v.as_str().ok_or_else(|| bad("a string"))?.to_string();
                    if !valid_image_name(&c.image) {
                        return Err(bad("a lowercase image name like `policy-platform`"));
                    }
                }
                "description" => c.description = v.as_str().ok_or_else(|| bad("a string"))?.to_string(),
                "source" => c.source = v.as_str().ok_or_else(|| bad("a string"))?.to_string(),
                "registries" => c.registries = string_list(v).ok_or_else(|| bad("a list of HOST[/PATH]"))?,
                "trivy-db-repository" => {
                    c.trivy_db_repository = string_list(v).ok_or_else(|| bad("a list of OCI references"))?
                }
                "trivy-image" => {
                    c.trivy_image = v
                        .as_str()
                        .filter(|s| valid_image_name(s))
                        .ok_or_else(|| bad("an image name without tag, like \"aquasec/trivy\""))?
                        .to_string()
                }
                "trivy-sha256" => {
                    let ok =
                        |s: &&str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
                    c.trivy_sha256 = v
                        .as_str()
                        .filter(ok)
                        .ok_or_else(|| bad("64 lowercase hex digits"))?
                        .to_string()
                }
                "trivy-version" => {
                    c.trivy_version = v
                        .as_str()
                        .filter(|s| is_plain_version(s))
                        .ok_or_else(|| bad("a version like \"0.59.1\""))?
                        .to_string()
                }
                "kubernetes-version" => {
                    let s = v.as_str().filter(|s| s.starts_with('v') && is_plain_version(&s[1..]));
                    c.kubernetes_version = s
                        .ok_or_else(|| bad("a version with a leading v, like \"v1.31.0\""))?
                        .to_string()
                }
                "size-budget-mb" => {
                    c.size_budget_mb = v.as_u64().filter(|n| *n > 0).ok_or_else(|| bad("a positive integer"))?
                }
                "sha-length" => {
                    c.sha_length = v
                        .as_u64()
                        .filter(|n| (4..=40).contains(n))
                        .ok_or_else(|| bad("an integer from 4 to 40"))? as usize
                }
                "signing-public-key" => {
                    let p = v
                        .as_str()
                        .filter(|s| is_repo_path(s))
                        .ok_or_else(|| bad("a relative path inside the repo, like \"cosign.pub\""))?;
                    c.signing_public_key = Some(p.to_string());
                }
                "base-image-track" => {
                    let s = v.as_str().ok_or_else(|| bad("a floating tag like \"alpine:3.22\""))?;
                    c.base_image_track = Some(
                        track(s)
                            .map_err(|why| bad(&format!("a floating tag like \"alpine:3.22\" ({why})")))?
                            .to_string(),
                    );
                }
                _ => {
                    return Err(exit::usage(format!(
                        "Cargo.toml [workspace.metadata.policy-platform]: unknown key `{key}`; known keys: {}",
                        KEYS.join(", ")
                    )))
                }
            }
        }
        Ok(c)
    }
}

/// A base line to follow: an image reference with a tag and no digest.
pub fn track(s: &str) -> Result<ImageRef, String> {
    let r = ImageRef::parse(s)?;
    if r.digest.is_some() {
        return Err(format!(
            "`{s}` is pinned by digest: name the tag to follow, without @sha256:…"
        ));
    }
    if r.tag.is_none() {
        return Err(format!(
            "`{s}` has no tag: name the tag to follow, e.g. `{}:3.22`",
            r.name
        ));
    }
    Ok(r)
}

fn string_list(v: &Value) -> Option<Vec<String>> {
    v.as_array()?
        .iter()
        .map(|x| x.as_str().filter(|s| !s.is_empty()).map(String::from))
        .collect()
}

/// A plain relative path that stays inside the repo (no `..`, not absolute).
fn is_repo_path(s: &str) -> bool {
    !s.is_empty() && !s.starts_with('/') && s.split('/').all(|c| !c.is_empty() && c != ".." && c != ".")
}

fn is_plain_version(s: &str) -> bool {
    semver::Version::parse(s).is_ok()
}

/// Docker's repository name rules: lowercase alphanumerics separated by `.`, `_`, `__`, `-`, `/`.
pub fn valid_image_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.split('/').all(|part| {
            !part.is_empty()
                && part.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && part.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta(table: Value) -> Value {
        json!({ "packages": [], "metadata": { "policy-platform": table } })
    }

    #[test]
    fn reads_every_key() {
        let c = Config::from_metadata(&meta(json!({
            "image": "pp", "registries": ["ghcr.io/org", "127.0.0.1:5000"], "trivy-version": "0.60.0",
            "kubernetes-version": "v1.30.2", "size-budget-mb": 50, "sha-length": 12,
            "trivy-db-repository": ["mirror.example/trivy-db:2"]
        })))
        .unwrap();
        assert_eq!(c.image, "pp");
        assert_eq!(c.registries, vec!["ghcr.io/org", "127.0.0.1:5000"]);
        assert_eq!(c.trivy_version, "0.60.0");
        assert_eq!(c.kubernetes_version, "v1.30.2");
        assert_eq!(c.size_budget_mb, 50);
        assert_eq!(c.sha_length, 12);
        assert_eq!(c.trivy_db_repository, vec!["mirror.example/trivy-db:2"]);
    }

    #[test]
    fn defaults_without_a_table() {
        let c = Config::from_metadata(&json!({ "metadata": null })).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.image, "policy-platform");
        assert_eq!(c.sha_length, 7);
    }

    #[test]
    fn bad_values_name_the_key() {
        for (table, key) in [
            (json!({ "image": "" }), "`image`"),
            (json!({ "image": "Policy Platform" }), "`image`"),
            (json!({ "image": 3 }), "`image`"),
            (json!({ "registries": "ghcr.io" }), "`registries`"),
            (json!({ "size-budget-mb": "big" }), "`size-budget-mb`"),
            (json!({ "sha-length": 2 }), "`sha-length`"),
            (json!({ "kubernetes-version": "1.30" }), "`kubernetes-version`"),
            (json!({ "colour": "blue" }), "`colour`"),
        ] {
            let e = Config::from_metadata(&meta(table)).unwrap_err();
            assert_eq!(crate::exit::code_of(&e), 2);
            assert!(e.to_string().contains(key), "{e}");
        }
    }

    #[test]
    fn trivy_image_is_a_name_without_tag() {
        assert_eq!(Config::default().trivy_image, "aquasec/trivy");
        let c = Config::from_metadata(&meta(json!({ "trivy-image": "mirror.example/aquasec/trivy" }))).unwrap();
        assert_eq!(c.trivy_image, "mirror.example/aquasec/trivy");
        let e = Config::from_metadata(&meta(json!({ "trivy-image": "aquasec/trivy:0.59.1" }))).unwrap_err();
        assert!(e.to_string().contains("`trivy-image`"), "{e}");
        let sum = "45925bac2d4d1574d059b078e80d362ad9713487293b1f8c12ddc2859b75d4a2";
        assert_eq!(
            Config::from_metadata(&meta(json!({ "trivy-sha256": sum })))
                .unwrap()
                .trivy_sha256,
            sum
        );
        let e = Config::from_metadata(&meta(json!({ "trivy-sha256": "abc" }))).unwrap_err();
        assert!(e.to_string().contains("`trivy-sha256`"), "{e}");
    }

    #[test]
    fn base_image_track_is_a_tag_without_digest() {
        let c = Config::from_metadata(&meta(json!({ "base-image-track": "alpine:3.22" }))).unwrap();
        assert_eq!(c.base_image_track.as_deref(), Some("alpine:3.22"));
        let c = Config::from_metadata(&meta(json!({ "base-image-track": "127.0.0.1:5000/team/base:track" }))).unwrap();
        assert_eq!(c.base_image_track.as_deref(), Some("127.0.0.1:5000/team/base:track"));
        let d = "sha256:4b7ce07002c69e8f3d704a9c5d6fd3053be500b7f1c69fc0d80990c2ad8dd412";
        for (bad, why) in [
            (json!("alpine"), "has no tag"),
            (json!(format!("alpine:3.22@{d}")), "pinned by digest"),
            (json!("Alpine:3.22"), "no valid image name"),
            (json!("alpine:3.22@sha256:x"), "not a sha256"),
            (json!(3), "a floating tag"),
        ] {
            let e = Config::from_metadata(&meta(json!({ "base-image-track": bad }))).unwrap_err();
            assert_eq!(crate::exit::code_of(&e), 2);
            let msg = e.to_string();
            assert!(msg.contains("`base-image-track`") && msg.contains(why), "{msg}");
        }
    }

    #[test]
    fn image_names() {
        assert!(valid_image_name("policy-platform"));
        assert!(valid_image_name("org/policy_platform.v2"));
        assert!(!valid_image_name("Policy"));
        assert!(!valid_image_name("-x"));
        assert!(!valid_image_name("a//b"));
    }
}
