//! The command line, declared once: xflags generates the typed structs below (run
//! `UPDATE_XFLAGS=1 cargo build -p xtask` after editing the grammar). `main` turns them
//! into each task's options; nothing below `main` sees a flag name.
#![allow(clippy::all)]

use std::path::PathBuf;

xflags::xflags! {
    src "./src/flags.rs"

    /// Version, build, test, scan and publish the policy-platform image.
    cmd xtask {
        /// Rewrite VERSION: major|minor|patch|release|rc|beta|alpha|auto|X.Y.Z
        cmd bump-version {
            /// major, minor, patch, release, rc, beta, alpha, auto, or an explicit X.Y.Z / vX.Y.Z
            required level: String
            /// Print the new version; write nothing.
            optional --dry-run
        }

        /// Upgrade one tool: download its release, check its sha256 against the vendor's
        /// published checksum (or --sha256), then rewrite that tool's T_VERSION and T_SHA256
        /// in the Dockerfile. A tool upgrade makes a major release.
        /// Exit: 1 the sha256 does not match; 2 unknown tool, malformed version, a version not
        /// newer than the pin, no published checksum and no --sha256; 3 the download failed.
        /// The Dockerfile changes only on success.
        cmd bump-tool {
            /// kyverno, helm or pluto
            required tool: String
            /// The release to pin, X.Y.Z (a leading v is dropped); must be newer than the pin.
            required version: String
            /// The tarball's sha256 as the vendor publishes it (64 hex); required when no
            /// published checksum file can be fetched; checked as well when one can.
            optional --sha256 hex: String
            /// Download from this mirror (same file names as upstream; checksum files too).
            optional --tools-mirror url: String
            /// Download and check (a read), print the plan; write nothing.
            optional --dry-run
        }

        /// Report whether the Dockerfile's BASE_IMAGE pin lags base-image-track (Cargo.toml), and
        /// print the pinned line to commit when it does. Changes nothing. The track is read with
        /// the publish credentials (REGISTRY_*, else your Docker login) when it lives in a
        /// configured registry, anonymously otherwise.
        cmd bump-base {}

        /// Build the image from the Dockerfile and tag it locally (vX.Y.Z, sha-<commit>, latest).
        cmd image {
            /// Passed to docker build (repeatable), e.g. BASE_IMAGE=alpine:3.22.
            repeated --build-arg kv: String
            /// Always pull a newer base image.
            optional --pull
            /// Build without the layer cache.
            optional --no-cache
            /// Network mode for RUN steps of docker build (e.g. host).
            optional --network mode: String
            /// Download every tool from this mirror (same file names, same checksums).
            optional --tools-mirror url: String
            /// Print the plan and every command; run and change nothing.
            optional --dry-run
        }

        /// Check the tools and the policies inside the image (one container run).
        cmd smoke {
            /// Image to check (default: the local <image>:v<VERSION>).
            optional --image reference: String
            /// Print the commands; run nothing.
            optional --dry-run
        }

        /// Render every chart and check it against the policies, inside the image (one container run).
        cmd integration {
            /// Image to check (default: the local <image>:v<VERSION>).
            optional --image reference: String
            /// Print the commands; run nothing.
            optional --dry-run
        }

        /// Trivy gate on the image: vulnerabilities and secrets, with expiring waivers.
        /// Exit 1: a finding at gate severity or an expired waiver; 3: Trivy missing, wrong
        /// version, crashed or without its DB. An allow list of TRIVY_* variables reaches
        /// Trivy (cache dir, DB repository, offline flags like TRIVY_SKIP_DB_UPDATE=true).
        cmd scan {
            /// Image to check (default: the local <image>:v<VERSION>).
            optional --image reference: String
            /// Severities that fail the gate, comma separated (default CRITICAL).
            optional --severity list: String
            /// Do not gate on vulnerabilities that have no fixed version (they stay in the report).
            optional --ignore-unfixed
            /// Print the commands; run nothing.
            optional --dry-run
        }

        /// Preflight, build, test, scan, then push every tag, verify the digests and write the
        /// release record.
        ///
        /// Credentials: REGISTRY_USERNAME and REGISTRY_PASSWORD, or REGISTRY_PASSWORD_FILE (a key
        /// file such as Google's _json_key); they reach `docker login --password-stdin` only.
        /// Registries: --registry, else `registries` in Cargo.toml. Writes
        /// target/xtask/release.json and prints <registry>/<image>@sha256:...
        /// Exit: 1 a gate failed, 2 bad input (dirty tree, version already published, public
        /// registry...), 3 environment (tool missing, login refused, push failed after
        /// retries). Nothing is pushed unless every check passed; rerunning a failed publish
        /// completes it.
        cmd publish {
            /// Registry to publish to, HOST[:PORT][/PATH] (repeatable; overrides the configured ones).
            repeated --registry host: String
            /// Allow a public registry (Docker Hub).
            optional --allow-public
            /// Weekly rebuild: refresh the base, push latest and a dated tag only if the digest changed.
            optional --rebuild
            /// Point latest at this published version's digest (vX.Y.Z), without rebuilding.
            optional --rollback version: String
            /// Publish to a throwaway registry on 127.0.0.1 that is started and stopped here.
            optional --local
            /// Passed to docker build (repeatable), e.g. BASE_IMAGE=alpine:3.22.
            repeated --build-arg kv: String
            /// Always pull a newer base image.
            optional --pull
            /// Build without the layer cache.
            optional --no-cache
            /// Network mode for RUN steps of docker build (e.g. host).
            optional --network mode: String
            /// Download every tool from this mirror (same file names, same checksums).
            optional --tools-mirror url: String
            /// Severities that fail the scan gate, comma separated (default CRITICAL).
            optional --severity list: String
            /// Print the plan and every command; push and change nothing (registry reads still run).
            optional --dry-run
        }

        /// Which tools are present, their versions, and whether the Docker daemon answers.
        cmd doctor {}

        /// Check a published image's cosign signature and its SLSA provenance and CycloneDX
        /// SBOM attestations against the committed public key; print what they say.
        /// Credentials as for publish (REGISTRY_*, else your own Docker login).
        /// Exit 1: a signature or attestation is missing, invalid, or names another image;
        /// 2: bad input; 3: a registry cannot be read.
        cmd verify {
            /// A tag or version in each configured registry (default: latest), or a full
            /// reference HOST[:PORT]/PATH/NAME:TAG or …@sha256:DIGEST.
            optional reference: String
            /// The PEM public key to verify with (default: `signing-public-key` of Cargo.toml).
            optional --key path: PathBuf
        }
    }
}
// generated start
// The following code is generated by `xflags` macro.
// Run `env UPDATE_XFLAGS=1 cargo build` to regenerate.
#[derive(Debug)]
pub struct Xtask {
    pub subcommand: XtaskCmd,
}

#[derive(Debug)]
pub enum XtaskCmd {
    BumpVersion(BumpVersion),
    BumpTool(BumpTool),
    BumpBase(BumpBase),
    Image(Image),
    Smoke(Smoke),
    Integration(Integration),
    Scan(Scan),
    Publish(Publish),
    Doctor(Doctor),
    Verify(Verify),
}

#[derive(Debug)]
pub struct BumpVersion {
    pub level: String,

    pub dry_run: bool,
}

#[derive(Debug)]
pub struct BumpTool {
    pub tool: String,
    pub version: String,

    pub sha256: Option<String>,
    pub tools_mirror: Option<String>,
    pub dry_run: bool,
}

#[derive(Debug)]
pub struct BumpBase;

#[derive(Debug)]
pub struct Image {
    pub build_arg: Vec<String>,
    pub pull: bool,
    pub no_cache: bool,
    pub network: Option<String>,
    pub tools_mirror: Option<String>,
    pub dry_run: bool,
}

#[derive(Debug)]
pub struct Smoke {
    pub image: Option<String>,
    pub dry_run: bool,
}

#[derive(Debug)]
pub struct Integration {
    pub image: Option<String>,
    pub dry_run: bool,
}

#[derive(Debug)]
pub struct Scan {
    pub image: Option<String>,
    pub severity: Option<String>,
    pub ignore_unfixed: bool,
    pub dry_run: bool,
}

#[derive(Debug)]
pub struct Publish {
    pub registry: Vec<String>,
    pub allow_public: bool,
    pub rebuild: bool,
    pub rollback: Option<String>,
    pub local: bool,
    pub build_arg: Vec<String>,
    pub pull: bool,
    pub no_cache: bool,
    pub network: Option<String>,
    pub tools_mirror: Option<String>,
    pub severity: Option<String>,
    pub dry_run: bool,
}

#[derive(Debug)]
pub struct Doctor;

#[derive(Debug)]
pub struct Verify {
    pub reference: Option<String>,

    pub key: Option<PathBuf>,
}

impl Xtask {
    #[allow(dead_code)]
    pub fn from_env_or_exit() -> Self {
        Self::from_env_or_exit_()
    }

    #[allow(dead_code)]
    pub fn from_env() -> xflags::Result<Self> {
        Self::from_env_()
    }

    #[allow(dead_code)]
    pub fn from_vec(args: Vec<std::ffi::OsString>) -> xflags::Result<Self> {
        Self::from_vec_(args)
    }
}
// generated end
