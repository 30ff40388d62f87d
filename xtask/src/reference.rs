//! Image references, `[HOST[:PORT]/]PATH[:TAG][@sha256:…]`, as `base-image-track`,
//! `BASE_IMAGE` and the engine's RepoDigests spell them; and which RepoDigest is the one a
//! base was built from. Pure.

use crate::publish::Target;
use crate::tools::skopeo::is_digest;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// The name as written (`alpine`, `127.0.0.1:5000/team/base`).
    pub name: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
    /// The registry it lives in (`docker.io` for Docker Hub names).
    pub host: String,
    /// The name Docker compares by: `alpine` is `docker.io/library/alpine`.
    canonical: String,
}

impl ImageRef {
    /// Parses a reference; the error says what is wrong with it.
    pub fn parse(s: &str) -> Result<ImageRef, String> {
        let like = "an image reference like alpine:3.22 or ghcr.io/org/base:1";
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) if is_digest(d) => (r, Some(d.to_string())),
            Some((_, d)) => {
                return Err(format!(
                    "`{s}` has `@{d}`, which is not a sha256:<64 hex> digest; expected {like}"
                ))
            }
            None => (s, None),
        };
        // The tag follows the last `:` after the last `/` (a `:` before it is a port).
        let from = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[from..].rfind(':') {
            Some(i) => (&rest[..from + i], Some(&rest[from + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag {
            crate::tags::check_tag(t).map_err(|why| format!("`{s}`: {why}"))?;
        }
        let target = Target::parse(name)
            .ok()
            .filter(|t| !t.path.is_empty() && t.spec == name)
            .ok_or_else(|| format!("`{s}` has no valid image name (lowercase path parts, optionally after HOST[:PORT]/); expected {like}"))?;
        let canonical = if target.public {
            let path = if target.path.contains('/') {
                target.path.clone()
            } else {
                format!("library/{}", target.path)
            };
            format!("docker.io/{path}")
        } else {
            format!("{}/{}", target.host.to_ascii_lowercase(), target.path)
        };
        let host = if target.public {
            "docker.io".to_string()
        } else {
            target.host
        };
        Ok(ImageRef {
            name: name.to_string(),
            tag: tag.map(String::from),
            digest,
            host,
            canonical,
        })
    }

    /// The same name, tag kept, pinned to `digest`: `alpine:3.22@sha256:…`.
    pub fn pinned(&self, digest: &str) -> String {
        match &self.tag {
            Some(t) => format!("{}:{t}@{digest}", self.name),
            None => format!("{}@{digest}", self.name),
        }
    }

    /// Whether two references name the same repository (`alpine` = `docker.io/library/alpine`).
    pub fn same_repo(&self, other: &ImageRef) -> bool {
        self.canonical == other.canonical
    }
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// The digest `base` was pulled or pushed by, among an image's RepoDigests
/// (`name@sha256:…`, as `docker image inspect` lists them). The error says why there is
/// none to tell (never a guess).
pub fn repo_digest(base: &ImageRef, repo_digests: &[String]) -> Result<String, String> {
    let mut found: Vec<String> = repo_digests
        .iter()
        .filter_map(|r| ImageRef::parse(r).ok())
        .filter(|r| r.same_repo(base))
        .filter_map(|r| r.digest)
        .collect();
    found.sort();
    found.dedup();
    if let Some(d) = &base.digest {
        return if found.contains(d) {
            Ok(d.clone())
        } else {
            Err(format!("no repo digest {d} in the engine"))
        };
    }
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err("no repo digest in the engine (it was built or imported here, never pulled or pushed)".into()),
        many => Err(format!(
            "several repo digests in the engine ({}): cannot tell which one its tag named",
            many.join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:4b7ce07002c69e8f3d704a9c5d6fd3053be500b7f1c69fc0d80990c2ad8dd412";
    const D2: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000002";

    fn r(s: &str) -> ImageRef {
        ImageRef::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn names_tags_digests_and_hosts() {
        let a = r("alpine:3.22");
        assert_eq!(
            (a.name.as_str(), a.tag.as_deref(), a.digest.as_deref(), a.host.as_str()),
            ("alpine", Some("3.22"), None, "docker.io")
        );
        assert_eq!(a.pinned(D1), format!("alpine:3.22@{D1}"));
        let p = r(&format!("alpine:3.22.2@{D1}"));
        assert_eq!((p.tag.as_deref(), p.digest.as_deref()), (Some("3.22.2"), Some(D1)));
        assert_eq!(p.to_string(), format!("alpine:3.22.2@{D1}"));
        let l = r("127.0.0.1:5000/team/base:track");
        assert_eq!(
            (l.name.as_str(), l.host.as_str(), l.tag.as_deref()),
            ("127.0.0.1:5000/team/base", "127.0.0.1:5000", Some("track"))
        );
        let bare = r("127.0.0.1:5000/base");
        assert_eq!((bare.tag, bare.host.as_str()), (None, "127.0.0.1:5000"));
        assert_eq!(
            r(&format!("ghcr.io/org/base@{D1}")).pinned(D2),
            format!("ghcr.io/org/base@{D2}")
        );
        assert!(r("alpine").same_repo(&r("docker.io/library/alpine:3")));
        assert!(r("me/x").same_repo(&r("index.docker.io/me/x")));
        assert!(!r("alpine").same_repo(&r("ghcr.io/alpine")));
    }

    #[test]
    fn bad_references_say_why() {
        for (bad, why) in [
            ("alpine@sha256:abc", "not a sha256"),
            ("alpine:-x", "must not start"),
            ("Alpine:3", "no valid image name"),
            ("ghcr.io:3.22", "no valid image name"),
            ("alpine:3:4", "no valid image name"),
            ("", "no valid image name"),
            ("a b:1", "no valid image name"),
            ("alpine/:1", "no valid image name"),
            ("-x:1", "no valid image name"),
        ] {
            let e = ImageRef::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn the_repo_digest_of_a_base() {
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            repo_digest(&r("alpine:3.22"), &list(&[&format!("alpine@{D1}")])).unwrap(),
            D1
        );
        assert_eq!(
            repo_digest(&r("docker.io/library/alpine:3.22"), &list(&[&format!("alpine@{D1}")])).unwrap(),
            D1
        );
        // Another repository's digest of the same image is not this base's.
        let e = repo_digest(&r("alpine:3.22"), &list(&[&format!("127.0.0.1:5000/alpine@{D1}")])).unwrap_err();
        assert!(e.contains("no repo digest"), "{e}");
        let e = repo_digest(
            &r("alpine:3.22"),
            &list(&[&format!("alpine@{D1}"), &format!("alpine@{D2}")]),
        )
        .unwrap_err();
        assert!(e.contains("several"), "{e}");
        // Pinned: the pin, when the engine has it.
        let pinned = r(&format!("alpine:3.22@{D2}"));
        assert_eq!(
            repo_digest(&pinned, &list(&[&format!("alpine@{D1}"), &format!("alpine@{D2}")])).unwrap(),
            D2
        );
        assert!(repo_digest(&pinned, &list(&[&format!("alpine@{D1}")])).is_err());
        assert!(repo_digest(&r("alpine:3.22"), &[])
            .unwrap_err()
            .contains("built or imported here"));
    }
}
