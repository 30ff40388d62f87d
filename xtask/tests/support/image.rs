//! Building the real Dockerfile in tests: the stand-ins of `tests/standins/` packed into
//! tarballs with the upstream layouts, served from a loopback HTTP server, and the
//! `cargo xtask image` arguments that point the Dockerfile at them.
//!
//! ```ignore
//! let server = support::image::ToolServer::start();          // stand-ins at the pinned versions
//! let run = repo.xtask(&support::image::xtask_args("image", &server)); // builds the real Dockerfile
//! ```
//! The server stops when dropped. `server.tamper("kyverno")` serves other bytes than the
//! sha256 the build arguments declare; `ToolServer::start_with(&[("pluto", "5.0.0")])`
//! packs a stand-in that reports another version than the pinned one.

use super::http::FileServer;
use super::{busybox_base, repo_root, TempDir, TempRepo};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::Command;

pub const TOOLS: [&str; 3] = ["kyverno", "helm", "pluto"];

/// What the Dockerfile adds to its base, one layer each, in this order (the rarest change
/// first).
pub const PARTS: [&str; 5] = ["user", "pluto", "helm", "kyverno", "policies"];

/// The index of a part's layer in an image whose base has `base_layers` layers.
pub fn layer_of(part: &str, base_layers: usize) -> usize {
    base_layers + PARTS.iter().position(|p| *p == part).unwrap()
}

/// The versions the repo's Dockerfile pins (`ARG KYVERNO_VERSION=...`), without a `v`.
pub fn pinned_versions() -> BTreeMap<String, String> {
    let df = std::fs::read_to_string(repo_root().join("Dockerfile")).expect("read Dockerfile");
    // The xtask's own reading of the Dockerfile (one parser, not a second one here).
    xtask::tags::tool_pins(&xtask::tags::dockerfile_args(&df, &[]))
}

/// The upstream release file name (linux/amd64), as the xtask's `--tools-mirror` expects.
pub fn upstream_file(tool: &str, version: &str) -> String {
    xtask::image::plan::upstream_file(tool, version).unwrap_or_else(|| panic!("unknown tool {tool}"))
}

/// Where a tool's binary sits in its release tarball.
pub fn member(tool: &str) -> &'static str {
    match tool {
        "helm" => "linux-amd64/helm",
        "kyverno" => "kyverno",
        "pluto" => "pluto",
        _ => panic!("unknown tool {tool}"),
    }
}

/// The stand-in script of a tool with `@VERSION@` replaced.
pub fn standin(tool: &str, version: &str) -> String {
    let path = repo_root().join("xtask/tests/standins").join(tool);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read stand-in {}: {e}", path.display()));
    assert!(
        text.contains("@VERSION@"),
        "{} has no @VERSION@ placeholder",
        path.display()
    );
    text.replace("@VERSION@", version)
}

/// A release tarball in the upstream layout holding `script` as the tool's binary (plus
/// the LICENSE/README files upstream ships next to it). Returns the gzip'd tar bytes.
pub fn pack(tool: &str, script: &str) -> Vec<u8> {
    let tmp = TempDir::new("pack");
    let tree = tmp.path().join("tree");
    let bin = tree.join(member(tool));
    let dir = bin.parent().unwrap().to_path_buf();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(&bin, script).unwrap();
    std::fs::write(dir.join("LICENSE"), "Apache License 2.0 (test stand-in package)\n").unwrap();
    if tool != "kyverno" {
        std::fs::write(dir.join("README.md"), format!("{tool} test stand-in\n")).unwrap();
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = tmp.path().join("t.tar.gz");
    let top = if tool == "helm" {
        vec!["linux-amd64".to_string()]
    } else {
        list(&tree)
    };
    let ok = Command::new("tar")
        .args(["--owner=0", "--group=0", "--numeric-owner", "-czf"])
        .arg(&out)
        .arg("-C")
        .arg(&tree)
        .args(&top)
        .status()
        .unwrap();
    assert!(ok.success(), "tar failed");
    std::fs::read(out).unwrap()
}

fn list(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// sha256 of some bytes, by the system's `sha256sum`.
pub fn sha256(bytes: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha256sum runs");
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// One tool as served: the version the build declares, its file name and the sha256 the
/// build arguments carry.
#[derive(Clone, Debug)]
pub struct Tool {
    pub name: String,
    pub version: String,
    pub file: String,
    pub sha256: String,
}

/// A loopback HTTP server with the stand-in tarballs, stopped on drop.
pub struct ToolServer {
    pub tools: Vec<Tool>,
    http: FileServer,
}

impl ToolServer {
    /// Stand-ins that report exactly the pinned versions.
    pub fn start() -> ToolServer {
        ToolServer::start_with(&[])
    }

    /// Like `start`, but the listed tools' stand-ins report another version than the one
    /// the build declares (the label still carries the pinned version).
    pub fn start_with(reported: &[(&str, &str)]) -> ToolServer {
        let pins = pinned_versions();
        let http = FileServer::start(&[]);
        let mut tools = Vec::new();
        for tool in TOOLS {
            let version = pins
                .get(tool)
                .unwrap_or_else(|| panic!("Dockerfile pins no {tool} version"))
                .clone();
            let says = reported
                .iter()
                .find(|(t, _)| *t == tool)
                .map(|(_, v)| v.to_string())
                .unwrap_or(version.clone());
            let bytes = pack(tool, &standin(tool, &says));
            let file = upstream_file(tool, &version);
            tools.push(Tool {
                name: tool.to_string(),
                version,
                file: file.clone(),
                sha256: sha256(&bytes),
            });
            http.put(&file, bytes);
        }
        ToolServer { tools, http }
    }

    /// `http://127.0.0.1:PORT`: every tool's upstream file name is served under it.
    pub fn base_url(&self) -> String {
        self.http.base_url()
    }

    pub fn tool(&self, name: &str) -> &Tool {
        self.tools
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no tool {name}"))
    }

    pub fn url(&self, name: &str) -> String {
        format!("{}/{}", self.base_url(), self.tool(name).file)
    }

    /// From now on serve a tarball for `name` whose bytes differ from the declared sha256.
    pub fn tamper(&self, name: &str) {
        let t = self.tool(name);
        let bytes = pack(name, &format!("{}\n# tampered\n", standin(name, &t.version)));
        assert_ne!(sha256(&bytes), t.sha256);
        self.http.put(&t.file, bytes);
    }

    /// Also serve another release of `name`: its stand-in reporting `version`, under that
    /// version's upstream file name. Returns it (build it with `release_args`).
    pub fn add_release(&self, name: &str, version: &str) -> Tool {
        let bytes = pack(name, &standin(name, version));
        let file = upstream_file(name, version);
        let tool = Tool {
            name: name.to_string(),
            version: version.to_string(),
            file: file.clone(),
            sha256: sha256(&bytes),
        };
        self.http.put(&file, bytes);
        tool
    }

    /// `--build-arg T_VERSION/T_URL/T_SHA256` pointing at one release this server holds.
    pub fn release_args(&self, tool: &Tool) -> Vec<String> {
        self.args_of(tool, true)
    }

    /// The same, without `T_URL` when `url` is false (`--tools-mirror` gives the URLs).
    fn args_of(&self, tool: &Tool, url: bool) -> Vec<String> {
        let up = tool.name.to_ascii_uppercase();
        let mut kv = vec![format!("{up}_VERSION={}", tool.version)];
        if url {
            kv.push(format!("{up}_URL={}/{}", self.base_url(), tool.file));
        }
        kv.push(format!("{up}_SHA256={}", tool.sha256));
        kv.into_iter().flat_map(|kv| ["--build-arg".to_string(), kv]).collect()
    }

    /// Also serve `bytes` as `/<name>` (e.g. a checksum file next to a release).
    pub fn put(&self, name: &str, bytes: impl Into<Vec<u8>>) {
        self.http.put(name, bytes);
    }

    /// Stop serving `/<name>` (it answers 404 from now on).
    pub fn remove(&self, name: &str) {
        self.http.remove(name);
    }

    /// Paths requested so far (e.g. `/helm-v3.21.4-linux-amd64.tar.gz`).
    pub fn requests(&self) -> Vec<String> {
        self.http.requests()
    }
}

/// `--build-arg BASE_IMAGE=<base>` and `DOWNLOAD_IMAGE=<base>`: every stage of the
/// Dockerfile on `base`.
pub fn base_args(base: &str) -> Vec<String> {
    ["BASE_IMAGE", "DOWNLOAD_IMAGE"]
        .into_iter()
        .flat_map(|arg| ["--build-arg".to_string(), format!("{arg}={base}")])
        .collect()
}

/// Each tool's `--build-arg T_VERSION/T_URL/T_SHA256` pointing at `server`; without
/// `T_URL` when `urls` is false (`--tools-mirror` gives the URLs).
pub fn tool_args(server: &ToolServer, urls: bool) -> Vec<String> {
    server.tools.iter().flat_map(|t| server.args_of(t, urls)).collect()
}

/// The `--build-arg`s (BASE_IMAGE and DOWNLOAD_IMAGE = the busybox test base; each tool's
/// VERSION, URL and SHA256 pointing at `server`) and `--network host`, as arguments for
/// `cargo xtask image` or `publish`.
pub fn build_args(server: &ToolServer) -> Vec<String> {
    let mut a = base_args(&busybox_base());
    a.extend(tool_args(server, true));
    a.extend(["--network".to_string(), "host".to_string()]);
    a
}

/// `[task, build args...]` as `&str`-ready strings: `repo.xtask(&as_strs(&xtask_args("image", &s)))`.
pub fn xtask_args(task: &str, server: &ToolServer) -> Vec<String> {
    let mut v = vec![task.to_string()];
    v.extend(build_args(server));
    v
}

pub fn as_strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Removes images (by reference or id) when dropped, so a failing test cleans up too.
#[derive(Default)]
pub struct ImageGuard(pub Vec<String>);

impl ImageGuard {
    /// The three local tags `cargo xtask image` gives `name` built from `repo`:
    /// `{name}:{VERSION}`, `{name}:sha-<head, 7>` and `{name}:latest`.
    pub fn release_tags(name: &str, repo: &TempRepo) -> ImageGuard {
        let (version, head) = (repo.read("VERSION").trim().to_string(), repo.head());
        ImageGuard(
            [version, format!("sha-{}", &head[..7]), "latest".to_string()]
                .iter()
                .map(|t| format!("{name}:{t}"))
                .collect(),
        )
    }

    pub fn add(&mut self, reference: impl Into<String>) {
        self.0.push(reference.into());
    }
}

impl Drop for ImageGuard {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            let _ = Command::new("docker").arg("rmi").arg("-f").args(&self.0).output();
        }
    }
}
