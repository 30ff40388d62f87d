//! `publish --local`: a throwaway registry on 127.0.0.1 (Debian's `docker-registry`, else a
//! local `registry:2` image) with htpasswd auth and generated credentials; publishes to it,
//! prints how to pull the result, and stops the registry, also on failure.
//!
//! Its storage and credentials stay in `target/xtask/local-registry/` (mode 0700), so the
//! printed recipe still pulls the release after the registry stopped.

use super::plan::Target;
use super::preflight::Problems;
use super::registry::Creds;
use crate::{cli::Args, ctx::Ctx, exit, tools};
use anyhow::{Context, Result};
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const USER: &str = "publish";
const IMAGE: &str = "registry:2";

pub fn run(ctx: &Ctx, args: &Args) -> Result<()> {
    if args.has("--registry") {
        return Err(exit::usage("--local publishes to its own throwaway registry; drop --registry (or drop --local)"));
    }
    let dir = if ctx.dry_run { std::env::temp_dir().join(format!("pp-publish-local-{}", std::process::id())) } else { ctx.path("target/xtask/local-registry") };
    let server = Server::start(ctx, &dir)?;
    let target = Target::parse(&server.addr).map_err(exit::usage)?;
    let creds = Creds::new(USER.to_string(), server.password.clone());
    let released = super::release(ctx, args, vec![target], Ok(creds), Problems::default());
    let addr = server.addr.clone();
    drop(server);
    if ctx.dry_run {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let released = released?;
    if ctx.dry_run {
        return Ok(());
    }
    let rel = |p: &str| dir.join(p).strip_prefix(&ctx.root).map(Path::to_path_buf).unwrap_or_else(|_| dir.join(p));
    println!();
    println!("Published {} to the throwaway registry {addr} (now stopped; its storage is kept).", crate::version::tag(&released.version));
    println!("To pull it:");
    println!("  docker-registry serve {} &", rel("config.yml").display());
    println!("  docker login {addr} -u {USER} --password-stdin < {}", rel("password").display());
    for p in &released.pushed {
        println!("  docker pull {}@{}", p.repo, p.digest);
    }
    Ok(())
}

/// A running registry; stopped on drop.
struct Server {
    addr: String,
    password: String,
    child: Option<Child>,
    container: Option<String>,
}

impl Server {
    fn start(ctx: &Ctx, dir: &Path) -> Result<Server> {
        use std::os::unix::fs::DirBuilderExt;
        tools::require(&["docker", "htpasswd"])?;
        let native = tools::find("docker-registry").is_some();
        if !native {
            let has_image = ctx.probe_output(ctx.sh.cmd("docker").args(["image", "inspect", "--format", "{{.Id}}", IMAGE]))?;
            if !has_image.status.success() {
                return Err(exit::env(format!(
                    "--local needs a registry: install Debian's docker-registry (apt-get install docker-registry) or load the {IMAGE} image"
                )));
            }
        }
        // Only this folder is private (credentials inside); its parents keep the usual mode.
        std::fs::create_dir_all(dir.parent().unwrap_or(dir)).with_context(|| format!("cannot create {}", dir.display()))?;
        for d in [dir.to_path_buf(), dir.join("data")] {
            if let Err(e) = std::fs::DirBuilder::new().mode(0o700).create(&d) {
                if e.kind() != std::io::ErrorKind::AlreadyExists {
                    return Err(e).with_context(|| format!("cannot create {}", d.display()));
                }
            }
        }
        let pw_file = dir.join("password");
        let password = match std::fs::read_to_string(&pw_file) {
            Ok(p) if p.len() >= 32 && dir.join("htpasswd").exists() => p.trim().to_string(),
            _ => {
                let p = random_hex(16)?;
                write_private(&pw_file, &p)?;
                // bcrypt (the only hash the registry takes); the password on stdin, never in argv.
                let cmd = ctx.sh.cmd("htpasswd").args(["-Bin", USER]).stdin(p.as_bytes());
                ctx.echo(&cmd);
                let line = cmd.quiet().read().context("htpasswd failed")?;
                write_private(&dir.join("htpasswd"), &(line + "\n"))?;
                p
            }
        };
        let port = free_port()?;
        let addr = format!("127.0.0.1:{port}");
        let mut server = Server { addr: addr.clone(), password, child: None, container: None };
        if native {
            let config = dir.join("config.yml");
            write_private(&config, &config_yml(dir, &addr))?;
            let log = std::fs::File::create(dir.join("registry.log"))?;
            eprintln!("$ docker-registry serve {}", config.display());
            let child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config)
                // The registry reads REGISTRY_* variables as config overrides.
                .env_remove(super::registry::USER_VAR)
                .env_remove(super::registry::PASSWORD_VAR)
                .env_remove(super::registry::PASSWORD_FILE_VAR)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .context("cannot start docker-registry")?;
            server.child = Some(child);
        } else {
            let name = format!("pp-publish-registry-{}", std::process::id());
            let data = format!("{}:/var/lib/registry", dir.join("data").display());
            let auth = format!("{}:/auth/htpasswd:ro", dir.join("htpasswd").display());
            let cmd = ctx.sh.cmd("docker").args(["run", "-d", "--rm", "--name", &name, "-p", &format!("{addr}:5000"), "-v", &data, "-v", &auth]).args([
                "-e",
                "REGISTRY_AUTH=htpasswd",
                "-e",
                "REGISTRY_AUTH_HTPASSWD_REALM=local",
                "-e",
                "REGISTRY_AUTH_HTPASSWD_PATH=/auth/htpasswd",
                IMAGE,
            ]);
            ctx.echo(&cmd);
            cmd.quiet().ignore_stdout().run().context("cannot start the registry container")?;
            server.container = Some(name);
        }
        server.wait_ready(ctx, dir)?;
        eprintln!("    throwaway registry on {addr} (user {USER}, generated password)");
        Ok(server)
    }

    /// Until the port answers HTTP (the registry replies 401 to an anonymous `/v2/`).
    fn wait_ready(&mut self, ctx: &Ctx, dir: &Path) -> Result<()> {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(15) {
            if let Some(c) = &mut self.child {
                if let Some(status) = c.try_wait()? {
                    let log = std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default();
                    let last = log.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").to_string();
                    return Err(exit::env(format!("docker-registry stopped at start ({status}): {last}")));
                }
            }
            if TcpStream::connect(&self.addr).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = ctx;
        Err(exit::env(format!("the throwaway registry did not answer on {} within 15 s", self.addr)))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            eprintln!("    stopping the throwaway registry on {}", self.addr);
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(name) = self.container.take() {
            let _ = Command::new("docker").args(["stop", "-t", "1", &name]).stdout(Stdio::null()).stderr(Stdio::null()).status();
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

fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

fn write_private(path: &PathBuf, content: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(content.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn config_has_auth_and_loopback_address() {
        let c = super::config_yml(std::path::Path::new("/x"), "127.0.0.1:5000");
        assert!(c.contains("addr: 127.0.0.1:5000"));
        assert!(c.contains("path: /x/htpasswd"));
        assert!(c.contains("rootdirectory: /x/data"));
        assert_eq!(super::random_hex(16).unwrap().len(), 32);
    }
}
