//! A real registry for tests: Debian's `docker-registry` (CNCF distribution 2.8) with
//! htpasswd (bcrypt) auth on 127.0.0.1, a free port and temp storage, stopped on drop.
//!
//! Clients reach it through a small TCP relay on its public port, so a test can "stop the
//! registry after the first push": the relay counts manifest uploads and kills the real
//! server after the N-th; `restart()` brings it back on the same storage.
//! What was pushed is read with curl from the registry's HTTP API (not through the xtask).

use super::TempDir;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const USER: &str = "ci-user";

const ACCEPT: &str = "Accept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

struct Shared {
    backend_port: u16,
    child: Mutex<Option<Child>>,
    /// Kill the server after this many manifest uploads (0: never).
    stop_after: AtomicUsize,
    manifest_puts: AtomicUsize,
    closing: AtomicBool,
}

pub struct Registry {
    pub port: u16,
    pub password: String,
    /// No auth at all (a public registry's reads, e.g. where a base image comes from).
    pub open: bool,
    dir: TempDir,
    shared: Arc<Shared>,
    netrc: PathBuf,
}

impl Registry {
    /// A registry whose password is `password` (tests use a canary value).
    pub fn start(password: &str) -> Registry {
        Registry::start_with(password, false)
    }

    /// A registry anyone may read and write (no htpasswd): where a public base comes from.
    pub fn start_open() -> Registry {
        Registry::start_with("", true)
    }

    fn start_with(password: &str, open: bool) -> Registry {
        let dir = TempDir::new("registry");
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        // bcrypt, the password on stdin (never in argv).
        let mut h = Command::new("htpasswd")
            .args(["-Bin", USER])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("htpasswd runs (apt-get install apache2-utils)");
        h.stdin.take().unwrap().write_all(password.as_bytes()).unwrap();
        let out = h.wait_with_output().unwrap();
        assert!(out.status.success());
        std::fs::write(dir.path().join("htpasswd"), out.stdout).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let backend_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{backend_port}\n",
            dir.path().join("data").display(),
        );
        if !open {
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                dir.path().join("htpasswd").display()
            ));
        }
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let netrc = dir.path().join("netrc");
        std::fs::write(&netrc, format!("machine 127.0.0.1 login {USER} password {password}\n")).unwrap();
        let shared = Arc::new(Shared {
            backend_port,
            child: Mutex::new(None),
            stop_after: AtomicUsize::new(0),
            manifest_puts: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
        });
        let reg = Registry {
            port,
            password: password.to_string(),
            open,
            dir,
            shared: shared.clone(),
            netrc,
        };
        reg.restart();
        std::thread::spawn(move || relay(listener, shared));
        reg
    }

    /// `127.0.0.1:PORT`, what `--registry` takes.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The netrc file with this registry's credentials (for readers of its HTTP API).
    pub fn netrc_file(&self) -> &std::path::Path {
        &self.netrc
    }

    /// Starts (again) the real server on the same storage.
    pub fn restart(&self) {
        self.stop();
        let log = std::fs::File::create(self.dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(self.dir.path().join("config.yml"))
            .env_remove("REGISTRY_USERNAME")
            .env_remove("REGISTRY_PASSWORD")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry runs (apt-get install docker-registry)");
        *self.shared.child.lock().unwrap() = Some(child);
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.shared.backend_port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "docker-registry did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.shared.stop_after.store(0, Ordering::SeqCst);
    }

    pub fn stop(&self) {
        kill(&self.shared);
    }

    /// Kill the real server right after the `n`-th manifest upload from now.
    pub fn stop_after_pushes(&self, n: usize) {
        let done = self.shared.manifest_puts.load(Ordering::SeqCst);
        self.shared.stop_after.store(done + n, Ordering::SeqCst);
    }

    pub fn manifest_puts(&self) -> usize {
        self.shared.manifest_puts.load(Ordering::SeqCst)
    }

    fn curl(&self, args: &[&str]) -> String {
        let out = Command::new("curl")
            .args(["-s", "--max-time", "10", "--netrc-file"])
            .arg(&self.netrc)
            .args(args)
            .output()
            .expect("curl runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The repositories, from `GET /v2/_catalog`.
    pub fn catalog(&self) -> Vec<String> {
        let body = self.curl(&[&format!("http://{}/v2/_catalog", self.addr())]);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("catalog: {body}"));
        v["repositories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect()
    }

    /// The tags of a repository, sorted (empty when it does not exist).
    pub fn tags(&self, repo: &str) -> Vec<String> {
        let body = self.curl(&[&format!("http://{}/v2/{repo}/tags/list", self.addr())]);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let mut t: Vec<String> = v["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| r.as_str().unwrap().to_string())
            .collect();
        t.sort();
        t
    }

    /// `Docker-Content-Digest` of `HEAD /v2/<repo>/manifests/<tag>`, `None` on 404.
    pub fn digest(&self, repo: &str, tag: &str) -> Option<String> {
        let head = self.curl(&[
            "-I",
            "-H",
            ACCEPT,
            &format!("http://{}/v2/{repo}/manifests/{tag}", self.addr()),
        ]);
        if !head.starts_with("HTTP/1.1 200") {
            return None;
        }
        head.lines().find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("docker-content-digest:")
                .map(|d| d.trim().to_string())
        })
    }

    /// The config digest (= the Docker image id) behind a tag.
    pub fn config_digest(&self, repo: &str, tag: &str) -> Option<String> {
        let body = self.curl(&[
            "-H",
            ACCEPT,
            &format!("http://{}/v2/{repo}/manifests/{tag}", self.addr()),
        ]);
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        v["config"]["digest"].as_str().map(String::from)
    }

    /// Bytes of every file in the registry's storage (blobs, manifests, links): what a push
    /// made it store.
    pub fn storage_bytes(&self) -> u64 {
        fn walk(p: &std::path::Path) -> u64 {
            let Ok(entries) = std::fs::read_dir(p) else { return 0 };
            entries
                .flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => walk(&e.path()),
                    Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
                    _ => 0,
                })
                .sum()
        }
        walk(&self.dir.path().join("data"))
    }

    /// Every tag → digest of a repository.
    pub fn state(&self, repo: &str) -> Vec<(String, String)> {
        self.tags(repo)
            .into_iter()
            .map(|t| {
                let d = self.digest(repo, &t).unwrap_or_default();
                (t, d)
            })
            .collect()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.shared.closing.store(true, Ordering::SeqCst);
        kill(&self.shared);
        let _ = TcpStream::connect(("127.0.0.1", self.port)); // wake the relay's accept
    }
}

fn kill(shared: &Shared) {
    if let Some(mut c) = shared.child.lock().unwrap().take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// Accepts on the public port and relays to the real server; while it is down, every
/// connection is closed at once (what clients of a stopped registry see).
fn relay(listener: TcpListener, shared: Arc<Shared>) {
    for conn in listener.incoming() {
        if shared.closing.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = conn else { continue };
        let up = if shared.child.lock().unwrap().is_some() {
            TcpStream::connect(("127.0.0.1", shared.backend_port)).ok()
        } else {
            None
        };
        let Some(server) = up else {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        let put = Arc::new(AtomicBool::new(false));
        let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
        {
            let put = put.clone();
            std::thread::spawn(move || {
                pump(client, server, |chunk| {
                    if find(chunk, b"PUT /v2/") && find(chunk, b"/manifests/") {
                        put.store(true, Ordering::SeqCst);
                    }
                })
            });
        }
        let shared = shared.clone();
        std::thread::spawn(move || {
            pump(s2, c2, move |chunk| {
                if put.load(Ordering::SeqCst) && chunk.starts_with(b"HTTP/1.1 201") {
                    put.store(false, Ordering::SeqCst);
                    let n = shared.manifest_puts.fetch_add(1, Ordering::SeqCst) + 1;
                    let limit = shared.stop_after.load(Ordering::SeqCst);
                    if limit != 0 && n >= limit {
                        // The response has been read by the server side; let it reach the
                        // client first, then the registry goes away.
                        kill_later(shared.clone());
                    }
                }
            })
        });
    }
}

fn kill_later(shared: Arc<Shared>) {
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        kill(&shared);
    });
}

fn pump(mut from: TcpStream, mut to: TcpStream, mut seen: impl FnMut(&[u8])) {
    let mut buf = [0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                seen(&buf[..n]);
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

fn find(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Watches every process's argv (`/proc/*/cmdline`) for a secret while a test runs.
pub struct ArgvWatch {
    stop: Arc<AtomicBool>,
    hits: Arc<Mutex<Vec<String>>>,
    scans: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ArgvWatch {
    pub fn start(secret: &str) -> ArgvWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let hits = Arc::new(Mutex::new(Vec::new()));
        let scans = Arc::new(AtomicUsize::new(0));
        let (s, h, n, secret) = (stop.clone(), hits.clone(), scans.clone(), secret.as_bytes().to_vec());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                for e in std::fs::read_dir("/proc").unwrap().flatten() {
                    if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
                        if find(&cmd, &secret) {
                            h.lock().unwrap().push(String::from_utf8_lossy(&cmd).replace('\0', " "));
                        }
                    }
                }
                n.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        ArgvWatch {
            stop,
            hits,
            scans,
            thread: Some(thread),
        }
    }

    /// Stops watching; returns (argv lines that held the secret, how many scans ran).
    pub fn finish(mut self) -> (Vec<String>, usize) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        (self.hits.lock().unwrap().clone(), self.scans.load(Ordering::SeqCst))
    }
}

/// Pushes a local image to a registry as `repo:tag` (test setup only: a base image the
/// rebuild pulls). Logs in through a throwaway config with the password on stdin.
pub fn push_image(reg: &Registry, local: &str, repo: &str, tag: &str) -> String {
    let cfg = TempDir::new("docker-config");
    if reg.open {
        std::fs::write(cfg.path().join("config.json"), "{}\n").unwrap();
    } else {
        login(reg, &cfg);
    }
    let reference = format!("{}/{repo}:{tag}", reg.addr());
    assert!(Command::new("docker")
        .args(["tag", local, &reference])
        .status()
        .unwrap()
        .success());
    let out = Command::new("docker")
        .args(["push", &reference])
        .env("DOCKER_CONFIG", cfg.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "push {reference}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = Command::new("docker").args(["rmi", &reference]).output();
    reference
}

fn login(reg: &Registry, cfg: &TempDir) {
    let mut login = Command::new("docker")
        .args(["login", &reg.addr(), "-u", USER, "--password-stdin"])
        .env("DOCKER_CONFIG", cfg.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    login.stdin.take().unwrap().write_all(reg.password.as_bytes()).unwrap();
    assert!(login.wait().unwrap().success(), "test login");
}

/// skopeo with an auth file of its own (the password on stdin): what a registry holds.
pub struct Skopeo {
    dir: TempDir,
    reg: String,
}

impl Skopeo {
    pub fn login(reg: &Registry) -> Skopeo {
        let dir = TempDir::new("skopeo");
        let mut login = Command::new("skopeo")
            .args(["login", "--tls-verify=false", "--authfile"])
            .arg(dir.path().join("auth.json"))
            .args(["-u", USER, "--password-stdin", &reg.addr()])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("skopeo runs (apt-get install skopeo)");
        std::io::Write::write_all(&mut login.stdin.take().unwrap(), reg.password.as_bytes()).unwrap();
        assert!(login.wait().unwrap().success(), "skopeo login");
        Skopeo { dir, reg: reg.addr() }
    }

    pub fn inspect(&self, what: &[&str], repo: &str, tag: &str) -> serde_json::Value {
        serde_json::from_slice(&self.raw(what, repo, tag)).unwrap()
    }

    pub fn raw(&self, what: &[&str], repo: &str, tag: &str) -> Vec<u8> {
        let out = Command::new("skopeo")
            .arg("inspect")
            .args(what)
            .args(["--tls-verify=false", "--authfile"])
            .arg(self.dir.path().join("auth.json"))
            .arg(format!("docker://{}/{repo}:{tag}", self.reg))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skopeo inspect {repo}:{tag}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// The layer digests of `repo:tag`'s manifest, base first.
    pub fn layer_digests(&self, repo: &str, tag: &str) -> Vec<String> {
        self.layers(repo, tag).into_iter().map(|(d, _)| d).collect()
    }

    /// `(digest, compressed size)` of each layer, base first.
    pub fn layers(&self, repo: &str, tag: &str) -> Vec<(String, u64)> {
        let m = self.inspect(&["--raw"], repo, tag);
        m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| (l["digest"].as_str().unwrap().to_string(), l["size"].as_u64().unwrap()))
            .collect()
    }

    pub fn label(&self, repo: &str, tag: &str, key: &str) -> Option<String> {
        self.inspect(&["--config", "--raw"], repo, tag)["config"]["Labels"][key]
            .as_str()
            .map(String::from)
    }

    /// The image config and manifest sizes: the bytes a push sends besides its layers.
    pub fn config_and_manifest(&self, repo: &str, tag: &str) -> u64 {
        let raw = self.raw(&["--raw"], repo, tag);
        let m: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        m["config"]["size"].as_u64().unwrap() + raw.len() as u64
    }
}
