//! What every task gets: the repo root (found at run time), the config, the facts `main`
//! read from the environment, and the runner through which every process starts.

use crate::config::Config;
use crate::runner::Runner;
use crate::tools::Found;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// The environment as `main` read it, once, before any child process started. Nothing
/// below `main` reads the process environment itself.
#[derive(Clone, Debug, Default)]
pub struct Env {
    /// `CI` set (and not "false"/"0"): output grouped, a CI summary written.
    pub ci: bool,
    /// `GITHUB_ACTIONS`: steps as `::group::`.
    pub github_actions: bool,
    /// `GITHUB_STEP_SUMMARY`: where the CI summary is appended.
    pub step_summary: Option<PathBuf>,
    /// Every `TRIVY_*` variable (the scan decides which may reach Trivy).
    pub trivy: Vec<(String, String)>,
    /// `DOCKER_HOST` (the Trivy fallback container mounts its socket).
    pub docker_host: Option<String>,
    /// Trivy's cache on the host: `TRIVY_CACHE_DIR`, `$XDG_CACHE_HOME/trivy`, `~/.cache/trivy`.
    pub trivy_cache: PathBuf,
    /// Where temp folders go (`TMPDIR`, else /tmp).
    pub tmp: PathBuf,
    /// The user's own Docker configuration folder: `DOCKER_CONFIG`, else `~/.docker`.
    pub docker_config: Option<PathBuf>,
    /// Who builds, for the provenance: the CI job (GitHub Actions, Bitbucket Pipelines,
    /// another CI) or this machine, and the CI run.
    pub builder_id: String,
    pub invocation: Option<String>,
}

impl Env {
    /// Read by `main` only.
    pub fn from_process() -> Env {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let ci = var("CI").is_some_and(|v| v != "false" && v != "0");
        let mut trivy: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(k, _)| k.starts_with("TRIVY_"))
            .collect();
        trivy.sort();
        let trivy_cache = var("TRIVY_CACHE_DIR")
            .map(PathBuf::from)
            .or_else(|| var("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("trivy")))
            .or_else(|| var("HOME").map(|d| PathBuf::from(d).join(".cache/trivy")))
            .unwrap_or_else(|| PathBuf::from("/root/.cache/trivy"));
        Env {
            ci,
            github_actions: var("GITHUB_ACTIONS").is_some(),
            step_summary: var("GITHUB_STEP_SUMMARY").map(PathBuf::from),
            trivy,
            docker_host: var("DOCKER_HOST"),
            trivy_cache,
            tmp: std::env::temp_dir(),
            docker_config: var("DOCKER_CONFIG")
                .map(PathBuf::from)
                .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".docker"))),
            builder_id: builder_id(ci, &var),
            invocation: invocation(&var),
        }
    }
}

fn builder_id(ci: bool, var: &dyn Fn(&str) -> Option<String>) -> String {
    if let (Some(server), Some(wf)) = (var("GITHUB_SERVER_URL"), var("GITHUB_WORKFLOW_REF")) {
        return format!("{server}/{wf}");
    }
    if let Some(repo) = var("BITBUCKET_REPO_FULL_NAME") {
        let step = var("BITBUCKET_STEP_UUID").unwrap_or_default();
        return format!("https://bitbucket.org/{repo}/pipelines#step={step}");
    }
    if ci {
        return "urn:policy-platform:builder:ci".to_string();
    }
    "urn:policy-platform:builder:local".to_string()
}

fn invocation(var: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    if let (Some(server), Some(repo), Some(run)) =
        (var("GITHUB_SERVER_URL"), var("GITHUB_REPOSITORY"), var("GITHUB_RUN_ID"))
    {
        let attempt = var("GITHUB_RUN_ATTEMPT").unwrap_or_else(|| "1".into());
        return Some(format!("{server}/{repo}/actions/runs/{run}/attempts/{attempt}"));
    }
    let repo = var("BITBUCKET_REPO_FULL_NAME")?;
    Some(format!(
        "https://bitbucket.org/{repo}/pipelines/results/{}",
        var("BITBUCKET_BUILD_NUMBER")?
    ))
}

#[derive(Clone)]
pub struct Ctx {
    pub root: PathBuf,
    pub env: Env,
    /// Every process starts here.
    pub run: Runner,
    config: OnceLock<Config>,
    /// Shared with the dry-run twin (an `Arc`: [`Ctx::as_dry_run`] clones the context).
    found: Arc<Found>,
}

impl Ctx {
    pub fn new(root: PathBuf, dry_run: bool, env: Env) -> Ctx {
        Ctx {
            root,
            env,
            run: Runner { dry_run },
            config: OnceLock::new(),
            found: Arc::default(),
        }
    }

    /// The same context on another checkout (publish --rebuild builds a worktree of the
    /// release); its config is read from there.
    pub fn at(&self, root: PathBuf) -> Ctx {
        Ctx::new(root, self.dry_run(), self.env.clone())
    }

    /// The same context as a dry run (publish's preflight runs the scan's own checks so).
    pub fn as_dry_run(&self) -> Ctx {
        let mut c = self.clone();
        c.run = Runner { dry_run: true };
        c
    }

    /// Whether this run only shows what it would change (its runner's setting).
    pub fn dry_run(&self) -> bool {
        self.run.dry_run
    }

    pub fn ci(&self) -> bool {
        self.env.ci
    }

    pub fn config(&self) -> Result<&Config> {
        if let Some(c) = self.config.get() {
            return Ok(c);
        }
        let c = Config::load(self)?;
        Ok(self.config.get_or_init(|| c))
    }

    /// What this run already found out about its tools.
    pub(crate) fn found(&self) -> &Found {
        &self.found
    }

    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.root.join(rel)
    }

    /// `target/xtask/<rel>`, where every report and record goes.
    pub fn out_dir(&self, rel: &str) -> Result<PathBuf> {
        let dir = self.root.join("target/xtask").join(rel);
        if !self.dry_run() {
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        Ok(dir)
    }

    /// Prints a step header; on GitHub Actions as a collapsible group.
    pub fn step(&self, name: &str) {
        if self.env.ci && self.env.github_actions {
            eprintln!("::group::{name}");
        } else {
            eprintln!("==> {name}");
        }
    }

    pub fn end_step(&self) {
        if self.env.ci && self.env.github_actions {
            eprintln!("::endgroup::");
        }
    }
}

/// The repo root, found at run time (never compiled in: two checkouts may share one
/// target dir, and then one binary serves both): `XTASK_ROOT` if set, else the parent of
/// the `CARGO_MANIFEST_DIR` that `cargo run` sets, else the nearest folder upwards from
/// `cwd` whose Cargo.toml holds `[workspace.metadata.policy-platform]`.
pub fn find_root(xtask_root: Option<PathBuf>, manifest_dir: Option<PathBuf>, cwd: &Path) -> Result<PathBuf> {
    if let Some(r) = xtask_root {
        return Ok(r);
    }
    if let Some(m) = manifest_dir {
        if let Some(root) = m.parent().filter(|r| is_root(r)) {
            return Ok(root.to_path_buf());
        }
    }
    cwd.ancestors().find(|d| is_root(d)).map(Path::to_path_buf).ok_or_else(|| {
        crate::exit::usage(format!(
            "{} is not inside a policy-platform checkout (no Cargo.toml with [workspace.metadata.policy-platform] above it); run `cargo xtask` from the repo",
            cwd.display()
        ))
    })
}

fn is_root(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("Cargo.toml"))
        .is_ok_and(|t| t.lines().any(|l| l.trim() == "[workspace.metadata.policy-platform]"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_from_where_you_stand() {
        let tmp = std::env::temp_dir().join(format!("pp-root-test-{}", std::process::id()));
        let deep = tmp.join("repo/policies/a");
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::write(
            tmp.join("repo/Cargo.toml"),
            "[workspace]\n\n[workspace.metadata.policy-platform]\nimage = \"x\"\n",
        )
        .unwrap();
        std::fs::create_dir_all(tmp.join("repo/xtask")).unwrap();
        let repo = tmp.join("repo");
        assert_eq!(find_root(None, None, &deep).unwrap(), repo);
        assert_eq!(find_root(None, Some(repo.join("xtask")), Path::new("/")).unwrap(), repo);
        // A manifest dir of another checkout that is not a policy-platform root is not trusted.
        assert_eq!(
            find_root(None, Some(PathBuf::from("/nonexistent/xtask")), &deep).unwrap(),
            repo
        );
        assert_eq!(
            find_root(Some(PathBuf::from("/x")), Some(repo.join("xtask")), &deep).unwrap(),
            PathBuf::from("/x")
        );
        let e = find_root(None, None, Path::new("/")).unwrap_err();
        assert_eq!(crate::exit::code_of(&e), 2);
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
