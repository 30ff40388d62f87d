//! The release signing key: `SIGNING_KEY_FILE` (PEM EC P-256; PKCS#8, SEC1 or encrypted
//! PKCS#8 with `SIGNING_KEY_PASSWORD` / `SIGNING_KEY_PASSWORD_FILE`) checked against the
//! public key committed in the repo (config `signing-public-key`) before anything is built.

use crate::ctx::Ctx;
use crate::exit;
use crate::tools::openssl::{self, Key};
use anyhow::Result;
use std::path::{Path, PathBuf};

/// What `main` read of the signing variables (the password is a secret).
#[derive(Clone)]
pub struct SigningInput {
    pub key_file: Option<PathBuf>,
    /// `Err`: the password variable could not be read (the message says why).
    pub password: Result<Option<String>, String>,
}

impl std::fmt::Debug for SigningInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pw = match &self.password {
            Ok(Some(_)) => "<redacted>",
            Ok(None) => "none",
            Err(_) => "<unreadable>",
        };
        write!(f, "SigningInput {{ key_file: {:?}, password: {pw} }}", self.key_file)
    }
}

impl Default for SigningInput {
    fn default() -> SigningInput {
        SigningInput {
            key_file: None,
            password: Ok(None),
        }
    }
}

/// A key that opened and matches the committed public key.
pub struct Signer {
    key_file: PathBuf,
    password: Option<String>,
    /// Where the committed public key (PEM) is.
    pub public_file: PathBuf,
    pub fingerprint: String,
}

impl Signer {
    pub fn key(&self) -> Key<'_> {
        Key {
            file: &self.key_file,
            password: self.password.as_deref(),
        }
    }

    /// A throwaway key pair of `publish --local` (`key.pem`, `cosign.pub` in `dir`).
    pub fn generated(ctx: &Ctx, dir: &Path) -> Result<Signer> {
        openssl::generate(ctx, dir)?;
        let public_file = dir.join("cosign.pub");
        let public_pem = std::fs::read_to_string(&public_file)?;
        let fingerprint = openssl::fingerprint(ctx, &public_pem)?;
        Ok(Signer {
            key_file: dir.join("key.pem"),
            password: None,
            public_file,
            fingerprint,
        })
    }
}

/// The signing setup of a publish: `Ok(None)` when the release is unsigned (nothing
/// configured); every mismatch is an input error (exit 2) naming what to fix.
pub fn load(ctx: &Ctx, input: &SigningInput) -> Result<Option<Signer>> {
    let configured = ctx.config()?.signing_public_key.clone();
    let Some(public_rel) = configured else {
        if let Some(k) = &input.key_file {
            return Err(exit::usage(format!(
                "SIGNING_KEY_FILE is set ({}), but no `signing-public-key` is configured: commit the public key (e.g. cosign.pub) and set `signing-public-key` in Cargo.toml, so that consumers can verify",
                k.display()
            )));
        }
        return Ok(None);
    };
    let public_file = ctx.path(&public_rel);
    let public_pem = read_public(&public_file, &public_rel)?;
    let committed = openssl::fingerprint(ctx, &public_pem).map_err(|e| {
        exit::usage(format!(
            "`signing-public-key` {public_rel} is not a PEM public key ({}); commit the release's public key",
            exit::one_line(&e)
        ))
    })?;
    if openssl::curve_of(ctx, &public_pem)?.as_deref() != Some("prime256v1") {
        return Err(exit::usage(format!("`signing-public-key` {public_rel} is not an EC P-256 key (cosign's keys are); commit the release's P-256 public key")));
    }
    let Some(key_file) = input.key_file.clone() else {
        return Err(exit::usage(format!(
            "signing is configured (`signing-public-key` = {public_rel}) but SIGNING_KEY_FILE is not set: point it at the release's private key (PEM)"
        )));
    };
    let password = input.password.clone().map_err(exit::usage)?;
    let meta = std::fs::metadata(&key_file)
        .map_err(|e| exit::usage(format!("SIGNING_KEY_FILE {} cannot be read ({e})", key_file.display())))?;
    if !meta.is_file() || meta.len() > 64 * 1024 {
        return Err(exit::usage(format!(
            "SIGNING_KEY_FILE {} is not a PEM key file (a regular file under 64 KiB)",
            key_file.display()
        )));
    }
    let key = Key {
        file: &key_file,
        password: password.as_deref(),
    };
    let public = openssl::public_of(ctx, &key)?;
    if openssl::curve_of(ctx, &public)?.as_deref() != Some("prime256v1") {
        return Err(exit::usage(format!(
            "SIGNING_KEY_FILE {} is not an EC P-256 key",
            key_file.display()
        )));
    }
    let ours = openssl::fingerprint(ctx, &public)?;
    if ours != committed {
        return Err(exit::usage(format!(
            "SIGNING_KEY_FILE's public key is {ours}, but the committed `signing-public-key` {public_rel} is {committed}: sign with the release key, or commit its public key"
        )));
    }
    Ok(Some(Signer {
        key_file,
        password,
        public_file,
        fingerprint: committed,
    }))
}

fn read_public(path: &Path, shown: &str) -> Result<String> {
    let meta = std::fs::metadata(path).map_err(|e| {
        exit::usage(format!(
            "`signing-public-key` {shown} cannot be read ({e}); commit the public key there"
        ))
    })?;
    if !meta.is_file() || meta.len() > 16 * 1024 {
        return Err(exit::usage(format!(
            "`signing-public-key` {shown} is not a PEM public key file"
        )));
    }
    std::fs::read_to_string(path).map_err(|e| exit::usage(format!("`signing-public-key` {shown}: {e}")))
}
