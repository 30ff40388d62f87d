//! Registry references (`--registry`, `registries`): parsed with the distribution spec's
//! grammar, never trusted as text. Pure.

/// Docker Hub's names. A bare `name` or `user/name` (no host) also means Docker Hub.
const DOCKER_HUB: [&str; 4] = [
    "docker.io",
    "index.docker.io",
    "registry-1.docker.io",
    "registry.hub.docker.com",
];

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
        let bad = |why: &str| {
            format!("registry `{spec}` {why}; expected HOST[:PORT][/PATH] like ghcr.io/org or 127.0.0.1:5000")
        };
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
        let (host, path) = if has_host {
            (first.to_string(), rest.to_string())
        } else {
            ("docker.io".to_string(), s.to_string())
        };
        if has_host {
            check_host(&host).map_err(|why| bad(&why))?;
        }
        if path.contains(':') {
            return Err(bad("has a tag (`:`) in its path; tags come from VERSION"));
        }
        if !path.is_empty() && !path.split('/').all(is_path_component) {
            return Err(bad(
                "has a path that is not a lowercase repository name (a-z, 0-9, and . _ __ - between them)",
            ));
        }
        let bare_host = host
            .rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(&host)
            .to_ascii_lowercase();
        let public = !has_host || DOCKER_HUB.contains(&bare_host.as_str());
        Ok(Target {
            spec: s.to_string(),
            host,
            path,
            public,
        })
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

/// `name[:port]` where name is DNS labels, an IPv4 literal or `[IPv6]`.
fn check_host(host: &str) -> Result<(), String> {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let (ip, after) = rest.split_once(']').ok_or("has an unclosed `[` in its host")?;
        ip.parse::<std::net::Ipv6Addr>()
            .map_err(|_| format!("has `[{ip}]`, which is not an IPv6 address"))?;
        (
            None,
            after
                .strip_prefix(':')
                .map(Some)
                .unwrap_or(if after.is_empty() { None } else { Some(after) }),
        )
    } else {
        match host.rsplit_once(':') {
            Some((n, p)) => (Some(n), Some(p)),
            None => (Some(host), None),
        }
    };
    if let Some(p) = port {
        let ok = !p.is_empty()
            && p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|n| (1..=65535).contains(&n));
        if !ok {
            return Err(format!("has the port `{p}`, which is not a number from 1 to 65535"));
        }
    }
    if let Some(n) = name {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if n.len() > 253 || !n.split('.').all(label_ok) {
            return Err(format!("has the host `{n}`, which is not a DNS name or IP address"));
        }
    }
    Ok(())
}

/// A path component of the distribution spec: `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`.
fn is_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

/// `localhost`, `127.0.0.0/8` or `::1`, with or without a port.
pub fn is_loopback_host(host: &str) -> bool {
    let h = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':')
            .map(|(h, p)| if p.chars().all(|c| c.is_ascii_digit()) { h } else { host })
            .unwrap_or(host)
    };
    if h.eq_ignore_ascii_case("localhost") || h == "::1" {
        return true;
    }
    matches!(h.parse::<std::net::Ipv4Addr>(), Ok(ip) if ip.is_loopback())
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
        assert_eq!(
            g.reference("policy-platform", "v1.0.0"),
            "ghcr.io/org/policy-platform:v1.0.0"
        );
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
        assert_eq!(
            t("europe-west6-docker.pkg.dev/my-project/charts_v2/a__b/c-d").path,
            "my-project/charts_v2/a__b/c-d"
        );
        for bad in [
            "",
            "https://ghcr.io/org",
            "ghcr.io/org:v1",
            "ghcr.io/Org",
            "ghcr.io/org@sha256:00",
            "a b",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hostile_strings_are_refused() {
        for bad in [
            "-u.x",
            "--password=x.io",
            "ghcr.io;rm",
            "gh\"cr.io",
            "ghcr.io:notaport",
            "ghcr.io:0",
            "ghcr.io:65536",
            "ghcr.io:",
            "-ghcr.io/org",
            "ghcr-.io",
            "ghcr..io",
            "gh_cr.io",
            "[::1",
            "[nope]:5000",
            "ghcr.io/org/-x",
            "ghcr.io/org/x-",
            "ghcr.io/org//x",
            "ghcr.io/a...b",
            "ghcr.io/$(id)",
            "ghcr.io/a\nb",
            "-u",
            "me;rm",
        ] {
            assert!(Target::parse(bad).is_err(), "accepted {bad:?}");
        }
        for good in [
            "ghcr.io",
            "ghcr.io:443/a.b/c_d/e__f/g--h",
            "10.0.0.1:5000/x",
            "[2001:db8::1]:5000/x",
            "registry",
            "me/team",
        ] {
            assert!(Target::parse(good).is_ok(), "refused {good:?}");
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
        for s in [
            "ghcr.io/me",
            "localhost:5000",
            "localhost",
            "registry.example.com/docker.io",
            "mydocker.io/x",
        ] {
            assert!(!t(s).public, "{s}");
        }
    }
}
