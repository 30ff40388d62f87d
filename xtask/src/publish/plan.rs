//! The pure part of publishing: registry names, which tags to push where, when `latest`
//! moves, what a push printed, which errors are worth a retry, and the release record.
//! No I/O here; `registry.rs` and `mod.rs` turn these decisions into commands.

use crate::version;
use semver::Version;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// Docker Hub's names. A bare `name` or `user/name` (no host) also means Docker Hub.
const DOCKER_HUB: [&str; 4] = ["docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"];

/// A registry to publish to: `HOST[:PORT][/PATH]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// What the user wrote, trimmed of a trailing `/`.
    pub spec: String,
    /// The registry host (with port) that `docker login` and skopeo talk to.
    pub host: String,
    /// The namespace inside the registry (may be empty).
    pub path: String,
    /// Docker Hub, in any spelling.
    pub public: bool,
}

impl Target {
    /// Parses `--registry`/`registries` values. Errors name the value and the expected form.
    pub fn parse(spec: &str) -> Result<Target, String> {
        let s = spec.trim().trim_end_matches('/');
        let bad = |why: &str| format!("registry `{spec}` {why}; expected HOST[:PORT][/PATH] like ghcr.io/org or 127.0.0.1:5000");
        if s.is_empty() {
            return Err(bad("is empty"));
        }
        if s.contains("://") {
            return Err(bad("has a URL scheme (drop `https://`)"));
        }
        if s.contains('@') || s.chars().any(char::is_whitespace) {
            return Err(bad("has a digest or spaces"));
        }
        let (first, rest) = s.split_once('/').unwrap_or((s, ""));
        // Docker's rule: the first part is a host if it has a `.` or `:` or is `localhost`.
        let has_host = first.contains('.') || first.contains(':') || first == "localhost";
        let (host, path) = if has_host { (first.to_string(), rest.to_string()) } else { ("docker.io".to_string(), s.to_string()) };
        if path.contains(':') {
            return Err(bad("has a tag (`:`) in its path; tags come from VERSION"));
        }
        if !path.is_empty() && !crate::config::valid_image_name(&path) {
            return Err(bad("has a path that is not a lowercase repository name"));
        }
        let bare_host = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(&host).to_ascii_lowercase();
        let public = !has_host || DOCKER_HUB.contains(&bare_host.as_str());
        Ok(Target { spec: s.to_string(), host, path, public })
    }

    /// `host/path/image`, the repository the tags go to.
    pub fn repo(&self, image: &str) -> String {
        if self.path.is_empty() {
            format!("{}/{image}", self.host)
        } else {
            format!("{}/{}/{image}", self.host, self.path)
        }
    }

    pub fn reference(&self, image: &str, tag: &str) -> String {
        format!("{}:{tag}", self.repo(image))
    }

    /// On this machine's loopback: the only place plain HTTP (no TLS check) is allowed.
    pub fn is_loopback(&self) -> bool {
        is_loopback_host(&self.host)
    }
}

/// `localhost`, `127.0.0.0/8` or `::1`, with or without a port.
pub fn is_loopback_host(host: &str) -> bool {
    let h = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map(|(h, p)| if p.chars().all(|c| c.is_ascii_digit()) { h } else { host }).unwrap_or(host)
    };
    if h.eq_ignore_ascii_case("localhost") || h == "::1" {
        return true;
    }
    matches!(h.parse::<std::net::Ipv4Addr>(), Ok(ip) if ip.is_loopback())
}

/// Whether `latest` moves to `v` in a registry holding `published` version tags, and why not.
pub fn latest_decision(v: &Version, published: &[String]) -> Result<(), String> {
    if !v.pre.is_empty() {
        return Err(format!("{} is a pre-release", version::tag(v)));
    }
    let highest = published
        .iter()
        .filter_map(|t| version::parse_tag(t).ok())
        .filter(|p| p.pre.is_empty())
        .max();
    match highest {
        Some(h) if &h > v => Err(format!("{} is lower than {} already published there", version::tag(v), version::tag(&h))),
        _ => Ok(()),
    }
}

/// What the registry holds under a tag: the manifest digest and the image config digest
/// (which equals the local image id of the classic image store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    pub digest: String,
    pub config: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Push the tag.
    Push,
    /// The tag already holds this image (a rerun after a failure): nothing to do.
    Skip(String),
    /// The tag holds another image and may not move (a version or commit tag).
    Refuse(String),
}

/// Per tag: push, skip (same image there) or refuse (another image under a fixed tag).
/// `movable` tags (`latest`) are pushed over another image; the others never are.
pub fn tag_steps(image_id: &str, tags: &[String], remote: &BTreeMap<String, Remote>, movable: &[&str]) -> Vec<(String, Step)> {
    tags.iter()
        .map(|t| {
            let step = match remote.get(t) {
                None => Step::Push,
                Some(r) if r.config == image_id => Step::Skip(r.digest.clone()),
                Some(_) if movable.contains(&t.as_str()) => Step::Push,
                Some(r) => Step::Refuse(r.digest.clone()),
            };
            (t.clone(), step)
        })
        .collect()
}

/// The manifest digest `docker push` printed for `tag`: `<tag>: digest: sha256:<hex> size: <n>`.
pub fn push_digest(stdout: &str, tag: &str) -> Option<String> {
    stdout.lines().find_map(|l| {
        let rest = l.trim().strip_prefix(tag)?.strip_prefix(": digest: ")?;
        let digest = rest.split_whitespace().next()?;
        is_digest(digest).then(|| digest.to_string())
    })
}

pub fn is_digest(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The `config.digest` of a raw image manifest (what `skopeo inspect --raw` prints).
pub fn manifest_config(raw: &str) -> Option<String> {
    let v: Value = serde_json::from_str(raw).ok()?;
    v["config"]["digest"].as_str().filter(|d| is_digest(d)).map(String::from)
}

/// Errors a registry client reports that a retry may cure: dropped connections,
/// timeouts, 408, 429 and 5xx. Authentication and "not found" are not among them.
pub fn is_transient(stderr: &str) -> bool {
    let s = stderr.to_ascii_lowercase();
    const WORDS: [&str; 19] = [
        "connection reset",
        "context deadline exceeded",
        "server closed idle connection",
        "use of closed network connection",
        "connection refused",
        "broken pipe",
        "i/o timeout",
        "timeout exceeded",
        "tls handshake timeout",
        "unexpected eof",
        ": eof",
        "too many requests",
        "toomanyrequests",
        "request timeout",
        "service unavailable",
        "bad gateway",
        "gateway timeout",
        "internal server error",
        "server misbehaving",
    ];
    if WORDS.iter().any(|w| s.contains(w)) || s.trim_end().ends_with("eof") {
        return true;
    }
    // "status 503", "status code 429", "response status code 502", "HTTP 500"...
    s.split(|c: char| !c.is_ascii_alphanumeric())
        .collect::<Vec<_>>()
        .windows(2)
        .any(|w| {
            matches!(w[0], "status" | "code" | "http")
                && w[1].parse::<u16>().is_ok_and(|n| n == 408 || n == 429 || (500..600).contains(&n))
        })
}

/// Retries after a transient error: 3, waiting 1 s, 2 s, then 4 s.
pub const RETRIES: u32 = 3;

pub fn backoff(retry: u32) -> Duration {
    Duration::from_secs(1 << retry.min(5))
}

/// The audit tag of a weekly rebuild: `rebuild-YYYYMMDD-HHMMSS` (UTC) from a Unix time.
pub fn dated_tag(unix_secs: u64) -> String {
    let crate::date::Date { y, m, d } = crate::date::Date::from_days((unix_secs / 86_400) as i64);
    let secs = unix_secs % 86_400;
    format!("rebuild-{y:04}{m:02}{d:02}-{:02}{:02}{:02}", secs / 3600, secs % 3600 / 60, secs % 60)
}

/// One registry's outcome, for the record and the summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Pushed {
    pub target: Target,
    pub repo: String,
    pub digest: String,
    /// Tag → "pushed" | "unchanged" (already there).
    pub tags: BTreeMap<String, &'static str>,
    /// Why `latest` was left alone, if it was.
    pub latest_skipped: Option<String>,
}

/// What the release record is made of.
pub struct Record<'a> {
    pub mode: &'a str,
    pub version: &'a Version,
    pub commit: &'a str,
    pub image_id: &'a str,
    pub pushed: &'a [Pushed],
    pub tools: &'a BTreeMap<String, String>,
    pub policy_hash: &'a str,
    pub scan: &'a Value,
    pub integration: &'a Value,
}

/// `target/xtask/release.json`.
pub fn record(r: &Record<'_>) -> Value {
    let digests: Vec<&str> = r.pushed.iter().map(|p| p.digest.as_str()).collect();
    let one = digests.first().filter(|d| digests.iter().all(|x| x == *d));
    json!({
        "mode": r.mode,
        "version": version::tag(r.version),
        "commit": r.commit,
        "image_id": r.image_id,
        "digest": one,
        "tags": r.pushed.first().map(|p| p.tags.keys().collect::<Vec<_>>()),
        "registries": r.pushed.iter().map(|p| json!({
            "registry": p.target.spec,
            "repository": p.repo,
            "digest": p.digest,
            "reference": format!("{}@{}", p.repo, p.digest),
            "tags": p.tags,
            "latest_skipped": p.latest_skipped,
        })).collect::<Vec<_>>(),
        "tools": r.tools,
        "policy_hash": r.policy_hash,
        "scan": r.scan,
        "integration": r.integration,
    })
}

/// The Markdown a CI shows on the run's page.
pub fn summary_markdown(record: &Value) -> String {
    let mut s = format!(
        "### policy-platform {} ({})\n\ncommit `{}`\n\n| registry | digest | tags |\n|---|---|---|\n",
        record["version"].as_str().unwrap_or("?"),
        record["mode"].as_str().unwrap_or("?"),
        record["commit"].as_str().unwrap_or("?"),
    );
    for r in record["registries"].as_array().into_iter().flatten() {
        let tags: Vec<String> = r["tags"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(t, how)| format!("`{t}` ({})", how.as_str().unwrap_or("")))
            .collect();
        s.push_str(&format!(
            "| `{}` | `{}` | {} |\n",
            r["repository"].as_str().unwrap_or(""),
            r["digest"].as_str().unwrap_or(""),
            tags.join(", ")
        ));
    }
    if let Some(tools) = record["tools"].as_object() {
        let t: Vec<String> = tools.iter().map(|(k, v)| format!("{k} {}", v.as_str().unwrap_or(""))).collect();
        s.push_str(&format!("\nTools: {}. Policy hash `{}`.\n", t.join(", "), record["policy_hash"].as_str().unwrap_or("")));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Target {
        Target::parse(s).unwrap()
    }

    #[test]
    fn registry_names() {
        let g = t("ghcr.io/org/");
        assert_eq!((g.host.as_str(), g.path.as_str(), g.public), ("ghcr.io", "org", false));
        assert_eq!(g.reference("policy-platform", "v1.0.0"), "ghcr.io/org/policy-platform:v1.0.0");
        let l = t("127.0.0.1:5000");
        assert_eq!((l.host.as_str(), l.path.as_str()), ("127.0.0.1:5000", ""));
        assert_eq!(l.repo("pp"), "127.0.0.1:5000/pp");
        assert!(l.is_loopback());
        assert!(t("localhost:5000/team").is_loopback());
        assert!(t("[::1]:5000").is_loopback());
        assert!(t("127.10.0.3:80").is_loopback());
        assert!(!t("europe-west6-docker.pkg.dev/project/charts").is_loopback());
        assert!(!t("128.0.0.1:5000").is_loopback());
        assert!(!t("localhost.example.com").is_loopback());
        for bad in ["", "https://ghcr.io/org", "ghcr.io/org:v1", "ghcr.io/Org", "ghcr.io/org@sha256:00", "a b"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn docker_hub_in_every_spelling_is_public() {
        for s in [
            "docker.io/me",
            "index.docker.io/me",
            "registry-1.docker.io/me",
            "registry.hub.docker.com/me",
            "Docker.IO/me",
            "docker.io:443/me",
            "me",
            "me/team",
        ] {
            assert!(t(s).public, "{s}");
        }
        assert_eq!(t("me/team").host, "docker.io");
        assert_eq!(t("me/team").path, "me/team");
        for s in ["ghcr.io/me", "localhost:5000", "localhost", "registry.example.com/docker.io", "mydocker.io/x"] {
            assert!(!t(s).public, "{s}");
        }
    }

    fn v(s: &str) -> Version {
        version::parse_tag(s).unwrap()
    }

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn latest_only_moves_forward_and_never_to_a_pre_release() {
        assert!(latest_decision(&v("v1.0.0"), &[]).is_ok());
        assert!(latest_decision(&v("v1.2.0"), &tags(&["v1.1.0", "latest", "sha-abc", "v1.2.0"])).is_ok());
        let back = latest_decision(&v("v1.9.5"), &tags(&["v1.9.4", "v2.0.0"])).unwrap_err();
        assert!(back.contains("lower than v2.0.0"), "{back}");
        let pre = latest_decision(&v("v2.1.0-rc.1"), &tags(&["v2.0.0"])).unwrap_err();
        assert!(pre.contains("pre-release"), "{pre}");
        // A published pre-release above does not hold a stable backport back.
        assert!(latest_decision(&v("v1.9.5"), &tags(&["v1.9.4", "v2.0.0-rc.1", "vjunk"])).is_ok());
    }

    #[test]
    fn steps_skip_the_same_image_and_refuse_to_move_fixed_tags() {
        let id = "sha256:aaa";
        let remote = BTreeMap::from([
            ("v1.0.0".to_string(), Remote { digest: "sha256:d1".into(), config: id.into() }),
            ("sha-1234567".to_string(), Remote { digest: "sha256:d2".into(), config: "sha256:bbb".into() }),
            ("latest".to_string(), Remote { digest: "sha256:d3".into(), config: "sha256:ccc".into() }),
        ]);
        let steps = tag_steps(id, &tags(&["v1.0.0", "sha-1234567", "latest", "new"]), &remote, &["latest"]);
        assert_eq!(steps[0].1, Step::Skip("sha256:d1".into()));
        assert_eq!(steps[1].1, Step::Refuse("sha256:d2".into()));
        assert_eq!(steps[2].1, Step::Push);
        assert_eq!(steps[3].1, Step::Push);
    }

    #[test]
    fn push_output() {
        let out = "The push refers to repository [127.0.0.1:5000/pp]\n7cd52847ad77: Pushed\nv1.0.0: digest: sha256:e2e16842c9b54d985bf1ef9242a313f36b856181f188de21313820e177002501 size: 528\n";
        assert_eq!(
            push_digest(out, "v1.0.0").as_deref(),
            Some("sha256:e2e16842c9b54d985bf1ef9242a313f36b856181f188de21313820e177002501")
        );
        assert_eq!(push_digest(out, "v1.0"), None, "the tag must match exactly");
        assert_eq!(push_digest("latest: digest: sha256:short size: 1", "latest"), None);
    }

    #[test]
    fn manifest_config_digest() {
        let raw = r#"{"schemaVersion":2,"config":{"mediaType":"x","size":1,"digest":"sha256:30442b65e68794d03c80a587a847e5315f9bd1e39cf74cdd72b166294b406a4c"},"layers":[]}"#;
        assert_eq!(manifest_config(raw).unwrap(), "sha256:30442b65e68794d03c80a587a847e5315f9bd1e39cf74cdd72b166294b406a4c");
        assert_eq!(manifest_config(r#"{"manifests":[]}"#), None);
        assert_eq!(manifest_config("not json"), None);
    }

    #[test]
    fn transient_errors() {
        for e in [
            "Get \"http://127.0.0.1:5099/v2/\": dial tcp 127.0.0.1:5099: connect: connection refused",
            "read tcp 127.0.0.1:4000->127.0.0.1:5000: read: connection reset by peer",
            "received unexpected HTTP status: 503 Service Unavailable",
            "toomanyrequests: rate limit exceeded",
            "error parsing HTTP 429 response body",
            "invalid status code from registry 502 (Bad Gateway)",
            "Put \"http://127.0.0.1:5000/v2/pp/manifests/v1\": EOF",
            "net/http: TLS handshake timeout",
            "unexpected status code 408",
            "Put \"http://127.0.0.1:5000/v2/pp/manifests/v1\": http: server closed idle connection",
        ] {
            assert!(is_transient(e), "{e}");
        }
        for e in [
            "unauthorized: authentication required",
            "login attempt to http://127.0.0.1:5055/v2/ failed with status: 401 Unauthorized",
            "reading manifest v1 in 127.0.0.1:5000/pp: manifest unknown: manifest unknown",
            "denied: requested access to the resource is denied",
            "An image does not exist locally with the tag: pp:v1",
        ] {
            assert!(!is_transient(e), "{e}");
        }
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(4));
    }

    #[test]
    fn dated_tags() {
        assert_eq!(dated_tag(0), "rebuild-19700101-000000");
        // 2026-11-28T23:05:09Z
        assert_eq!(dated_tag(1_795_907_109), "rebuild-20261128-230509");
        // 2024-02-29T12:00:00Z, a leap day
        assert_eq!(dated_tag(1_709_208_000), "rebuild-20240229-120000");
        crate::tags::check_tag(&dated_tag(4_102_444_799)).unwrap();
    }

    #[test]
    fn record_and_summary() {
        let target = t("127.0.0.1:5000/team");
        let pushed = vec![Pushed {
            repo: target.repo("pp"),
            target,
            digest: "sha256:d1".into(),
            tags: BTreeMap::from([("v1.0.0".into(), "pushed"), ("latest".into(), "pushed")]),
            latest_skipped: None,
        }];
        let tools = BTreeMap::from([("kyverno".to_string(), "1.19.0".to_string())]);
        let ver = v("v1.0.0");
        let rec = record(&Record {
            mode: "release",
            version: &ver,
            commit: "abc",
            image_id: "sha256:aaa",
            pushed: &pushed,
            tools: &tools,
            policy_hash: "sha256:ph",
            scan: &json!({"counts": {}}),
            integration: &json!(null),
        });
        assert_eq!(rec["version"], "v1.0.0");
        assert_eq!(rec["digest"], "sha256:d1");
        assert_eq!(rec["registries"][0]["reference"], "127.0.0.1:5000/team/pp@sha256:d1");
        assert_eq!(rec["tools"]["kyverno"], "1.19.0");
        let md = summary_markdown(&rec);
        assert!(md.contains("| `127.0.0.1:5000/team/pp` | `sha256:d1` |"), "{md}");
        assert!(md.contains("`latest` (pushed)"), "{md}");
    }
}
