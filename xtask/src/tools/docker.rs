//! docker: the engine (version, images, labels, layers), builds, container runs, and
//! login/push/pull with the credentials given per command. References and hosts come
//! after `--`, so none can be read as a flag.

use super::Auth;
use crate::ctx::Ctx;
use crate::exit;
use crate::runner::{Background, Cmd, Out, Streamed};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Every container the xtask starts carries this label (value: the xtask's process id),
/// so that one killed mid-run can be found and removed by the next run.
pub const OWNER_LABEL: &str = "io.policy-platform.xtask";

/// `docker push` has no timeout of its own.
const PUSH_TIMEOUT: Duration = Duration::from_secs(20 * 60);

fn docker() -> Cmd {
    Cmd::new("docker")
}

fn with_auth(c: Cmd, auth: Option<&Auth>) -> Cmd {
    match auth {
        Some(a) => c.env("DOCKER_CONFIG", a.docker_config()),
        None => c,
    }
}

/// The engine's version, or exit 3 saying how to get a daemon that answers. Asked once
/// per run (see [`super::Found`]).
pub fn daemon_version(ctx: &Ctx) -> Result<String> {
    let found = &ctx.found().docker_version;
    if let Some(v) = found.get() {
        return Ok(v.clone());
    }
    let v = ask_version(ctx)?;
    Ok(found.get_or_init(|| v).clone())
}

fn ask_version(ctx: &Ctx) -> Result<String> {
    let out = ctx
        .run
        .read(&docker().args(["version", "--format", "{{.Server.Version}}"]))?;
    let ver = out.text().trim().to_string();
    if out.ok() && !ver.is_empty() {
        return Ok(ver);
    }
    let why = out
        .stderr
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no answer")
        .trim()
        .to_string();
    Err(exit::env(format!(
        "the Docker daemon does not answer ({why}); start it (e.g. `sudo systemctl start docker`) or set DOCKER_HOST"
    )))
}

/// The docker CLI is on PATH and its daemon answers.
pub fn require(ctx: &Ctx) -> Result<()> {
    super::require(&["docker"])?;
    daemon_version(ctx).map(|_| ())
}

/// The local image id behind a reference, `None` when the engine does not have it.
pub fn image_id(ctx: &Ctx, reference: &str) -> Result<Option<String>> {
    Ok(inspect(ctx, reference, "{{.Id}}")?.map(|out| out.text().trim().to_string()))
}

/// `docker image inspect --format FORMAT -- REF`; `None` when the engine does not have
/// the image, exit 3 with docker's words for any other failure.
fn inspect(ctx: &Ctx, reference: &str, format: &str) -> Result<Option<Out>> {
    let out = ctx
        .run
        .read(&docker().args(["image", "inspect", "--format", format, "--", reference]))?;
    if !out.ok() && is_no_such_image(&out.stderr) {
        return Ok(None);
    }
    out.env_ok(format_args!("docker image inspect {reference} failed"))?;
    Ok(Some(out))
}

fn is_no_such_image(stderr: &str) -> bool {
    let e = stderr.to_ascii_lowercase();
    e.contains("no such image") || e.contains("no such object")
}

/// The image id, or the one error for "not in the local engine" (exit 3).
pub fn require_image(ctx: &Ctx, reference: &str) -> Result<String> {
    image_id(ctx, reference)?.ok_or_else(|| not_found(reference))
}

pub fn not_found(reference: &str) -> anyhow::Error {
    exit::env(format!(
        "image {reference} is not in the local Docker engine; build it with `cargo xtask image` (or pass --image REF of a local image)"
    ))
}

/// The image's labels (exit 3 when the image is not there).
pub fn labels(ctx: &Ctx, reference: &str) -> Result<BTreeMap<String, String>> {
    let out = inspect(ctx, reference, "{{json .Config.Labels}}")?.ok_or_else(|| not_found(reference))?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("docker image inspect printed no JSON")?;
    Ok(super::string_map(&v))
}

/// The `name@sha256:…` digests a local image was pulled or pushed by (empty when it was
/// built or imported here).
pub fn repo_digests(ctx: &Ctx, reference: &str) -> Result<Vec<String>> {
    let out = inspect(ctx, reference, "{{json .RepoDigests}}")?.ok_or_else(|| not_found(reference))?;
    let v: Option<Vec<String>> = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("docker image inspect {reference} printed no JSON"))?;
    Ok(v.unwrap_or_default())
}

/// Size in bytes of a local image.
pub fn size(ctx: &Ctx, id: &str) -> Result<u64> {
    let out = ctx
        .run
        .read(&docker().args(["image", "inspect", "--format", "{{.Size}}", "--", id]))?;
    let s = out.text();
    s.trim()
        .parse()
        .with_context(|| format!("unexpected image size `{}` ({})", s.trim(), out.error_line()))
}

/// The diff ids of an image's layers, oldest first.
pub fn layers(ctx: &Ctx, id: &str) -> Result<Vec<String>> {
    let out = ctx
        .run
        .read(&docker().args(["image", "inspect", "--format", "{{json .RootFS.Layers}}", "--", id]))?;
    serde_json::from_slice(&out.stdout).with_context(|| format!("docker image inspect {id}: {}", out.error_line()))
}

/// `docker history`: one `size<TAB>created by` line per layer, newest first.
pub fn history(ctx: &Ctx, id: &str) -> Result<String> {
    let out = ctx.run.read(&docker().args([
        "history",
        "--no-trunc",
        "--human=false",
        "--format",
        "{{.Size}}\t{{.CreatedBy}}",
        "--",
        id,
    ]))?;
    out.env_ok(format_args!("docker history {id} failed"))?;
    Ok(out.text())
}

/// `docker build ARGV…` in `dir`, its output streamed; `stdin` is the Dockerfile when the
/// build reads it from `-`. `auth` lets it pull a private base. `None` in a dry run.
pub fn build(
    ctx: &Ctx,
    dir: &Path,
    argv: &[String],
    stdin: Option<String>,
    auth: Option<&Auth>,
) -> Result<Option<Streamed>> {
    let mut c = with_auth(docker().args(argv).dir(dir), auth);
    if let Some(s) = stdin {
        c = c.stdin(s);
    }
    ctx.run.stream(&c, false, None)
}

pub fn tag(ctx: &Ctx, src: &str, dst: &str) -> Result<()> {
    if let Some(out) = ctx.run.change(&docker().args(["tag", "--", src, dst]))? {
        out.env_ok(format_args!("docker tag {src} {dst} failed"))?;
    }
    Ok(())
}

/// Drops a local name (best effort: the image keeps its other names and its layers).
pub fn untag(ctx: &Ctx, reference: &str) {
    let _ = ctx.run.change(&docker().args(["rmi", "--", reference]));
}

/// The `docker push` command (it has no timeout of its own: ours is 20 minutes).
pub fn push_cmd(auth: &Auth, reference: &str) -> Cmd {
    with_auth(docker().args(["push", "--", reference]), Some(auth)).timeout(PUSH_TIMEOUT)
}

/// The manifest digest `docker push` printed for `tag`: `<tag>: digest: sha256:<hex> size: <n>`.
pub fn push_digest(stdout: &str, tag: &str) -> Option<String> {
    stdout.lines().find_map(|l| {
        let rest = l.trim().strip_prefix(tag)?.strip_prefix(": digest: ")?;
        let digest = rest.split_whitespace().next()?;
        super::skopeo::is_digest(digest).then(|| digest.to_string())
    })
}

/// `docker pull -q REF` with the run's credentials; whether it worked. In a dry run it is
/// only shown (`false`).
pub fn pull(ctx: &Ctx, auth: Option<&Auth>, reference: &str) -> Result<bool> {
    let c = with_auth(docker().args(["pull", "-q", "--", reference]), auth);
    Ok(ctx.run.change(&c)?.is_some_and(|o| o.ok()))
}

/// The `docker login` command: the secret on stdin only, the host after `--`.
pub fn login_cmd(auth: &Auth, host: &str, user: &str, secret: &str) -> Cmd {
    with_auth(
        docker().args(["login", "-u", user, "--password-stdin", "--", host]),
        Some(auth),
    )
    .secret_stdin(secret)
    .note("(password on stdin)")
}

/// `docker run -d --rm --name NAME ARGS… -- IMAGE`, labelled as ours (a server the xtask
/// stops itself with [`stop`]).
pub fn run_detached(ctx: &Ctx, name: &str, args: &[&str], image: &str) -> Result<()> {
    let c = docker()
        .args(["run", "-d", "--rm", "--name", name])
        .arg("--label")
        .arg(format!("{OWNER_LABEL}={}", std::process::id()))
        .args(args)
        .args(["--", image]);
    ctx.run
        .read(&c)?
        .env_ok(format_args!("cannot start the container {name}"))
}

/// Stops (and so removes) a container of ours; best effort.
pub fn stop(ctx: &Ctx, name: &str) {
    let _ = ctx.run.read(&docker().args(["stop", "-t", "1", "--", name]));
}

/// A container run of `image` with `sh -c SCRIPT sh ARGS…`: no network, never a pull,
/// removed when it ends, named and labelled as ours.
pub struct Run<'a> {
    pub image: &'a str,
    pub script: &'a str,
    pub args: Vec<String>,
    /// `(host path, container path)` mounted read-only.
    pub mount_ro: Option<(&'a Path, &'a str)>,
    pub workdir: Option<&'a str>,
}

impl Run<'_> {
    pub fn cmd(&self) -> Cmd {
        static N: AtomicUsize = AtomicUsize::new(0);
        let pid = std::process::id();
        let name = format!("pp-xtask-{pid}-{}", N.fetch_add(1, Ordering::SeqCst));
        let mut c = docker().args(["run", "--rm", "--pull", "never", "--network", "none", "--name", &name]);
        c = c.arg("--label").arg(format!("{OWNER_LABEL}={pid}"));
        if let Some((host, inside)) = self.mount_ro {
            c = c.arg("-v").arg(format!("{}:{inside}:ro", host.display()));
        }
        if let Some(w) = self.workdir {
            c = c.args(["-w", w]);
        }
        c.args(["--entrypoint", "sh", "--", self.image, "-c", self.script, "sh"])
            .args(&self.args)
    }

    pub fn output(&self, ctx: &Ctx) -> Result<Out> {
        ctx.run.read(&self.cmd())
    }

    pub fn start(&self, ctx: &Ctx) -> Result<Background> {
        ctx.run.spawn_captured(&self.cmd())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_output() {
        let out = "The push refers to repository [127.0.0.1:5000/pp]\n7cd52847ad77: Pushed\nv1.0.0: digest: sha256:e2e16842c9b54d985bf1ef9242a313f36b856181f188de21313820e177002501 size: 528\n";
        assert_eq!(
            push_digest(out, "v1.0.0").as_deref(),
            Some("sha256:e2e16842c9b54d985bf1ef9242a313f36b856181f188de21313820e177002501")
        );
        assert_eq!(push_digest(out, "v1.0"), None, "the tag must match exactly");
        assert_eq!(push_digest("latest: digest: sha256:short size: 1", "latest"), None);
    }

    #[test]
    fn hosts_and_references_never_read_as_flags() {
        let a = Auth::Throwaway("/tmp/x".into());
        let l = login_cmd(&a, "-u.x", "me", "pw");
        assert_eq!(
            l.display(),
            "docker login -u me --password-stdin -- -u.x   (password on stdin)"
        );
        assert_eq!(l.env_value("DOCKER_CONFIG"), Some(std::ffi::OsStr::new("/tmp/x")));
        assert!(push_cmd(&a, "--x").display().ends_with("push -- --x"));
        let r = Run {
            image: "-i",
            script: "true",
            args: vec![],
            mount_ro: None,
            workdir: None,
        }
        .cmd()
        .display();
        assert!(
            r.contains("--label io.policy-platform.xtask=") && r.contains("--entrypoint sh -- -i -c true sh"),
            "{r}"
        );
    }
}
