//! Tags and OCI labels of a release, and the tool pins read from the Dockerfile. Pure.

use crate::config::Config;
use semver::Version;
use std::collections::BTreeMap;

/// The tools the image carries, as named in the Dockerfile's `T_VERSION` arguments.
pub const TOOLS: [&str; 3] = ["kyverno", "helm", "pluto"];

/// Label keys (also read back by smoke and publish).
pub const LABEL_VERSION: &str = "org.opencontainers.image.version";
pub const LABEL_REVISION: &str = "org.opencontainers.image.revision";
pub const LABEL_CREATED: &str = "org.opencontainers.image.created";
pub const LABEL_BASE: &str = "org.opencontainers.image.base.name";
/// The digest of the base the image was built on, from the engine after the build.
pub const LABEL_BASE_DIGEST: &str = "org.opencontainers.image.base.digest";
pub const LABEL_POLICY_HASH: &str = "io.policy-platform.policy-hash";

pub fn tool_label(tool: &str) -> String {
    format!("io.policy-platform.tool.{tool}")
}

/// `vX.Y.Z`, `sha-<commit prefix>`, and `latest` unless a pre-release.
pub fn release_tags(v: &Version, commit: &str, sha_len: usize) -> Vec<String> {
    let mut tags = vec![crate::version::tag(v), sha_tag(commit, sha_len)];
    if v.pre.is_empty() {
        tags.push("latest".to_string());
    }
    tags
}

pub fn sha_tag(commit: &str, sha_len: usize) -> String {
    format!("sha-{}", &commit[..sha_len.min(commit.len())])
}

/// Docker's tag rules: 1 to 128 of `[A-Za-z0-9_.-]`, not starting with `.` or `-`.
pub fn check_tag(tag: &str) -> Result<(), String> {
    if tag.is_empty() || tag.len() > 128 {
        return Err(format!("tag `{tag}` must be 1 to 128 characters long"));
    }
    if tag.starts_with('.') || tag.starts_with('-') {
        return Err(format!("tag `{tag}` must not start with `.` or `-`"));
    }
    if let Some(c) = tag.chars().find(|c| !(c.is_ascii_alphanumeric() || "_.-".contains(*c))) {
        return Err(format!(
            "tag `{tag}` has `{c}`; only letters, digits, `_`, `.` and `-` are allowed"
        ));
    }
    Ok(())
}

/// What the labels are made of. `created` is the commit time, so one commit gives one set.
pub struct LabelInput<'a> {
    pub config: &'a Config,
    pub version: &'a Version,
    pub commit: &'a str,
    pub commit_time: &'a str,
    pub tools: &'a BTreeMap<String, String>,
    pub base_image: Option<&'a str>,
}

pub fn labels(i: &LabelInput<'_>) -> BTreeMap<String, String> {
    let mut l = BTreeMap::new();
    let oci = |k: &str| format!("org.opencontainers.image.{k}");
    l.insert(oci("title"), i.config.image.clone());
    l.insert(oci("description"), i.config.description.clone());
    l.insert(LABEL_VERSION.into(), crate::version::tag(i.version));
    l.insert(LABEL_REVISION.into(), i.commit.to_string());
    l.insert(LABEL_CREATED.into(), i.commit_time.to_string());
    l.insert(oci("source"), i.config.source.clone());
    if let Some(base) = i.base_image {
        l.insert(LABEL_BASE.into(), base.to_string());
    }
    for (tool, ver) in i.tools {
        l.insert(tool_label(tool), ver.clone());
    }
    l
}

/// The `ARG NAME=default` pairs of a Dockerfile (also several per `ARG` and continued
/// lines), later `--build-arg`s winning.
pub fn dockerfile_args(dockerfile: &str, build_args: &[String]) -> BTreeMap<String, String> {
    let mut args = BTreeMap::new();
    for line in dockerfile_instructions(dockerfile) {
        let Some(rest) = line.strip_prefix("ARG ").or_else(|| line.strip_prefix("arg ")) else {
            continue;
        };
        for pair in rest.split_whitespace() {
            if let Some((k, v)) = pair.split_once('=') {
                args.entry(k.trim().to_string())
                    .or_insert_with(|| v.trim().trim_matches('"').to_string());
            }
        }
    }
    for kv in build_args {
        if let Some((k, v)) = kv.split_once('=') {
            args.insert(k.to_string(), v.to_string());
        }
    }
    args
}

/// A Dockerfile's instructions, one string each: `\`-continued lines joined, comment and
/// blank lines dropped.
pub fn dockerfile_instructions(dockerfile: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in dockerfile.lines() {
        let t = line.trim();
        if t.starts_with('#') || (t.is_empty() && cur.is_empty()) {
            continue;
        }
        match t.strip_suffix('\\') {
            Some(head) => {
                cur.push_str(head.trim_end());
                cur.push(' ');
            }
            None => {
                cur.push_str(t);
                out.push(std::mem::take(&mut cur).trim().to_string());
            }
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// Tool name → pinned version, from the `T_VERSION` arguments (`KYVERNO_VERSION` → `kyverno`).
pub fn tool_pins(args: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    args.iter()
        .filter_map(|(k, v)| {
            let tool = k.strip_suffix("_VERSION")?;
            Some((tool.to_ascii_lowercase(), v.trim_start_matches('v').to_string()))
        })
        .collect()
}

/// `${NAME}` and `$NAME` replaced by the arguments' values, as the Dockerfile's `ARG`
/// defaults refer to each other (`KYVERNO_URL=…/v${KYVERNO_VERSION}/…`).
pub fn expand(value: &str, args: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, tail) = match after.strip_prefix('{') {
            Some(b) => match b.find('}') {
                Some(j) => (&b[..j], &b[j + 1..]),
                None => ("", after),
            },
            None => {
                let n = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..n], &after[n..])
            }
        };
        match args.get(name).filter(|_| !name.is_empty()) {
            Some(v) => out.push_str(v),
            None => {
                out.push('$');
                rest = after;
                continue;
            }
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// Where each tool comes from: `(tool, version, expanded URL, sha256)`.
pub fn tool_sources(args: &BTreeMap<String, String>) -> Vec<(String, String, String, String)> {
    tool_pins(args)
        .into_iter()
        .map(|(tool, version)| {
            let up = tool.to_ascii_uppercase();
            let url = args
                .get(&format!("{up}_URL"))
                .map(|u| expand(u, args))
                .unwrap_or_default();
            let sha = args.get(&format!("{up}_SHA256")).cloned().unwrap_or_default();
            (tool, version, url, sha)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_refer_to_each_other() {
        let args = BTreeMap::from([
            ("HELM_VERSION".to_string(), "3.22.0".to_string()),
            (
                "HELM_URL".to_string(),
                "https://get.helm.sh/helm-v${HELM_VERSION}-linux-amd64.tar.gz".to_string(),
            ),
            ("HELM_SHA256".to_string(), "ab".to_string()),
        ]);
        assert_eq!(
            expand("$HELM_VERSION/${HELM_VERSION}/${NOPE}/$/${", &args),
            "3.22.0/3.22.0/${NOPE}/$/${"
        );
        assert_eq!(
            tool_sources(&args),
            vec![(
                "helm".into(),
                "3.22.0".into(),
                "https://get.helm.sh/helm-v3.22.0-linux-amd64.tar.gz".into(),
                "ab".into()
            )]
        );
    }

    const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn release_tag_set() {
        let v = Version::new(1, 0, 2);
        assert_eq!(release_tags(&v, COMMIT, 7), vec!["v1.0.2", "sha-0123456", "latest"]);
        assert_eq!(release_tags(&v, COMMIT, 12)[1], "sha-0123456789ab");
        let pre = Version::parse("1.1.0-rc.1").unwrap();
        assert_eq!(release_tags(&pre, COMMIT, 7), vec!["v1.1.0-rc.1", "sha-0123456"]);
        for t in release_tags(&pre, COMMIT, 40) {
            check_tag(&t).unwrap();
        }
    }

    #[test]
    fn tag_rules() {
        check_tag("v1.0.2-rc.1").unwrap();
        check_tag("sha-abc_DEF.1").unwrap();
        assert!(check_tag("").is_err());
        assert!(check_tag(".hidden").is_err());
        assert!(check_tag("-dash").is_err());
        assert!(check_tag("v1.0.2+build").unwrap_err().contains('+'));
        assert!(check_tag(&"a".repeat(129)).is_err());
        check_tag(&"a".repeat(128)).unwrap();
    }

    #[test]
    fn labels_come_from_the_commit_not_the_clock() {
        let config = Config {
            description: "d".into(),
            source: "https://s".into(),
            ..Config::default()
        };
        let tools = BTreeMap::from([("kyverno".to_string(), "1.19.0".to_string())]);
        let v = Version::new(1, 2, 3);
        let input = LabelInput {
            config: &config,
            version: &v,
            commit: COMMIT,
            commit_time: "2026-11-27T10:00:00+00:00",
            tools: &tools,
            base_image: Some("alpine:3.22.1"),
        };
        let l = labels(&input);
        assert_eq!(l[LABEL_VERSION], "v1.2.3");
        assert_eq!(l[LABEL_REVISION], COMMIT);
        assert_eq!(l[LABEL_CREATED], "2026-11-27T10:00:00+00:00");
        assert_eq!(l["org.opencontainers.image.title"], "policy-platform");
        assert_eq!(l["org.opencontainers.image.source"], "https://s");
        assert_eq!(l[LABEL_BASE], "alpine:3.22.1");
        assert_eq!(l["io.policy-platform.tool.kyverno"], "1.19.0");
        // The commit time is the only time in them: another one changes `created` and
        // nothing else (no clock is read).
        let later = labels(&LabelInput {
            commit_time: "2027-01-01T00:00:00+00:00",
            ..input
        });
        let differ: Vec<&String> = l.keys().filter(|k| l[*k] != later[*k]).collect();
        assert_eq!(differ, [LABEL_CREATED]);
    }

    #[test]
    fn pins_from_dockerfile_and_build_args() {
        let df = "ARG BASE_IMAGE=alpine:3.22.1\nFROM ${BASE_IMAGE} AS dl\nARG KYVERNO_VERSION=1.19.0\n  ARG HELM_VERSION=v3.21.4\nARG PLUTO_VERSION=5.24.0\nARG KYVERNO_VERSION=9.9.9\nARG HELM_URL\n";
        let args = dockerfile_args(df, &["PLUTO_VERSION=5.25.0".to_string()]);
        assert_eq!(args["BASE_IMAGE"], "alpine:3.22.1");
        let pins = tool_pins(&args);
        assert_eq!(pins["kyverno"], "1.19.0", "first default wins");
        assert_eq!(pins["helm"], "3.21.4", "leading v dropped");
        assert_eq!(pins["pluto"], "5.25.0", "build arg wins");
        assert_eq!(pins.len(), 3);
    }

    #[test]
    fn args_from_multi_pair_and_continued_instructions() {
        let df = "# comment\nARG BASE_IMAGE=a\nFROM ${BASE_IMAGE}\nARG KYVERNO_VERSION=1.19.1 \\\n    # inside\n    HELM_VERSION=3.21.4 \\\n    PLUTO_VERSION=5.10.4\nARG KYVERNO_URL=https://x/v${KYVERNO_VERSION}/k.tgz \\\n    KYVERNO_SHA256=ab\nRUN a \\\n  b\n";
        let args = dockerfile_args(df, &[]);
        assert_eq!(args["KYVERNO_URL"], "https://x/v${KYVERNO_VERSION}/k.tgz");
        assert_eq!(args["KYVERNO_SHA256"], "ab");
        let pins = tool_pins(&args);
        assert_eq!(
            (pins["kyverno"].as_str(), pins["helm"].as_str(), pins["pluto"].as_str()),
            ("1.19.1", "3.21.4", "5.10.4")
        );
        assert!(dockerfile_instructions(df).contains(&"RUN a b".to_string()));
    }
}
