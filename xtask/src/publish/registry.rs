//! Talking to registries: credentials, `docker login` into a throwaway `DOCKER_CONFIG`,
//! and skopeo (which reads that folder's `config.json`) for digests, labels and tags.
//! Every registry command is retried on transient errors (`plan::is_transient`).

use super::plan::{self, Remote, Target};
use crate::{ctx::Ctx, exit};
use anyhow::{Context, Result};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use xshell::Cmd;

pub const USER_VAR: &str = "REGISTRY_USERNAME";
pub const PASSWORD_VAR: &str = "REGISTRY_PASSWORD";
pub const PASSWORD_FILE_VAR: &str = "REGISTRY_PASSWORD_FILE";

/// A registry that stops answering mid-request fails the command instead of hanging the run
/// (skopeo then reports a timeout, which is retried like any transient error).
const SKOPEO_TIMEOUT: &str = "2m";

/// Registry credentials. The secret never reaches argv, logs or `Debug`.
pub struct Creds {
    pub user: String,
    secret: String,
}

impl std::fmt::Debug for Creds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Creds {{ user: {:?}, secret: <redacted> }}", self.user)
    }
}

impl Creds {
    pub fn new(user: String, secret: String) -> Creds {
        Creds { user, secret }
    }

    /// From `REGISTRY_USERNAME` and `REGISTRY_PASSWORD` or `REGISTRY_PASSWORD_FILE`; then
    /// the password variable is removed from this process, so no child inherits it.
    /// `Err` lists what is missing, each with its fix.
    pub fn from_env() -> Result<Creds, Vec<String>> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let user = var(USER_VAR);
        let secret = match (var(PASSWORD_VAR), var(PASSWORD_FILE_VAR)) {
            (Some(p), _) => Ok(p),
            (None, Some(file)) => std::fs::read_to_string(&file).map_err(|e| {
                format!("{PASSWORD_FILE_VAR} names `{file}`, which cannot be read ({e}); point it at the key file")
            }),
            (None, None) => Err(format!(
                "no registry password: set {PASSWORD_VAR}, or {PASSWORD_FILE_VAR} to a key file (e.g. Google's _json_key)"
            )),
        };
        std::env::remove_var(PASSWORD_VAR);
        let mut problems = Vec::new();
        if user.is_none() {
            problems.push(format!(
                "no registry user: set {USER_VAR} (with {PASSWORD_VAR} or {PASSWORD_FILE_VAR}; for a Google key file the user is _json_key)"
            ));
        }
        let secret = secret.map_err(|p| problems.push(p)).ok();
        match (user, secret) {
            (Some(user), Some(secret)) if problems.is_empty() => Ok(Creds { user, secret }),
            _ => Err(problems),
        }
    }
}

/// A throwaway `DOCKER_CONFIG` folder (mode 0700) that every docker command of this run
/// uses; removed on drop. A watchdog process removes it too if this process dies without
/// unwinding (Ctrl-C, a kill), since no signal handler can be had without a crate.
pub struct Session {
    dir: PathBuf,
    watchdog: Option<Child>,
    previous: Option<std::ffi::OsString>,
}

const WATCHDOG: &str = "trap '' INT TERM HUP; while kill -0 \"$1\" 2>/dev/null; do sleep 1; done; rm -rf \"$2\"";

impl Session {
    pub fn new(ctx: &Ctx) -> Result<Session> {
        use std::os::unix::fs::DirBuilderExt;
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("pp-publish-auth-{}-{nanos}", std::process::id()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("cannot create the credentials folder {}", dir.display()))?;
        // An empty config: no credential helper is picked, logins land in this file only.
        std::fs::write(dir.join("config.json"), "{\"auths\":{}}\n")?;
        let watchdog = Command::new("sh")
            .args(["-c", WATCHDOG, "sh"])
            .arg(std::process::id().to_string())
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok();
        // For this process too: builds that run docker without the shell (to stream its
        // output) must pull a private base with these credentials.
        let previous = std::env::var_os("DOCKER_CONFIG");
        std::env::set_var("DOCKER_CONFIG", &dir);
        ctx.sh.set_var("DOCKER_CONFIG", &dir);
        eprintln!("    (credentials go to a throwaway DOCKER_CONFIG={}, removed at the end)", dir.display());
        Ok(Session { dir, watchdog, previous })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn authfile(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    /// `docker login HOST -u USER --password-stdin`, the secret on stdin only.
    /// Refused credentials are an environment error (exit 3) naming the registry.
    pub fn login(&self, ctx: &Ctx, target: &Target, creds: &Creds) -> Result<()> {
        let cmd = || {
            ctx.sh
                .cmd("docker")
                .args(["login", &target.host, "-u", &creds.user, "--password-stdin"])
                .env("DOCKER_CONFIG", &self.dir)
                .stdin(creds.secret.as_bytes())
                .secret()
        };
        // The command is marked secret (so errors show `<secret>`); echo what it is by hand.
        let mark = if ctx.dry_run { "[dry-run] " } else { "" };
        eprintln!("{mark}$ docker login {} -u {} --password-stdin   (password on stdin)", target.host, creds.user);
        let mut last = String::new();
        for retry in 0..=plan::RETRIES {
            let out = cmd().quiet().ignore_status().output()?;
            if out.status.success() {
                return Ok(());
            }
            last = first_error_line(&out);
            if !plan::is_transient(&last) || retry == plan::RETRIES {
                break;
            }
            wait(retry, &last);
        }
        let last = last.replace(&creds.secret, "<redacted>");
        Err(exit::env(format!(
            "login to {} as {} failed ({last}); check {USER_VAR} and {PASSWORD_VAR}/{PASSWORD_FILE_VAR}, and that the registry is up",
            target.host, creds.user
        )))
    }

    fn skopeo<'a>(&self, ctx: &'a Ctx, sub: &str, target: &Target) -> Cmd<'a> {
        let mut cmd = ctx.sh.cmd("skopeo").args(["--command-timeout", SKOPEO_TIMEOUT, sub, "--authfile"]).arg(self.authfile());
        if target.is_loopback() {
            // Plain HTTP is allowed for this machine's own registries, never elsewhere.
            cmd = cmd.arg("--tls-verify=false");
        }
        cmd
    }

    /// Digest and labels behind a tag, `None` when the tag (or repository) does not exist.
    pub fn inspect(&self, ctx: &Ctx, target: &Target, image: &str, tag: &str) -> Result<Option<(String, Value)>> {
        let reference = target.reference(image, tag);
        let what = format!("reading {reference}");
        let cmd = || self.skopeo(ctx, "inspect", target).args(["--no-tags", &format!("docker://{reference}")]);
        let Some(out) = query(ctx, &what, cmd)? else { return Ok(None) };
        let v: Value = serde_json::from_slice(&out.stdout).with_context(|| format!("skopeo printed no JSON for {reference}"))?;
        let digest = v["Digest"].as_str().filter(|d| plan::is_digest(d)).context("skopeo printed no digest")?;
        Ok(Some((digest.to_string(), v["Labels"].clone())))
    }

    /// The manifest digest and image config digest behind a tag.
    pub fn remote(&self, ctx: &Ctx, target: &Target, image: &str, tag: &str) -> Result<Option<Remote>> {
        let Some((digest, _)) = self.inspect(ctx, target, image, tag)? else { return Ok(None) };
        let reference = format!("{}@{digest}", target.repo(image));
        let cmd = || self.skopeo(ctx, "inspect", target).args(["--raw", &format!("docker://{reference}")]);
        let out = query(ctx, &format!("reading {reference}"), cmd)?.with_context(|| format!("{reference} vanished"))?;
        let raw = String::from_utf8_lossy(&out.stdout);
        let config = plan::manifest_config(&raw)
            .with_context(|| format!("{reference} is not a single image manifest (a manifest list?); publish pushes single images"))?;
        Ok(Some(Remote { digest, config }))
    }

    /// Remote state of several tags.
    pub fn remotes(&self, ctx: &Ctx, target: &Target, image: &str, tags: &[String]) -> Result<BTreeMap<String, Remote>> {
        let mut m = BTreeMap::new();
        for t in tags {
            if let Some(r) = self.remote(ctx, target, image, t)? {
                m.insert(t.clone(), r);
            }
        }
        Ok(m)
    }

    /// Every tag of the repository (empty when it does not exist yet).
    pub fn list_tags(&self, ctx: &Ctx, target: &Target, image: &str) -> Result<Vec<String>> {
        let repo = target.repo(image);
        let cmd = || self.skopeo(ctx, "list-tags", target).arg(format!("docker://{repo}"));
        let Some(out) = query(ctx, &format!("listing the tags of {repo}"), cmd)? else { return Ok(Vec::new()) };
        let v: Value = serde_json::from_slice(&out.stdout).context("skopeo list-tags printed no JSON")?;
        Ok(v["Tags"].as_array().into_iter().flatten().filter_map(|t| t.as_str().map(String::from)).collect())
    }

    /// `docker push REF`; returns the manifest digest it printed. Retries transient errors,
    /// then fails with exit 3 naming the tag and registry.
    pub fn push(&self, ctx: &Ctx, target: &Target, reference: &str, tag: &str) -> Result<Option<String>> {
        let cmd = || ctx.sh.cmd("docker").args(["push", reference]);
        let what = format!("pushing {tag} to {}", target.spec);
        let Some(out) = change(ctx, &what, cmd)? else { return Ok(None) };
        let stdout = String::from_utf8_lossy(&out.stdout);
        plan::push_digest(&stdout, tag)
            .map(Some)
            .with_context(|| format!("`docker push {reference}` printed no `{tag}: digest: sha256:…` line"))
    }

    /// Points `tag` at an existing manifest of the same repository, without Docker
    /// (`skopeo copy` by digest; the blobs are already there, the digest is kept).
    pub fn retag(&self, ctx: &Ctx, target: &Target, image: &str, digest: &str, tag: &str) -> Result<()> {
        let repo = target.repo(image);
        let cmd = || {
            let mut c = ctx.sh.cmd("skopeo").args(["--command-timeout", SKOPEO_TIMEOUT, "copy", "--preserve-digests", "--authfile"]);
            c = c.arg(self.authfile());
            if target.is_loopback() {
                c = c.args(["--src-tls-verify=false", "--dest-tls-verify=false"]);
            }
            c.arg(format!("docker://{repo}@{digest}")).arg(format!("docker://{repo}:{tag}"))
        };
        change(ctx, &format!("pointing {tag} at {digest} in {}", target.spec), cmd)?;
        Ok(())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        match self.previous.take() {
            Some(p) => std::env::set_var("DOCKER_CONFIG", p),
            None => std::env::remove_var("DOCKER_CONFIG"),
        }
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
    }
}

/// A read-only registry command (runs in a dry run too), retried on transient errors.
/// `None` when the registry says the thing does not exist.
fn query<'a>(ctx: &Ctx, what: &str, cmd: impl Fn() -> Cmd<'a>) -> Result<Option<Output>> {
    let mut last = String::new();
    for retry in 0..=plan::RETRIES {
        let out = ctx.probe_output(cmd())?;
        if out.status.success() {
            return Ok(Some(out));
        }
        last = first_error_line(&out);
        if is_missing(&last) {
            return Ok(None);
        }
        if !plan::is_transient(&last) || retry == plan::RETRIES {
            break;
        }
        wait(retry, &last);
    }
    Err(registry_error(what, &last))
}

/// A registry command that changes something (skipped in a dry run), retried likewise.
fn change<'a>(ctx: &Ctx, what: &str, cmd: impl Fn() -> Cmd<'a>) -> Result<Option<Output>> {
    if ctx.dry_run {
        ctx.echo(&cmd());
        return Ok(None);
    }
    let mut last = String::new();
    for retry in 0..=plan::RETRIES {
        let c = cmd();
        ctx.echo(&c);
        let out = c.quiet().ignore_status().output()?;
        if out.status.success() {
            return Ok(Some(out));
        }
        last = first_error_line(&out);
        if !plan::is_transient(&last) || retry == plan::RETRIES {
            break;
        }
        wait(retry, &last);
    }
    Err(registry_error(what, &last))
}

fn registry_error(what: &str, last: &str) -> anyhow::Error {
    let transient = plan::is_transient(last);
    let fix = if transient {
        format!("failed after {} retries; once the registry answers, rerun the same command (tags already pushed are skipped)", plan::RETRIES)
    } else if last.to_ascii_lowercase().contains("unauthorized") || last.contains("denied") {
        "the registry refused the credentials; check REGISTRY_USERNAME and the password's push rights".to_string()
    } else {
        "check the registry and rerun".to_string()
    };
    exit::env(format!("{what}: {last}; {fix}"))
}

fn wait(retry: u32, why: &str) {
    let d = plan::backoff(retry);
    eprintln!("    transient registry error ({why}); retry {} of {} in {}s", retry + 1, plan::RETRIES, d.as_secs());
    std::thread::sleep(d);
}

fn is_missing(err: &str) -> bool {
    let e = err.to_ascii_lowercase();
    e.contains("manifest unknown") || e.contains("name unknown") || e.contains("404 (not found)") || e.contains("not found: manifest")
}

/// The most telling line of a failed command's stderr (skopeo's `msg="..."` unwrapped).
fn first_error_line(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("WARNING") && !l.starts_with("Configure a credential") && !l.starts_with("https://docs.docker.com"))
        .find(|l| l.contains("error") || l.contains("Error") || l.contains("level=fatal") || l.contains("failed"))
        .or_else(|| err.lines().map(str::trim).find(|l| !l.is_empty()))
        .unwrap_or("no error output")
        .to_string();
    match line.split_once("msg=\"") {
        Some((_, m)) => m.trim_end_matches('"').replace("\\\"", "\""),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(stderr: &str) -> Output {
        use std::os::unix::process::ExitStatusExt;
        Output { status: std::process::ExitStatus::from_raw(256), stdout: Vec::new(), stderr: stderr.as_bytes().to_vec() }
    }

    #[test]
    fn error_lines() {
        let skopeo = "time=\"2026-11-27T22:59:02Z\" level=fatal msg=\"Error parsing image name \\\"docker://127.0.0.1:5077/pp/x:nope\\\": reading manifest nope in 127.0.0.1:5077/pp/x: manifest unknown: manifest unknown\"\n";
        let line = first_error_line(&output(skopeo));
        assert!(line.starts_with("Error parsing image name \"docker://"), "{line}");
        assert!(is_missing(&line));
        let docker = "\nWARNING! Your credentials are stored unencrypted\nError response from daemon: login attempt to http://127.0.0.1:5077/v2/ failed with status: 401 Unauthorized\n";
        assert_eq!(
            first_error_line(&output(docker)),
            "Error response from daemon: login attempt to http://127.0.0.1:5077/v2/ failed with status: 401 Unauthorized"
        );
        assert!(is_missing("Error listing repository tags: fetching tags list: invalid status code from registry 404 (Not Found)"));
        assert!(!is_missing("unauthorized: authentication required"));
    }

    #[test]
    fn creds_debug_hides_the_secret() {
        let c = Creds::new("u".into(), "canary-secret".into());
        assert!(!format!("{c:?}").contains("canary"));
    }
}
