//! trivy: the pinned scanner, on PATH or as its container image (with the Docker socket
//! mounted), and the commands that run it.

use crate::config::Config;
use crate::ctx::Ctx;
use crate::exit;
use crate::runner::Cmd;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// Where Trivy comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Trivy {
    /// `trivy` found on PATH.
    Host(PathBuf),
    /// The fallback: the pinned Trivy image, run with the Docker socket mounted.
    Container {
        image: String,
        socket: PathBuf,
        cache: PathBuf,
    },
}

/// The pinned Trivy, or exit 3 saying what was found and how to get the right one.
/// `cwd` is where the version check runs (with nothing of our environment but [`HOST_ENV`]):
/// an empty folder of ours, so the answer does not depend on it. Looked for once per run
/// (see [`super::Found`]).
pub fn find(ctx: &Ctx, cfg: &Config, cwd: &Path) -> Result<Trivy> {
    let found = &ctx.found().trivy;
    if let Some(t) = found.get() {
        return Ok(t.clone());
    }
    let t = look(ctx, cfg, cwd)?;
    Ok(found.get_or_init(|| t).clone())
}

fn look(ctx: &Ctx, cfg: &Config, cwd: &Path) -> Result<Trivy> {
    let want = &cfg.trivy_version;
    if let Some(bin) = super::find("trivy") {
        let out = ctx
            .run
            .read(&Cmd::new(&bin).arg("--version").dir(cwd).env_only(HOST_ENV))?;
        let found = version_of(&out.text());
        let Some(found) = found.filter(|_| out.ok()) else {
            return Err(exit::env(format!(
                "`{} --version` failed ({}); reinstall Trivy {want}: {}",
                bin.display(),
                out.stderr.trim().lines().last().unwrap_or("no version printed"),
                super::how_to_get("trivy")
            )));
        };
        if found != *want {
            return Err(exit::env(format!(
                "found Trivy {found} at {}, but the scan accepts exactly {want} (config `trivy-version`); install Trivy {want}: {}",
                bin.display(),
                super::how_to_get("trivy")
            )));
        }
        if !cfg.trivy_sha256.is_empty() {
            check_sha256(ctx, &bin, &cfg.trivy_sha256)?;
        }
        return Ok(Trivy::Host(bin));
    }
    let image = format!("{}:{want}", cfg.trivy_image);
    if super::docker::image_id(ctx, &image)?.is_none() {
        return Err(exit::env(format!(
            "`trivy` is not on PATH and the fallback image {image} is not present locally; install Trivy {want}: {}; or `docker load` the image {image}",
            super::how_to_get("trivy")
        )));
    }
    let label = format!("{}={}", super::docker::OWNER_LABEL, std::process::id());
    let out = ctx.run.read(&Cmd::new("docker").args([
        "run",
        "--rm",
        "--network",
        "none",
        "--label",
        &label,
        "--",
        &image,
        "--version",
    ]))?;
    let found = version_of(&out.text());
    if found.as_deref() != Some(want.as_str()) {
        return Err(exit::env(format!(
            "the fallback image {image} runs Trivy {}, but the scan accepts exactly {want}; load the right image or install Trivy {want}",
            found.unwrap_or_else(|| "of unknown version".into())
        )));
    }
    let socket = docker_socket(ctx.env.docker_host.as_deref()).ok_or_else(|| {
        exit::env("the Trivy container needs the local Docker socket, but DOCKER_HOST is not a unix:// socket; install Trivy on this host")
    })?;
    Ok(Trivy::Container {
        image,
        socket,
        cache: ctx.env.trivy_cache.clone(),
    })
}

/// The binary is the one pinned in config `trivy-sha256` (a version string proves nothing
/// about a tampered build).
fn check_sha256(ctx: &Ctx, bin: &Path, want: &str) -> Result<()> {
    super::require(&["sha256sum"])?;
    let real = std::fs::canonicalize(bin).unwrap_or_else(|_| bin.to_path_buf());
    let found = super::system::sha256_file(ctx, &real)?;
    if found != want {
        return Err(exit::env(format!(
            "{} has sha256 {found}, but config `trivy-sha256` pins {want}; reinstall Trivy from a trusted source: {}",
            real.display(),
            super::how_to_get("trivy")
        )));
    }
    Ok(())
}

/// `Version: 0.59.1` (the first such line of `trivy --version`).
pub fn version_of(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Version:"))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The Docker socket to mount into the fallback container.
pub fn docker_socket(docker_host: Option<&str>) -> Option<PathBuf> {
    match docker_host {
        None | Some("") => Some(PathBuf::from("/var/run/docker.sock")),
        Some(h) => h.strip_prefix("unix://").map(PathBuf::from),
    }
}

/// The command for Trivy `args`, on the host or in the fallback container. `vars` are the
/// only `TRIVY_*` variables it gets (nothing else of ours but PATH, HOME, TMPDIR, the Docker
/// daemon's address and the XDG cache folder: no credentials, no DOCKER_CONFIG). `cwd` is
/// its working folder (the container gets it mounted read-only as its own); `mounts` are
/// `(host folder, container folder)`, mounted read-only (see [`path`]).
pub fn command(t: &Trivy, args: &[String], vars: &[(String, String)], cwd: &Path, mounts: &[(&Path, &str)]) -> Cmd {
    match t {
        Trivy::Host(bin) => {
            let mut c = Cmd::new(bin).args(args).dir(cwd).env_only(HOST_ENV);
            for (k, v) in vars {
                c = c.env(k, v);
            }
            c
        }
        Trivy::Container { image, socket, cache } => {
            let mut c = Cmd::new("docker").args(["run", "--rm"]).dir(cwd);
            c = c
                .arg("--label")
                .arg(format!("{}={}", super::docker::OWNER_LABEL, std::process::id()));
            c = c.arg("-v").arg(format!("{}:/var/run/docker.sock", socket.display()));
            c = c.arg("-v").arg(format!("{}:/trivy-cache", cache.display()));
            c = c
                .arg("-v")
                .arg(format!("{}:{CONTAINER_CWD}:ro", cwd.display()))
                .args(["-w", CONTAINER_CWD]);
            for (host, inside) in mounts {
                c = c.arg("-v").arg(format!("{}:{inside}:ro", host.display()));
            }
            // Names only: docker copies the values from the command's environment.
            for (k, v) in vars.iter().filter(|(k, _)| k != "TRIVY_CACHE_DIR") {
                c = c.arg("-e").arg(k).env(k, v);
            }
            c.args(["-e", "TRIVY_CACHE_DIR=/trivy-cache", "--"])
                .arg(image)
                .args(args)
        }
    }
}

/// What Trivy on the host inherits from the xtask's environment.
const HOST_ENV: [&str; 7] = [
    "PATH",
    "HOME",
    "TMPDIR",
    "DOCKER_HOST",
    "DOCKER_CERT_PATH",
    "DOCKER_TLS_VERIFY",
    "XDG_CACHE_HOME",
];

/// The container's working folder (the host's `cwd`, read-only).
const CONTAINER_CWD: &str = "/pp-cwd";

/// How Trivy names a file of ours: its host path, or in the container its path under the
/// mount of its folder.
pub fn path(t: &Trivy, file: &Path, mounts: &[(&Path, &str)]) -> String {
    if let (Trivy::Container { .. }, Some(dir), Some(name)) = (t, file.parent(), file.file_name()) {
        if let Some((_, inside)) = mounts.iter().find(|(host, _)| *host == dir) {
            return format!("{inside}/{}", name.to_string_lossy());
        }
    }
    file.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_line() {
        assert_eq!(
            version_of("Version: 0.59.1\nVulnerability DB:\n  Version: 2\n").as_deref(),
            Some("0.59.1")
        );
        assert_eq!(version_of("trivy 0.59.1"), None);
    }

    #[test]
    fn the_container_sees_our_files_read_only_and_only_allowed_variables() {
        let t = Trivy::Container {
            image: "aquasec/trivy:0.59.1".into(),
            socket: "/var/run/docker.sock".into(),
            cache: "/c".into(),
        };
        let (out, inputs) = (Path::new("/repo/target/xtask/scan"), Path::new("/tmp/pp-trivy-in-1"));
        let mounts = [(out, "/pp-out"), (inputs, "/pp-in")];
        assert_eq!(path(&t, &out.join("v1.json"), &mounts), "/pp-out/v1.json");
        assert_eq!(
            path(&t, &inputs.join(".trivyignore.yaml"), &mounts),
            "/pp-in/.trivyignore.yaml"
        );
        let vars = [
            ("TRIVY_CACHE_DIR".to_string(), "/c".to_string()),
            ("TRIVY_SKIP_DB_UPDATE".to_string(), "true".to_string()),
        ];
        let c = command(
            &t,
            &["convert".to_string()],
            &vars,
            Path::new("/tmp/pp-trivy-cwd-1"),
            &mounts,
        );
        let argv: Vec<String> = c.arg_list().iter().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(
            argv.join(" "),
            format!("run --rm --label io.policy-platform.xtask={} -v /var/run/docker.sock:/var/run/docker.sock -v /c:/trivy-cache -v /tmp/pp-trivy-cwd-1:/pp-cwd:ro -w /pp-cwd \
             -v /repo/target/xtask/scan:/pp-out:ro -v /tmp/pp-trivy-in-1:/pp-in:ro -e TRIVY_SKIP_DB_UPDATE -e TRIVY_CACHE_DIR=/trivy-cache -- aquasec/trivy:0.59.1 convert", std::process::id())
        );
        assert_eq!(
            c.env_value("TRIVY_SKIP_DB_UPDATE").and_then(|v| v.to_str()),
            Some("true")
        );
        // On the host: the paths as they are.
        let host = Trivy::Host("/usr/bin/trivy".into());
        assert_eq!(
            path(&host, &out.join("v1.json"), &mounts),
            "/repo/target/xtask/scan/v1.json"
        );
    }

    #[test]
    fn socket_from_docker_host() {
        assert_eq!(docker_socket(None), Some(PathBuf::from("/var/run/docker.sock")));
        assert_eq!(
            docker_socket(Some("unix:///run/user/1000/docker.sock")),
            Some(PathBuf::from("/run/user/1000/docker.sock"))
        );
        assert_eq!(docker_socket(Some("tcp://10.0.0.1:2376")), None);
    }
}
