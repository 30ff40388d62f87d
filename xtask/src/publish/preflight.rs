//! Everything checked before a build, collected so that one run names every problem.

use super::plan::Target;
use super::registry::{Credentials, Session};
use super::PublishOpts;
use crate::scan::ScanOpts;
use crate::tools::{self, docker, git};
use crate::{ctx::Ctx, exit, release};
use anyhow::Result;
use semver::Version;

/// Problems found so far: `(exit code, message)`.
#[derive(Default)]
pub struct Problems(pub Vec<(i32, String)>);

impl Problems {
    pub fn usage(&mut self, msg: impl Into<String>) {
        self.0.push((exit::USAGE, msg.into()));
    }

    pub fn env(&mut self, msg: impl Into<String>) {
        self.0.push((exit::ENV, msg.into()));
    }

    /// Records an error with its own exit code; `None` when there was one.
    pub fn take<T>(&mut self, r: Result<T>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.push((exit::code_of(&e), exit::one_line(&e)));
                None
            }
        }
    }

    /// All problems at once: listed on stderr, then one error line. Exit 2 when any is a
    /// usage or input problem (fix those first), else 3.
    pub fn finish(self, what: &str) -> Result<()> {
        if self.0.is_empty() {
            return Ok(());
        }
        eprintln!("{what} preflight found {} problem(s):", self.0.len());
        for (_, m) in &self.0 {
            eprintln!("  - {m}");
        }
        let code = if self.0.iter().any(|(c, _)| *c == exit::USAGE) {
            exit::USAGE
        } else {
            exit::ENV
        };
        let all: Vec<String> = self
            .0
            .iter()
            .enumerate()
            .map(|(i, (_, m))| format!("({}) {m}", i + 1))
            .collect();
        Err(exit::Exit {
            code,
            msg: format!("{what} preflight: {}", all.join(" ")),
        }
        .into())
    }
}

/// `--registry` values, else the configured `registries`; Docker Hub needs `--allow-public`.
pub fn targets(ctx: &Ctx, opts: &PublishOpts, p: &mut Problems) -> Vec<Target> {
    let mut given: Vec<Target> = opts.registries.clone();
    if given.is_empty() {
        if let Ok(c) = ctx.config() {
            for spec in &c.registries {
                match Target::parse(spec) {
                    Ok(t) => given.push(t),
                    Err(e) => p.usage(format!("Cargo.toml `registries`: {e}")),
                }
            }
        }
    }
    if given.is_empty() && p.0.is_empty() {
        p.usage(
            "no registry to publish to: pass --registry HOST[/PATH] (repeatable), set `registries` in Cargo.toml \
             [workspace.metadata.policy-platform], or try it out with --local",
        );
    }
    let mut out: Vec<Target> = Vec::new();
    for t in given {
        if t.public && !opts.allow_public {
            p.usage(format!(
                "registry `{}` is Docker Hub, which is public: publish to a private registry, or pass --allow-public if this image may be public",
                t.spec
            ));
        } else if out.iter().any(|o| o.host == t.host && o.path == t.path) {
            p.usage(format!("registry `{}` is given twice", t.spec));
        } else {
            out.push(t);
        }
    }
    out
}

/// What every mode needs: tools, Docker, config, VERSION, a clean tree (when `clean`),
/// credentials. Returns VERSION and the credentials when they could be had.
pub fn common(
    ctx: &Ctx,
    p: &mut Problems,
    need: &[&str],
    clean: bool,
    creds: Credentials,
) -> (Option<Version>, Option<Credentials>) {
    p.take(tools::require(need));
    if need.contains(&"docker") && tools::find("docker").is_some() {
        p.take(docker::daemon_version(ctx));
    }
    p.take(ctx.config());
    let version = p.take(release::read_version(ctx));
    if clean {
        match git::dirty_files(ctx) {
            Ok(files) if !files.is_empty() => {
                let shown: Vec<&str> = files.iter().take(10).map(String::as_str).collect();
                let more = if files.len() > 10 {
                    format!(" and {} more", files.len() - 10)
                } else {
                    String::new()
                };
                p.usage(format!(
                    "the git tree has uncommitted changes ({}{more}): commit or stash them; a release is built from a commit",
                    shown.join(", ")
                ));
            }
            Ok(_) => {}
            Err(e) => p.usage(format!(
                "cannot read the git status ({}); run inside a git checkout",
                exit::one_line(&e)
            )),
        }
    }
    let creds = match creds {
        Credentials::Broken(list) => {
            for m in list {
                p.usage(m);
            }
            None
        }
        Credentials::User if ctx.env.docker_config.is_none() => {
            p.usage(format!(
                "no registry credentials: set {} with {} or {}, or log in with docker (needs HOME or DOCKER_CONFIG)",
                super::USER_VAR,
                super::PASSWORD_VAR,
                super::PASSWORD_FILE_VAR
            ));
            None
        }
        c => Some(c),
    };
    (version, creds)
}

/// Logs in to every registry (also when other problems were found, so that one run names
/// them all). Returns the session when every login worked.
pub fn login<'a>(
    ctx: &'a Ctx,
    p: &mut Problems,
    targets: &[Target],
    creds: Option<&Credentials>,
    image: &str,
) -> Option<Session<'a>> {
    let creds = creds?;
    if targets.is_empty() || tools::find("docker").is_none() || tools::find("skopeo").is_none() {
        return None;
    }
    let before = p.0.len();
    let session = match creds {
        Credentials::Given(c) => {
            let s = p.take(Session::new(ctx, targets))?;
            for t in targets {
                p.take(s.login(t, c));
            }
            s
        }
        Credentials::User => {
            let s = Session::user(ctx, ctx.env.docker_config.clone()?);
            for t in targets {
                p.take(s.check_read(t, image));
            }
            s
        }
        Credentials::Broken(_) => return None,
    };
    (p.0.len() == before).then_some(session)
}

/// What a build mode (a release, the weekly rebuild) gathers before anything is built.
pub struct Gathered<'a> {
    pub version: Option<Version>,
    pub head: Option<git::Head>,
    pub image: String,
    pub session: Option<Session<'a>>,
}

/// VERSION, the commit, the tools, a clean tree, the scan's own checks (as a dry run) and
/// the logins; every problem goes to `p`.
pub fn gather<'a>(
    ctx: &'a Ctx,
    p: &mut Problems,
    scan: &ScanOpts,
    targets: &[Target],
    creds: Credentials,
) -> Gathered<'a> {
    let (version, creds) = common(ctx, p, &super::TOOLS, true, creds);
    let head = p.take(git::head(ctx));
    let image = ctx.config().map(|c| c.image.clone()).unwrap_or_default();
    if let Some(v) = &version {
        p.take(super::gates::preflight(
            ctx,
            scan,
            &format!("{image}:{}", crate::version::tag(v)),
        ));
    }
    let session = login(ctx, p, targets, creds.as_ref(), &image);
    Gathered {
        version,
        head,
        image,
        session,
    }
}
