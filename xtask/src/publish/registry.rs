//! Registry credentials and the session that uses them: a throwaway Docker config folder
//! (private, random name, removed at the end, also when the process is killed) holding the
//! logins of this run, handed only to docker login/push/pull and skopeo. The [`Registry`]
//! the executor writes through.

use super::plan::{Remote, Target};
use super::push::{Registry, Uploaded};
use super::transfer::{self, Transfer, Upload};
use crate::ctx::Ctx;
use crate::exit;
use crate::files::TempDir;
use crate::tools::{docker, retry, skopeo, Auth};
use anyhow::{Context, Result};

pub const USER_VAR: &str = "REGISTRY_USERNAME";
pub const PASSWORD_VAR: &str = "REGISTRY_PASSWORD";
pub const PASSWORD_FILE_VAR: &str = "REGISTRY_PASSWORD_FILE";

/// Registry credentials; the secret never shows in `Debug`.
#[derive(Clone)]
pub struct Creds {
    pub user: String,
    secret: String,
}

impl std::fmt::Debug for Creds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Creds {{ user: {:?}, secret: <redacted> }}", self.user)
    }
}

/// Where a publish gets its registry credentials.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// `REGISTRY_USERNAME` with a password: logged in through a throwaway config.
    Given(Creds),
    /// No `REGISTRY_*` at all: the user's own Docker login.
    User,
    /// `REGISTRY_*` set but incomplete or unreadable: what is wrong, each with its fix.
    Broken(Vec<String>),
}

impl Creds {
    pub fn new(user: String, secret: String) -> Creds {
        Creds { user, secret }
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }
}

/// The credentials folder of a run and the logins in it; removed on drop (and by the
/// run's watchdog when the process is killed: see `cleanup`).
pub struct Session<'a> {
    ctx: &'a Ctx,
    auth: Auth,
    _dir: Option<TempDir>,
}

impl<'a> Session<'a> {
    /// A new private folder whose `config.json` names each registry in `auths` (so Docker
    /// never picks a credential store or helper: the logins land in this file only).
    pub fn new(ctx: &'a Ctx, targets: &[Target]) -> Result<Session<'a>> {
        let dir = crate::cleanup::temp_dir(ctx, "auth").context("cannot create the credentials folder")?;
        let auths: serde_json::Map<String, serde_json::Value> = targets
            .iter()
            .map(|t| (t.host.clone(), serde_json::json!({})))
            .collect();
        dir.write_private(
            "config.json",
            format!("{}\n", serde_json::json!({ "auths": auths })).as_bytes(),
        )?;
        let path = dir.path().to_path_buf();
        eprintln!(
            "    (credentials go to a throwaway DOCKER_CONFIG={}, removed at the end)",
            path.display()
        );
        Ok(Session {
            ctx,
            auth: Auth::Throwaway(path),
            _dir: Some(dir),
        })
    }

    /// The user's own Docker configuration (their `docker login`, credential helpers
    /// included), read and never written.
    pub fn user(ctx: &'a Ctx, dir: std::path::PathBuf) -> Session<'a> {
        eprintln!(
            "    (no REGISTRY_* credentials: using your own Docker login in {})",
            dir.display()
        );
        Session {
            ctx,
            auth: Auth::User(dir),
            _dir: None,
        }
    }

    /// With the user's own login: whether it can read the registry (the repository may
    /// not exist yet). Exit 3 naming the registry and the fix.
    pub fn check_read(&self, t: &Target, image: &str) -> Result<()> {
        self.list_tags(t, image).map(|_| ()).map_err(|e| {
            exit::env(format!(
                "your Docker login cannot read {} ({}); run `docker login {}` (or your registry's credential helper setup), or set {USER_VAR} and {PASSWORD_VAR}",
                t.spec,
                exit::one_line(&e),
                t.host
            ))
        })
    }

    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    pub fn access(&self, t: &Target) -> skopeo::Access {
        // Plain HTTP is allowed for this machine's own registries, never elsewhere.
        skopeo::Access {
            authfile: Some(self.auth.authfile()),
            tls_verify: !t.is_loopback(),
        }
    }

    /// `docker login -u USER --password-stdin -- HOST`, the secret on stdin only. It really
    /// runs in a dry run too (it checks the credentials). Refused credentials are exit 3.
    pub fn login(&self, t: &Target, creds: &Creds) -> Result<()> {
        let cmd = docker::login_cmd(&self.auth, &t.host, &creds.user, &creds.secret);
        let mut last = String::new();
        for n in 0..=retry::RETRIES {
            let out = self.ctx.run.check(&cmd)?;
            if out.ok() {
                return Ok(());
            }
            last = out.error_line();
            if !retry::is_transient(&last) || n == retry::RETRIES {
                break;
            }
            std::thread::sleep(retry::backoff(n));
        }
        Err(exit::env(format!(
            "login to {} as {} failed ({last}); check {USER_VAR} and {PASSWORD_VAR}/{PASSWORD_FILE_VAR}, and that the registry is up",
            t.host, creds.user
        )))
    }

    /// Digest and labels behind a tag, `None` when it does not exist.
    pub fn inspect(&self, t: &Target, image: &str, tag: &str) -> Result<Option<skopeo::Inspected>> {
        skopeo::inspect(self.ctx, &self.access(t), &t.reference(image, tag))
    }

    /// The manifest digest and image config digest behind a tag.
    pub fn remote_of(&self, t: &Target, image: &str, tag: &str) -> Result<Option<Remote>> {
        let Some(found) = self.inspect(t, image, tag)? else {
            return Ok(None);
        };
        let reference = format!("{}@{}", t.repo(image), found.digest);
        let raw = skopeo::raw_manifest(self.ctx, &self.access(t), &reference)?
            .with_context(|| format!("{reference} vanished"))?;
        let config = skopeo::manifest_config(&raw).with_context(|| {
            format!("{reference} is not a single image manifest (a manifest list?); publish pushes single images")
        })?;
        Ok(Some(Remote {
            digest: found.digest,
            config,
        }))
    }

    pub fn list_tags(&self, t: &Target, image: &str) -> Result<Vec<String>> {
        skopeo::list_tags(self.ctx, &self.access(t), &t.repo(image))
    }

    /// The executor's view of this session, for one image name.
    pub fn registry(&'a self, image: &'a str) -> SessionRegistry<'a> {
        SessionRegistry { s: self, image }
    }
}

/// A [`Session`] seen as the executor's registry, for one image name.
pub struct SessionRegistry<'a> {
    s: &'a Session<'a>,
    image: &'a str,
}

impl SessionRegistry<'_> {
    /// What a `docker push` of the local image `id` sent: its output against the image's
    /// diff IDs and the layers of the manifest it pushed.
    fn transfer(&self, t: &Target, id: &str, digest: &str, push_output: &str) -> Result<Transfer> {
        let ctx = self.s.ctx;
        let diff_ids = docker::layers(ctx, id)?;
        let reference = format!("{}@{digest}", t.repo(self.image));
        let raw = skopeo::raw_manifest(ctx, &self.s.access(t), &reference)?
            .with_context(|| format!("{reference} is not in the registry"))?;
        let (layers, config) =
            skopeo::manifest_layers(&raw).with_context(|| format!("{reference} is not an image manifest"))?;
        transfer::of_push(push_output, &diff_ids, &layers, config, raw.len() as u64).map_err(anyhow::Error::msg)
    }
}

impl Registry for SessionRegistry<'_> {
    fn tags(&self, t: &Target) -> Result<Vec<String>> {
        self.s.list_tags(t, self.image)
    }

    fn remote(&self, t: &Target, tag: &str) -> Result<Option<Remote>> {
        self.s.remote_of(t, self.image, tag)
    }

    /// `docker tag` + `docker push`, retried on transient errors; the digest it printed,
    /// and the layers it uploaded (sized by the manifest it pushed).
    fn upload(&self, t: &Target, id: &str, tag: &str) -> Result<Uploaded> {
        let ctx = self.s.ctx;
        let reference = t.reference(self.image, tag);
        docker::tag(ctx, if id.is_empty() { "<built image>" } else { id }, &reference)?;
        let out = retry::change(
            ctx,
            &format!("pushing {tag} to {}", t.spec),
            &docker::push_cmd(&self.s.auth, &reference),
        );
        docker::untag(ctx, &reference);
        let Some(out) = out? else {
            return Ok(Uploaded {
                digest: "sha256:<digest of that push>".to_string(),
                upload: Upload::Nothing,
            });
        };
        let text = out.text();
        let digest = docker::push_digest(&text, tag)
            .with_context(|| format!("`docker push {reference}` printed no `{tag}: digest: sha256:…` line"))?;
        // The push worked: a count that cannot be made is said, never an error.
        let upload = match self.transfer(t, id, &digest, &text) {
            Ok(tr) => Upload::Layers(tr),
            Err(e) => Upload::Unmeasured(crate::exit::one_line(&e)),
        };
        Ok(Uploaded { digest, upload })
    }

    /// `skopeo copy --preserve-digests docker://SRC docker://REPO:TAG`: nothing uploaded
    /// when SRC is in the same repository, the digest kept in any case.
    fn point(&self, t: &Target, src: &str, tag: &str) -> Result<()> {
        let a = self.s.access(t);
        let what = format!("pointing {tag} at {src} in {}", t.spec);
        let src_host = src.split('/').next().unwrap_or_default();
        let src_tls = !super::target::is_loopback_host(src_host);
        skopeo::copy(
            self.s.ctx,
            &a,
            src_tls,
            &what,
            &format!("docker://{src}"),
            &format!("docker://{}", t.reference(self.image, tag)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creds_debug_hides_the_secret() {
        let c = Creds::new("u".into(), "canary-secret".into());
        assert!(!format!("{c:?}").contains("canary"));
    }
}
