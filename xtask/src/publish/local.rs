//! `publish --local`: a throwaway registry on 127.0.0.1 (Debian's `docker-registry`, else a
//! local `registry:2` image) with htpasswd auth and generated credentials; publishes to it,
//! prints how to pull the result, and stops the registry, also on failure.
//!
//! Its storage and credentials stay in `target/xtask/local-registry/` (mode 0700), so the
//! printed recipe still pulls the release after the registry stopped.

use super::release;
use super::{Creds, PublishOpts, Target};
use crate::runner::Background;
use crate::sign::signer::Signer;
use crate::tools::{self, docker, system};
use crate::{ctx::Ctx, exit, files};
use anyhow::{Context, Result};
use serde_json::Value;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

const USER: &str = "publish";
const IMAGE: &str = "registry:2";

pub fn run(ctx: &Ctx, opts: &PublishOpts) -> Result<Value> {
    // A dry run keeps nothing: its registry lives in a private temp folder.
    let scratch = if ctx.dry_run() {
        Some(crate::cleanup::temp_dir(ctx, "local")?)
    } else {
        None
    };
    let dir = match &scratch {
        Some(t) => t.path().to_path_buf(),
        None => ctx.path("target/xtask/local-registry"),
    };
    let server = Server::start(ctx, &dir)?;
    let target = Target::parse(&server.addr).map_err(exit::usage)?;
    let creds = Creds::new(USER.to_string(), server.password.clone());
    // A throwaway key pair next to the registry: the release is signed and attested too.
    let signer = Signer::generated(ctx, &dir)?;
    let local = release::Local {
        targets: vec![target.clone()],
        creds: creds.clone(),
        signer,
    };
    let released = release::run(ctx, opts, Some(local));
    // Checked as a consumer would, while the registry still runs.
    let verified = match (&released, ctx.dry_run()) {
        (Ok(r), false) => Some(crate::verify::check_published(
            ctx,
            &creds,
            &dir.join("cosign.pub"),
            &r.pushed,
        )),
        _ => None,
    };
    let addr = server.addr.clone();
    drop(server);
    let released = released?;
    if ctx.dry_run() {
        return Ok(released.record);
    }
    if let Some(v) = verified {
        v?;
    }
    let rel = |p: &str| {
        dir.join(p)
            .strip_prefix(&ctx.root)
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| dir.join(p))
    };
    println!();
    println!(
        "Published {} to the throwaway registry {addr} (now stopped; its storage is kept).",
        crate::version::tag(&released.version)
    );
    println!("To pull it:");
    println!("  docker-registry serve {} &", rel("config.yml").display());
    println!(
        "  docker login {addr} -u {USER} --password-stdin < {}",
        rel("password").display()
    );
    for p in &released.pushed {
        println!("  docker pull {}@{}", p.repo, p.digest);
    }
    println!("To verify its signature and attestations (with the registry running, as above):");
    println!(
        "  REGISTRY_USERNAME={USER} REGISTRY_PASSWORD_FILE={} cargo xtask verify --key {} {}",
        rel("password").display(),
        rel("cosign.pub").display(),
        released
            .pushed
            .iter()
            .map(|p| format!("{}:{}", p.repo, crate::version::tag(&released.version)))
            .next()
            .unwrap_or_default()
    );
    Ok(released.record)
}

/// A running registry; stopped on drop.
struct Server<'a> {
    ctx: &'a Ctx,
    addr: String,
    password: String,
    child: Option<Background>,
    container: Option<String>,
}

impl<'a> Server<'a> {
    fn start(ctx: &'a Ctx, dir: &Path) -> Result<Server<'a>> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        tools::require(&["docker", "htpasswd"])?;
        let native = tools::find("docker-registry").is_some();
        if !native && docker::image_id(ctx, IMAGE)?.is_none() {
            return Err(exit::env(format!(
                "--local needs a registry: install Debian's docker-registry (apt-get install docker-registry) or load the {IMAGE} image"
            )));
        }
        // Only this folder is private (credentials inside); its parents keep the usual mode.
        std::fs::create_dir_all(dir.parent().unwrap_or(dir))
            .with_context(|| format!("cannot create {}", dir.display()))?;
        // Every run starts with an empty registry (a throwaway one); the storage of the last
        // run stays until the next, so its pull recipe works.
        let data = dir.join("data");
        if std::fs::symlink_metadata(&data).is_ok_and(|m| m.is_dir())
            && !std::fs::symlink_metadata(dir)?.file_type().is_symlink()
        {
            std::fs::remove_dir_all(&data).with_context(|| format!("cannot empty {}", data.display()))?;
        }
        for d in [dir.to_path_buf(), data] {
            if let Err(e) = std::fs::DirBuilder::new().mode(0o700).create(&d) {
                if e.kind() != std::io::ErrorKind::AlreadyExists {
                    return Err(e).with_context(|| format!("cannot create {}", d.display()));
                }
            }
            // A folder we did not make (a symlink planted in target/) is never used, nor
            // anything made through it: checked before `data` is created inside.
            if std::fs::symlink_metadata(&d)?.file_type().is_symlink() {
                let why = format!(
                    "{} is a symlink; remove it (publish --local keeps its registry there)",
                    d.display()
                );
                return Err(exit::usage(why));
            }
        }
        let pw_file = dir.join("password");
        let kept = std::fs::symlink_metadata(&pw_file).is_ok_and(|m| m.is_file()) && dir.join("htpasswd").is_file();
        let password = match std::fs::read_to_string(&pw_file) {
            Ok(p) if kept && p.len() >= 32 => p.trim().to_string(),
            _ => {
                let p = files::random_hex(16)?;
                // Written by rename: a planted symlink is replaced, never written through.
                files::write_atomic(&pw_file, p.as_bytes(), 0o600)?;
                let line = system::htpasswd_line(ctx, USER, &p)?;
                files::write_atomic(&dir.join("htpasswd"), (line + "\n").as_bytes(), 0o600)?;
                p
            }
        };
        let port = free_port()?;
        let addr = format!("127.0.0.1:{port}");
        let mut server = Server {
            ctx,
            addr: addr.clone(),
            password,
            child: None,
            container: None,
        };
        if native {
            let config = dir.join("config.yml");
            files::write_atomic(&config, config_yml(dir, &addr).as_bytes(), 0o600)?;
            let log = dir.join("registry.log");
            // The log is opened by path for the server: a planted symlink there is dropped
            // and the file made anew, so the server never writes through it.
            match std::fs::remove_file(&log) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| format!("cannot replace {}", log.display()))
                }
                _ => {}
            }
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&log)
                .with_context(|| format!("cannot create {}", log.display()))?;
            server.child = Some(system::serve_registry(ctx, &config, &log)?);
        } else {
            let name = format!("pp-publish-registry-{}", std::process::id());
            let data = format!("{}:/var/lib/registry", dir.join("data").display());
            let auth = format!("{}:/auth/htpasswd:ro", dir.join("htpasswd").display());
            docker::run_detached(
                ctx,
                &name,
                &[
                    "-p",
                    &format!("{addr}:5000"),
                    "-v",
                    &data,
                    "-v",
                    &auth,
                    "-e",
                    "REGISTRY_AUTH=htpasswd",
                    "-e",
                    "REGISTRY_AUTH_HTPASSWD_REALM=local",
                    "-e",
                    "REGISTRY_AUTH_HTPASSWD_PATH=/auth/htpasswd",
                ],
                IMAGE,
            )?;
            server.container = Some(name);
        }
        server.wait_ready(dir)?;
        eprintln!("    throwaway registry on {addr} (user {USER}, generated password)");
        Ok(server)
    }

    /// Until the port answers HTTP (the registry replies 401 to an anonymous `/v2/`).
    fn wait_ready(&mut self, dir: &Path) -> Result<()> {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(15) {
            if let Some(status) = self.child.as_ref().and_then(Background::ended) {
                let log = std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default();
                let last = log
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("")
                    .to_string();
                return Err(exit::env(format!(
                    "docker-registry stopped at start (exit {status:?}): {last}"
                )));
            }
            if TcpStream::connect(&self.addr).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(exit::env(format!(
            "the throwaway registry did not answer on {} within 15 s",
            self.addr
        )))
    }
}

impl Drop for Server<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.child.take() {
            eprintln!("    stopping the throwaway registry on {}", self.addr);
            c.kill();
            let _ = c.wait();
        }
        if let Some(name) = self.container.take() {
            docker::stop(self.ctx, &name);
        }
    }
}

fn config_yml(dir: &Path, addr: &str) -> String {
    format!(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\nauth:\n  htpasswd:\n    realm: policy-platform-local\n    path: {}\n",
        dir.join("data").display(),
        dir.join("htpasswd").display()
    )
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("no free port on 127.0.0.1")?;
    Ok(l.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    #[test]
    fn config_has_auth_and_loopback_address() {
        let c = super::config_yml(std::path::Path::new("/x"), "127.0.0.1:5000");
        assert!(c.contains("addr: 127.0.0.1:5000"));
        assert!(c.contains("path: /x/htpasswd"));
        assert!(c.contains("rootdirectory: /x/data"));
    }
}
