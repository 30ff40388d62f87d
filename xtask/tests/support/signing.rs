//! Signing in tests: key pairs made by the real openssl in a temp folder outside any repo
//! copy (passwords on stdin), a repo copy set up to sign (`cosign.pub` committed,
//! `signing-public-key` set), and the independent checker `cosign_check.py` (Python's
//! `cryptography`, written from cosign's published formats, reading the registry over its
//! HTTP API), so that what the xtask pushes is never judged by the xtask's own code.

use super::registry::Registry;
use super::{repo_root, TempDir, TempRepo};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A private key file, its public key (PEM) and the password that opens it.
#[derive(Clone, Debug)]
pub struct KeyPair {
    pub key: PathBuf,
    pub public: PathBuf,
    pub password: Option<String>,
}

impl KeyPair {
    /// The private key file's text (a secret: it must show up nowhere).
    pub fn pem(&self) -> String {
        std::fs::read_to_string(&self.key).unwrap()
    }

    /// The base64 lines of a PEM, joined: what would leak if the key leaked.
    pub fn body(pem: &str) -> Vec<String> {
        pem.lines()
            .filter(|l| !l.starts_with("-----") && l.len() > 40)
            .map(String::from)
            .collect()
    }
}

/// A folder of key pairs (removed on drop), outside every repo copy.
pub struct Keys {
    pub dir: TempDir,
}

impl Default for Keys {
    fn default() -> Keys {
        Keys::new()
    }
}

fn openssl(args: &[&str], stdin: Option<&str>) -> Vec<u8> {
    let mut c = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl runs");
    let mut input = c.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
        input.write_all(b"\n").unwrap();
    }
    drop(input);
    let out = c.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

impl Keys {
    pub fn new() -> Keys {
        Keys {
            dir: TempDir::new("keys"),
        }
    }

    fn paths(&self, name: &str) -> (PathBuf, PathBuf) {
        (
            self.dir.path().join(format!("{name}.key")),
            self.dir.path().join(format!("{name}.pub")),
        )
    }

    fn public_of(&self, key: &Path, public: &Path, password: Option<&str>) {
        let (k, p) = (key.to_str().unwrap(), public.to_str().unwrap());
        match password {
            Some(pw) => openssl(&["pkey", "-in", k, "-passin", "stdin", "-pubout", "-out", p], Some(pw)),
            None => openssl(&["pkey", "-in", k, "-pubout", "-out", p], None),
        };
    }

    /// A plain PKCS#8 P-256 key (`openssl genpkey`).
    pub fn pkcs8(&self, name: &str) -> KeyPair {
        self.genpkey(name, "P-256")
    }

    /// A plain PKCS#8 key on `curve`, no password.
    fn genpkey(&self, name: &str, curve: &str) -> KeyPair {
        let (key, public) = self.paths(name);
        let param = format!("ec_paramgen_curve:{curve}");
        openssl(
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                &param,
                "-out",
                key.to_str().unwrap(),
            ],
            None,
        );
        self.public_of(&key, &public, None);
        KeyPair {
            key,
            public,
            password: None,
        }
    }

    /// A SEC1 P-256 key (`openssl ecparam -genkey`: `BEGIN EC PRIVATE KEY`).
    pub fn sec1(&self, name: &str) -> KeyPair {
        let (key, public) = self.paths(name);
        openssl(
            &[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                key.to_str().unwrap(),
            ],
            None,
        );
        assert!(std::fs::read_to_string(&key)
            .unwrap()
            .starts_with("-----BEGIN EC PRIVATE KEY-----"));
        self.public_of(&key, &public, None);
        KeyPair {
            key,
            public,
            password: None,
        }
    }

    /// A P-384 key: not cosign's curve.
    pub fn p384(&self, name: &str) -> KeyPair {
        self.genpkey(name, "P-384")
    }

    /// An encrypted PKCS#8 P-256 key (AES-256), its password given on stdin.
    pub fn encrypted(&self, name: &str, password: &str) -> KeyPair {
        let (key, public) = self.paths(name);
        let k = key.to_str().unwrap();
        openssl(
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-aes-256-cbc",
                "-pass",
                "stdin",
                "-out",
                k,
            ],
            Some(password),
        );
        assert!(std::fs::read_to_string(&key)
            .unwrap()
            .starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
        self.public_of(&key, &public, Some(password));
        KeyPair {
            key,
            public,
            password: Some(password.to_string()),
        }
    }

    /// The decrypted PKCS#8 form of an encrypted key (to watch for it leaking).
    pub fn decrypted(&self, pair: &KeyPair) -> String {
        let pw = pair.password.as_deref().expect("an encrypted key");
        let out = openssl(
            &["pkey", "-in", pair.key.to_str().unwrap(), "-passin", "stdin"],
            Some(pw),
        );
        String::from_utf8(out).unwrap()
    }
}

/// Commits `public` as `cosign.pub` in `repo`, sets `signing-public-key` and (when any)
/// the configured `registries` in its Cargo.toml.
pub fn configure(repo: &TempRepo, public: &Path, registries: &[&Registry]) {
    std::fs::copy(public, repo.path().join("cosign.pub")).unwrap();
    let mut toml = repo.read("Cargo.toml");
    if !toml.contains("signing-public-key") {
        toml = toml.replacen(
            "registries = []",
            "registries = []\nsigning-public-key = \"cosign.pub\"",
            1,
        );
        assert!(
            toml.contains("signing-public-key"),
            "Cargo.toml has no `registries = []` to put the key beside"
        );
    }
    if !registries.is_empty() {
        let list: Vec<String> = registries.iter().map(|r| format!("\"{}\"", r.addr())).collect();
        toml = toml.replacen("registries = []", &format!("registries = [{}]", list.join(", ")), 1);
    }
    repo.write("Cargo.toml", &toml);
    repo.commit("sign releases");
}

fn script() -> PathBuf {
    repo_root().join("xtask/tests/support/cosign_check.py")
}

/// Python's `cryptography` must be there (`.ci/setup` installs it): the independent check
/// is never skipped.
pub fn need_python() {
    let ok = Command::new("python3")
        .args(["-c", "import cryptography"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "this test needs python3 with `cryptography` (bash .ci/setup)");
}

/// `SHA256:<hex>` of a public key's DER SubjectPublicKeyInfo, computed by `cryptography`.
pub fn fingerprint(public: &Path) -> String {
    let out = Command::new("python3")
        .arg(script())
        .arg("fingerprint")
        .arg("--key")
        .arg(public)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "fingerprint: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The checker's verdict on `addr/repo@digest`: its JSON report, or (exit code, why).
pub fn check_at(addr: &str, netrc: &Path, repo: &str, digest: &str, public: &Path) -> Result<Value, (i32, String)> {
    let out = Command::new("python3")
        .arg(script())
        .args(["verify", "--registry", addr, "--repository", repo, "--digest", digest])
        .arg("--netrc")
        .arg(netrc)
        .arg("--key")
        .arg(public)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    match out.status.code() {
        Some(0) => Ok(serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("report: {e}; {err}"))),
        Some(c) if c == 1 || c == 3 => Err((c, err)),
        c => panic!("cosign_check.py failed ({c:?}): {err}"),
    }
}

/// [`check_at`] for a test registry.
pub fn check(reg: &Registry, repo: &str, digest: &str, public: &Path) -> Result<Value, (i32, String)> {
    check_at(&reg.addr(), reg.netrc_file(), repo, digest, public)
}

/// `netrc` for a registry on 127.0.0.1 (written in `dir`, mode 0600).
pub fn netrc_in(dir: &Path, user: &str, password: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let f = dir.join("netrc");
    std::fs::write(&f, format!("machine 127.0.0.1 login {user} password {password}\n")).unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    f
}

/// `DELETE /v2/<repo>/manifests/<digest>` (the test registries allow deletes): every tag
/// of that manifest goes.
pub fn delete_manifest(reg: &Registry, repo: &str, digest: &str) {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "DELETE",
            "--netrc-file",
        ])
        .arg(reg.netrc_file())
        .arg(format!("http://{}/v2/{repo}/manifests/{digest}", reg.addr()))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "202", "delete {repo}@{digest}");
}

/// `skopeo copy` of `repo:from` to `repo:to` in one registry, byte for byte, with a
/// throwaway auth file (the password never in argv).
pub fn copy_tag(reg: &Registry, repo: &str, from: &str, to: &str) {
    let dir = TempDir::new("authfile");
    let auth = base64(&format!("{}:{}", super::registry::USER, reg.password));
    let file = dir.path().join("auth.json");
    std::fs::write(
        &file,
        format!("{{\"auths\":{{\"{}\":{{\"auth\":\"{auth}\"}}}}}}", reg.addr()),
    )
    .unwrap();
    let out = Command::new("skopeo")
        .args([
            "copy",
            "--preserve-digests",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--authfile",
        ])
        .arg(&file)
        .arg(format!("docker://{}/{repo}:{from}", reg.addr()))
        .arg(format!("docker://{}/{repo}:{to}", reg.addr()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Standard base64 by coreutils' `base64` (the text on stdin).
fn base64(s: &str) -> String {
    let mut c = Command::new("base64")
        .arg("-w0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    String::from_utf8(c.wait_with_output().unwrap().stdout).unwrap()
}

/// One more attestation, signed by `private_key`, in `repo@digest`'s `.att` (what
/// `cosign attest --key` of another party does); the new `.att` manifest's digest.
pub fn append_attestation(
    reg: &Registry,
    repo: &str,
    digest: &str,
    private_key: &Path,
    predicate_type: &str,
) -> String {
    let out = Command::new("python3")
        .arg(script())
        .args([
            "append-attestation",
            "--registry",
            &reg.addr(),
            "--repository",
            repo,
            "--digest",
            digest,
        ])
        .args(["--predicate-type", predicate_type, "--netrc"])
        .arg(reg.netrc_file())
        .arg("--private-key")
        .arg(private_key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "append-attestation: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}
