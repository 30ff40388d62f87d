//! openssl: EC P-256 keys (public half, fingerprint, a throwaway pair) and ECDSA-SHA256
//! signatures over files, the DER form cosign uses. A key's password reaches openssl on
//! stdin only (`-passin stdin`), never in argv.

use crate::ctx::Ctx;
use crate::exit;
use crate::runner::{Cmd, Out};
use anyhow::Result;
use std::path::Path;

/// A private key file and the password that opens it (if it is encrypted).
#[derive(Clone, Copy)]
pub struct Key<'a> {
    pub file: &'a Path,
    pub password: Option<&'a str>,
}

impl Key<'_> {
    /// The password on stdin. Without one, an explicitly empty password: an encrypted key
    /// then fails ("bad decrypt") instead of prompting on a terminal nobody watches (openssl
    /// reads a `-passin stdin` eagerly, even for a key that needs none).
    fn apply(&self, c: Cmd) -> Cmd {
        match self.password {
            Some(p) => c.args(["-passin", "stdin"]).secret_stdin(p),
            None => c.args(["-passin", "pass:"]),
        }
    }
}

fn openssl() -> Cmd {
    Cmd::new("openssl")
}

fn key_error(out: &Out, key: &Key<'_>) -> anyhow::Error {
    let e = out.stderr.to_ascii_lowercase();
    let shown = key.file.display();
    if e.contains("bad decrypt")
        || e.contains("maybe wrong password")
        || (e.contains("unable to load key") && key.password.is_some())
    {
        return exit::usage(format!(
            "SIGNING_KEY_PASSWORD (or SIGNING_KEY_PASSWORD_FILE) does not open {shown}; set the key's password"
        ));
    }
    if key.password.is_none() && (e.contains("unable to load") || e.contains("could not read")) && e.contains("key") {
        return exit::usage(format!(
            "{shown} could not be read as a PEM EC private key (an encrypted key needs SIGNING_KEY_PASSWORD or SIGNING_KEY_PASSWORD_FILE): {}",
            out.error_line()
        ));
    }
    exit::usage(format!(
        "{shown} is not a usable PEM EC P-256 private key: {}",
        out.error_line()
    ))
}

/// The PEM public key of a private key.
pub fn public_of(ctx: &Ctx, key: &Key<'_>) -> Result<String> {
    let out = ctx
        .run
        .read(&key.apply(openssl().args(["pkey", "-pubout", "-in"]).arg(key.file)))?;
    if !out.ok() {
        return Err(key_error(&out, key));
    }
    Ok(out.text())
}

/// `prime256v1` for a P-256 public key (PEM): the curve cosign's keys use.
pub fn curve_of(ctx: &Ctx, public_pem: &str) -> Result<Option<String>> {
    let out = ctx
        .run
        .read(&openssl().args(["pkey", "-pubin", "-noout", "-text"]).stdin(public_pem))?;
    if !out.ok() {
        return Ok(None);
    }
    Ok(out
        .text()
        .lines()
        .find_map(|l| l.trim().strip_prefix("ASN1 OID:").map(|c| c.trim().to_string())))
}

/// `SHA256:<hex>` of the DER SubjectPublicKeyInfo: how a key is named to people.
pub fn fingerprint(ctx: &Ctx, public_pem: &str) -> Result<String> {
    let out = ctx
        .run
        .read(&openssl().args(["pkey", "-pubin", "-outform", "DER"]).stdin(public_pem))?;
    if !out.ok() || out.stdout.is_empty() {
        return Err(exit::usage(format!("not a PEM public key: {}", out.error_line())));
    }
    Ok(format!("SHA256:{}", super::system::sha256_of(ctx, &out.stdout)?))
}

/// The DER ECDSA-SHA256 signature of a file's bytes. Skipped in a dry run (empty).
pub fn sign(ctx: &Ctx, key: &Key<'_>, data: &Path) -> Result<Vec<u8>> {
    let c = key
        .apply(openssl().args(["dgst", "-sha256", "-sign"]).arg(key.file))
        .arg(data);
    let Some(out) = ctx.run.change(&c)? else {
        return Ok(Vec::new());
    };
    if !out.ok() || out.stdout.is_empty() {
        return Err(key_error(&out, key));
    }
    Ok(out.stdout)
}

/// Whether `signature` (a DER file) over `data` verifies with the PEM public key file.
pub fn verify(ctx: &Ctx, public: &Path, signature: &Path, data: &Path) -> Result<bool> {
    let c = openssl()
        .args(["dgst", "-sha256", "-verify"])
        .arg(public)
        .arg("-signature")
        .arg(signature)
        .arg(data);
    let out = ctx.run.read(&c)?;
    match out.code {
        Some(0) => Ok(out.text().contains("Verified OK")),
        Some(1) => Ok(false),
        _ => Err(exit::env(format!(
            "openssl could not verify a signature: {}",
            out.error_line()
        ))),
    }
}

/// A new P-256 key pair: `key.pem` (PKCS#8, mode 0600) and `cosign.pub` in `dir`.
pub fn generate(ctx: &Ctx, dir: &Path) -> Result<()> {
    let key = dir.join("key.pem");
    // openssl opens its output by path: whatever is there (a planted symlink) goes first.
    for f in [key.clone(), dir.join("cosign.pub")] {
        match std::fs::remove_file(&f) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
    }
    let c = openssl()
        .args([
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
        ])
        .arg(&key);
    let out = ctx.run.read(&c)?;
    out.env_ok("openssl could not make a key pair")?;
    crate::files::restrict(&key)?;
    let out = ctx.run.read(
        &openssl()
            .args(["pkey", "-pubout", "-in"])
            .arg(&key)
            .arg("-out")
            .arg(dir.join("cosign.pub")),
    )?;
    out.env_ok("openssl could not write the public key")?;
    Ok(())
}
