//! The pure half of `bump-tool`: where a release and its checksum file are, the version
//! check, reading checksum files, and rewriting one tool's two Dockerfile arguments.

use crate::{exit, image::plan::mirror_file, tags};
use anyhow::Result;
use semver::Version;
use std::collections::BTreeMap;

/// A tool release asked for on the command line, already validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Wanted {
    /// One of [`tags::TOOLS`].
    pub tool: &'static str,
    /// `X.Y.Z` (no leading `v`).
    pub version: Version,
}

/// The tool name, or exit 2 naming the tools.
pub fn parse_tool(s: &str) -> Result<&'static str> {
    tags::TOOLS.iter().copied().find(|t| *t == s).ok_or_else(|| {
        exit::usage(format!(
            "unknown tool `{s}`; bump-tool upgrades one of: {}",
            tags::TOOLS.join(", ")
        ))
    })
}

/// A release version: semver `X.Y.Z[-pre]`, a leading `v` dropped; no build metadata (it
/// goes into a URL and a Dockerfile argument).
pub fn parse_version(s: &str) -> Result<Version> {
    let plain = s.strip_prefix('v').unwrap_or(s);
    let bad = |why: String| {
        exit::usage(format!(
            "`{s}` is not a release version ({why}); give it as X.Y.Z, e.g. 3.23.0"
        ))
    };
    if plain.len() > 64 {
        return Err(bad("longer than 64 characters".into()));
    }
    let v = Version::parse(plain).map_err(|e| bad(e.to_string()))?;
    if !v.build.is_empty() {
        return Err(bad("build metadata `+...` is not part of a release name".into()));
    }
    Ok(v)
}

/// A sha256 given by hand: 64 hex digits, returned lowercase.
pub fn parse_sha256(s: &str) -> Result<String> {
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(s.to_ascii_lowercase());
    }
    Err(exit::usage(format!(
        "--sha256 `{}` is not a sha256 (64 hex digits); copy it from the vendor's release page",
        s.chars().take(80).collect::<String>()
    )))
}

/// What the Dockerfile pins for the tool now, read from its arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Pin {
    pub version: String,
    pub sha256: String,
    /// The `T_URL` default, `${T_VERSION}` not yet replaced.
    pub url_pattern: String,
}

pub fn upper(tool: &str) -> String {
    tool.to_ascii_uppercase()
}

pub fn pin(dockerfile: &str, tool: &str) -> Result<Pin> {
    let args = tags::dockerfile_args(dockerfile, &[]);
    let up = upper(tool);
    let get = |suffix: &str| {
        let key = format!("{up}_{suffix}");
        args.get(&key).filter(|v| !v.is_empty()).cloned().ok_or_else(|| {
            exit::usage(format!("the Dockerfile has no `ARG {key}=<default>`; bump-tool rewrites the pins of kyverno, helm and pluto as the Dockerfile declares them"))
        })
    };
    Ok(Pin {
        version: get("VERSION")?.trim_start_matches('v').to_string(),
        sha256: get("SHA256")?,
        url_pattern: get("URL")?,
    })
}

/// The new version must be newer than the pin (exit 2 otherwise, or when the pin is not a version).
pub fn check_newer(tool: &str, pinned: &str, wanted: &Version) -> Result<()> {
    let cur = Version::parse(pinned).map_err(|e| {
        exit::usage(format!(
            "the Dockerfile pins {tool} at `{pinned}`, which is not a version ({e}); fix {}_VERSION by hand",
            upper(tool)
        ))
    })?;
    if *wanted <= cur {
        return Err(exit::usage(format!(
            "{tool} {wanted} is not newer than the pinned {cur}; tool pins only move forward (give a version above {cur})"
        )));
    }
    Ok(())
}

/// Where the tarball and the vendor's checksum file are.
#[derive(Debug, Clone, PartialEq)]
pub struct Sources {
    pub tarball_url: String,
    /// The tarball's file name, as checksum files list it.
    pub file: String,
    pub checksum_url: String,
}

/// The checksum file each vendor publishes next to its tarballs: helm, one per tarball on
/// get.helm.sh (`<file>.sha256sum`); kyverno and pluto, goreleaser's `checksums.txt` in the
/// GitHub release (both set `checksum.name_template: checksums.txt`).
pub fn checksum_file_name(tool: &str, file: &str) -> String {
    match tool {
        "helm" => format!("{file}.sha256sum"),
        _ => "checksums.txt".to_string(),
    }
}

/// Upstream: the Dockerfile's `T_URL` with the new version put in; with a mirror, the
/// upstream file name under it. The checksum file sits in the same folder.
pub fn sources(tool: &str, version: &Version, pin: &Pin, mirror: Option<&str>) -> Result<Sources> {
    let v = version.to_string();
    let tarball_url = match mirror {
        Some(m) => mirror_file(m, tool, &v).ok_or_else(|| exit::usage(format!("unknown tool `{tool}`")))?,
        None => {
            let var = format!("{}_VERSION", upper(tool));
            let url = pin
                .url_pattern
                .replace(&format!("${{{var}}}"), &v)
                .replace(&format!("${var}"), &v);
            if url.contains('$') || !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(exit::usage(format!(
                    "the Dockerfile's {}_URL default `{}` is not an http(s) URL made of ${{{var}}} alone; fix it or use --tools-mirror",
                    upper(tool),
                    pin.url_pattern
                )));
            }
            url
        }
    };
    let (dir, file) = tarball_url
        .rsplit_once('/')
        .filter(|(_, f)| !f.is_empty())
        .ok_or_else(|| exit::usage(format!("the release URL `{tarball_url}` does not end in a file name")))?;
    let checksum_url = format!("{dir}/{}", checksum_file_name(tool, file));
    Ok(Sources {
        tarball_url: tarball_url.clone(),
        file: file.to_string(),
        checksum_url,
    })
}

/// What a checksum file says about one file.
#[derive(Debug, Clone, PartialEq)]
pub enum Listed {
    Sum(String),
    /// The file is not listed (or the text is not a checksum file at all).
    Absent,
    /// Listed twice with different sums.
    Conflict(String, String),
}

/// Reads `sha256sum` output (`<hex>  <name>`, `<hex> *<name>`: goreleaser's
/// `checksums.txt`, helm's `.sha256sum`) for `file`. A file holding one bare sum (helm's
/// `.sha256`) counts for the file it was published for.
pub fn listed_sum(text: &str, file: &str) -> Listed {
    let is_hex = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    if let [only] = lines.as_slice() {
        if is_hex(only) {
            return Listed::Sum(only.to_ascii_lowercase());
        }
    }
    let mut found: Option<String> = None;
    for l in lines {
        let Some((sum, name)) = l.split_once(char::is_whitespace) else {
            continue;
        };
        let name = name.trim_start();
        let name = name.strip_prefix('*').unwrap_or(name);
        let name = name.strip_prefix("./").unwrap_or(name);
        if !is_hex(sum) || name != file {
            continue;
        }
        let sum = sum.to_ascii_lowercase();
        match &found {
            Some(f) if *f != sum => return Listed::Conflict(f.clone(), sum),
            _ => found = Some(sum),
        }
    }
    found.map_or(Listed::Absent, Listed::Sum)
}

/// One `NAME=value` of an `ARG` instruction: where its value is in the file's bytes.
#[derive(Debug, Clone, PartialEq)]
struct ArgDefault {
    name: String,
    /// Byte range of the value, surrounding quotes excluded.
    start: usize,
    end: usize,
}

/// Every `ARG NAME=value` of a Dockerfile with the value's position, continued lines and
/// comment lines inside an instruction handled as Docker does.
fn arg_defaults(dockerfile: &str) -> Vec<ArgDefault> {
    let mut out = Vec::new();
    let mut offset = 0;
    let mut continued = false;
    let mut in_arg = false;
    for line in dockerfile.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let body = line.trim_end_matches(['\n', '\r']);
        let t = body.trim();
        if t.starts_with('#') || (t.is_empty() && !continued) {
            continue;
        }
        let mut words = words(body, start);
        if !continued {
            in_arg = words.first().is_some_and(|(w, _)| w.eq_ignore_ascii_case("ARG"));
            if !words.is_empty() {
                words.remove(0);
            }
        }
        continued = t.ends_with('\\');
        if !in_arg {
            continue;
        }
        for (w, at) in words {
            if w == "\\" {
                continue;
            }
            let Some((name, value)) = w.split_once('=') else {
                continue;
            };
            let mut vstart = at + name.len() + 1;
            let mut vend = at + w.len();
            let quoted = value.len() >= 2
                && ((value.starts_with('"') && value.ends_with('"'))
                    || (value.starts_with('\'') && value.ends_with('\'')));
            if quoted {
                vstart += 1;
                vend -= 1;
            }
            out.push(ArgDefault {
                name: name.to_string(),
                start: vstart,
                end: vend,
            });
        }
    }
    out
}

/// Whitespace-separated words of a line with their byte offsets in the file; a trailing
/// `\` (continuation) is dropped from the last word.
fn words(line: &str, base: usize) -> Vec<(&str, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    let bytes = line.as_bytes();
    while i < bytes.len() {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let s = i;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if s < i {
            let mut w = &line[s..i];
            if i >= line.trim_end().len() && w.len() > 1 && w.ends_with('\\') {
                w = &w[..w.len() - 1];
            }
            out.push((w, base + s));
        }
    }
    out
}

/// The Dockerfile with the tool's `T_VERSION` and `T_SHA256` defaults replaced and every
/// other byte kept. Exit 2 when either is not declared exactly once with a default.
pub fn rewrite(dockerfile: &str, tool: &str, version: &str, sha256: &str) -> Result<String> {
    let defaults = arg_defaults(dockerfile);
    let mut edits: Vec<(usize, usize, &str)> = Vec::new();
    for (suffix, value) in [("VERSION", version), ("SHA256", sha256)] {
        let key = format!("{}_{suffix}", upper(tool));
        let found: Vec<&ArgDefault> = defaults.iter().filter(|d| d.name == key).collect();
        match found.as_slice() {
            [one] => edits.push((one.start, one.end, value)),
            [] => {
                return Err(exit::usage(format!(
                    "the Dockerfile has no `ARG {key}=<default>` to rewrite; declare it once"
                )))
            }
            _ => {
                return Err(exit::usage(format!(
                    "the Dockerfile declares a default for {key} {} times; keep one, then rerun bump-tool",
                    found.len()
                )))
            }
        }
    }
    edits.sort_by_key(|e| std::cmp::Reverse(e.0));
    let mut text = dockerfile.to_string();
    for (start, end, value) in edits {
        text.replace_range(start..end, value);
    }
    // What Docker reads back: the two new values, every other argument as it was.
    let (before, after) = (
        tags::dockerfile_args(dockerfile, &[]),
        tags::dockerfile_args(&text, &[]),
    );
    let expected: BTreeMap<String, String> = before
        .into_iter()
        .map(|(k, v)| match k.strip_prefix(&upper(tool)) {
            Some("_VERSION") => (k, version.to_string()),
            Some("_SHA256") => (k, sha256.to_string()),
            _ => (k, v),
        })
        .collect();
    if after != expected {
        return Err(exit::usage(format!(
            "cannot rewrite {}_VERSION and {}_SHA256 in the Dockerfile without touching other arguments; edit them by hand",
            upper(tool),
            upper(tool)
        )));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::code_of;

    const DF: &str = "# pins\nARG BASE_IMAGE=alpine:3.22\nFROM ${BASE_IMAGE} AS base\n\nFROM stage AS helm\nARG HELM_VERSION=3.22.0\nARG HELM_URL=https://get.helm.sh/helm-v${HELM_VERSION}-linux-amd64.tar.gz \\\n    HELM_SHA256=1e4ab49e429626cf6c6958d914248b78c9730803c2751b87627e171dc800e7bb\nRUN echo HELM_VERSION=9 HELM_SHA256=ff\n\nFROM stage AS pluto\nARG PLUTO_VERSION=\"5.24.0\"\r\nARG PLUTO_URL=https://github.com/FairwindsOps/pluto/releases/download/v${PLUTO_VERSION}/pluto_${PLUTO_VERSION}_linux_amd64.tar.gz \\\n    # a comment inside the instruction\n    PLUTO_SHA256=b37fd6548e80614ffff5b3452a5e309d477ea61477519316bf9241246a9c4cbb\\\n    OTHER=1\n";
    const NEW: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    #[test]
    fn rewrite_changes_only_the_two_values() {
        let out = rewrite(DF, "helm", "3.23.0", NEW).unwrap();
        let want = DF.replace("HELM_VERSION=3.22.0\n", "HELM_VERSION=3.23.0\n").replace(
            "HELM_SHA256=1e4ab49e429626cf6c6958d914248b78c9730803c2751b87627e171dc800e7bb",
            &format!("HELM_SHA256={NEW}"),
        );
        assert_eq!(out, want);
        assert!(
            out.contains("RUN echo HELM_VERSION=9 HELM_SHA256=ff"),
            "a RUN line is not an ARG"
        );
        // Quotes, CRLF, a comment inside the instruction and a `\` glued to the value.
        let out = rewrite(DF, "pluto", "5.25.0", NEW).unwrap();
        let want = DF
            .replace("PLUTO_VERSION=\"5.24.0\"\r\n", "PLUTO_VERSION=\"5.25.0\"\r\n")
            .replace(
                "PLUTO_SHA256=b37fd6548e80614ffff5b3452a5e309d477ea61477519316bf9241246a9c4cbb\\",
                &format!("PLUTO_SHA256={NEW}\\"),
            );
        assert_eq!(out, want);
        let pins = tags::tool_pins(&tags::dockerfile_args(&out, &[]));
        assert_eq!(pins["pluto"], "5.25.0");
    }

    #[test]
    fn rewrite_refuses_what_it_cannot_do_exactly() {
        let e = rewrite(DF, "kyverno", "1.20.0", NEW).unwrap_err();
        assert_eq!(code_of(&e), 2);
        assert!(e.to_string().contains("no `ARG KYVERNO_VERSION=<default>`"), "{e}");
        let twice = format!("{DF}FROM x\nARG HELM_VERSION=3.22.0\n");
        let e = rewrite(&twice, "helm", "3.23.0", NEW).unwrap_err();
        assert!(e.to_string().contains("2 times"), "{e}");
    }

    #[test]
    fn the_repo_dockerfile_can_be_rewritten_for_every_tool() {
        let df = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Dockerfile")).unwrap();
        for tool in tags::TOOLS {
            let out = rewrite(&df, tool, "99.0.0", NEW).unwrap();
            assert_eq!(
                out.len(),
                df.len() - pin(&df, tool).unwrap().version.len() + 6,
                "{tool}"
            );
            let p = pin(&out, tool).unwrap();
            assert_eq!((p.version.as_str(), p.sha256.as_str()), ("99.0.0", NEW));
        }
    }

    #[test]
    fn checksum_files() {
        let helm =
            "1e4ab49e429626cf6c6958d914248b78c9730803c2751b87627e171dc800e7bb  helm-v3.22.0-linux-amd64.tar.gz\n";
        let want = Listed::Sum("1e4ab49e429626cf6c6958d914248b78c9730803c2751b87627e171dc800e7bb".into());
        assert_eq!(listed_sum(helm, "helm-v3.22.0-linux-amd64.tar.gz"), want);
        assert_eq!(listed_sum(helm, "helm-v3.23.0-linux-amd64.tar.gz"), Listed::Absent);
        let bare = "1E4AB49E429626CF6C6958D914248B78C9730803C2751B87627E171DC800E7BB\n";
        assert_eq!(
            listed_sum(bare, "anything.tar.gz"),
            want,
            "a .sha256 file: one bare sum, lowercased"
        );
        let goreleaser = format!(
            "{a}  pluto_5.24.0_darwin_arm64.tar.gz\n{b} *pluto_5.24.0_linux_amd64.tar.gz\n{a}  ./pluto_5.24.0_windows_amd64.zip\n",
            a = "0".repeat(64),
            b = "b".repeat(64)
        );
        assert_eq!(
            listed_sum(&goreleaser, "pluto_5.24.0_linux_amd64.tar.gz"),
            Listed::Sum("b".repeat(64))
        );
        assert_eq!(
            listed_sum(&goreleaser, "pluto_5.24.0_windows_amd64.zip"),
            Listed::Sum("0".repeat(64))
        );
        assert_eq!(
            listed_sum(&goreleaser, "pluto_5.24.0_linux_arm64.tar.gz"),
            Listed::Absent
        );
        let twice = format!("{goreleaser}{}  pluto_5.24.0_linux_amd64.tar.gz\n", "c".repeat(64));
        assert!(matches!(
            listed_sum(&twice, "pluto_5.24.0_linux_amd64.tar.gz"),
            Listed::Conflict(..)
        ));
        for junk in ["", "<html>Not Found</html>", "abc  helm.tar.gz", "\u{0}\u{1}"] {
            assert_eq!(listed_sum(junk, "helm.tar.gz"), Listed::Absent, "{junk:?}");
        }
    }

    #[test]
    fn versions_move_forward_only() {
        let v = |s: &str| parse_version(s).unwrap();
        check_newer("helm", "3.22.0", &v("3.23.0")).unwrap();
        check_newer("helm", "3.22.0", &v("v3.22.1")).unwrap();
        check_newer("helm", "3.22.0", &v("3.22.10")).unwrap();
        check_newer("kyverno", "1.19.1", &v("1.20.0-rc.1")).unwrap();
        for older in ["3.22.0", "3.21.9", "3.22.0-rc.1", "2.99.99"] {
            let e = check_newer("helm", "3.22.0", &v(older)).unwrap_err();
            assert_eq!(code_of(&e), 2, "{older}");
            assert!(e.to_string().contains("not newer than the pinned 3.22.0"), "{e}");
        }
        assert_eq!(code_of(&check_newer("helm", "latest", &v("3.23.0")).unwrap_err()), 2);
        for bad in [
            "",
            "v",
            "3.23",
            "3.23.0.1",
            "03.23.0",
            "3.23.0+build",
            "x3.23.0",
            "3.23.0 ",
            &"9".repeat(70),
        ] {
            let e = parse_version(bad).unwrap_err();
            assert_eq!(code_of(&e), 2, "{bad:?}");
        }
        assert_eq!(parse_version("v3.23.0").unwrap().to_string(), "3.23.0");
    }

    #[test]
    fn tools_and_sums_given_by_hand() {
        assert_eq!(parse_tool("helm").unwrap(), "helm");
        assert!(parse_tool("trivy")
            .unwrap_err()
            .to_string()
            .contains("kyverno, helm, pluto"));
        assert_eq!(parse_sha256(&"AB".repeat(32)).unwrap(), "ab".repeat(32));
        for bad in ["", "zz", &"a".repeat(63), &"g".repeat(64)] {
            assert_eq!(code_of(&parse_sha256(bad).unwrap_err()), 2, "{bad}");
        }
    }

    #[test]
    fn where_releases_and_checksums_are() {
        let df = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Dockerfile")).unwrap();
        let v = Version::new(9, 1, 0);
        let s = sources("helm", &v, &pin(&df, "helm").unwrap(), None).unwrap();
        assert_eq!(s.tarball_url, "https://get.helm.sh/helm-v9.1.0-linux-amd64.tar.gz");
        assert_eq!(
            s.checksum_url,
            "https://get.helm.sh/helm-v9.1.0-linux-amd64.tar.gz.sha256sum"
        );
        let s = sources("pluto", &v, &pin(&df, "pluto").unwrap(), None).unwrap();
        assert_eq!(
            s.tarball_url,
            "https://github.com/FairwindsOps/pluto/releases/download/v9.1.0/pluto_9.1.0_linux_amd64.tar.gz"
        );
        assert_eq!(
            s.checksum_url,
            "https://github.com/FairwindsOps/pluto/releases/download/v9.1.0/checksums.txt"
        );
        let s = sources(
            "kyverno",
            &v,
            &pin(&df, "kyverno").unwrap(),
            Some("http://127.0.0.1:9/m/"),
        )
        .unwrap();
        assert_eq!(
            s.tarball_url,
            "http://127.0.0.1:9/m/kyverno-cli_v9.1.0_linux_x86_64.tar.gz"
        );
        assert_eq!(
            (s.file.as_str(), s.checksum_url.as_str()),
            (
                "kyverno-cli_v9.1.0_linux_x86_64.tar.gz",
                "http://127.0.0.1:9/m/checksums.txt"
            )
        );
        let odd = Pin {
            version: "1".into(),
            sha256: NEW.into(),
            url_pattern: "https://x/${HELM_VER}/h.tgz".into(),
        };
        assert_eq!(code_of(&sources("helm", &v, &odd, None).unwrap_err()), 2);
    }
}
