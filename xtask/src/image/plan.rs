//! The pure half of `image`: the build plan (arguments, labels, tags, the docker argv),
//! the tools' upstream file names, the size report and gate, and reading a failed build.

use super::BuildOpts;
use crate::config::Config;
use crate::{exit, tags};
use anyhow::Result;
use semver::Version;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub struct Input<'a> {
    pub config: &'a Config,
    pub dockerfile: &'a str,
    pub version: &'a Version,
    pub commit: &'a str,
    pub commit_time: &'a str,
    pub policy_hash: &'a str,
    pub opts: &'a BuildOpts,
    /// Where the id files go (`target/xtask/image`).
    pub out_dir: &'a Path,
    /// The build context (the repo root).
    pub context: &'a Path,
}

/// Two `docker build`s: the Dockerfile (no labels, no tags), then one `LABEL` step on
/// top of it that also tags. The classic builder turns every `--label` into a step of
/// its own (a container and a commit each); one `LABEL` instruction is one step.
#[derive(Debug)]
pub struct Plan {
    /// `docker build` of the Dockerfile: everything after `docker`.
    pub argv: Vec<String>,
    /// Where that build writes its image id.
    pub build_iidfile: PathBuf,
    /// `docker build` of [`label_dockerfile`] (on stdin): labels and tags.
    pub label_argv: Vec<String>,
    /// Where the final image id goes.
    pub iidfile: PathBuf,
    /// `<image>:vX.Y.Z`.
    pub reference: String,
    pub tags: Vec<String>,
    pub tools: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub base_image: Option<String>,
    /// Every build argument after the mirror and `--build-arg`s were applied.
    pub args: BTreeMap<String, String>,
}

/// The release file name of a tool at a version (linux/amd64), as upstream publishes it.
/// `--tools-mirror` serves these same names.
pub fn upstream_file(tool: &str, version: &str) -> Option<String> {
    let v = version.trim_start_matches('v');
    match tool {
        "kyverno" => Some(format!("kyverno-cli_v{v}_linux_x86_64.tar.gz")),
        "helm" => Some(format!("helm-v{v}-linux-amd64.tar.gz")),
        "pluto" => Some(format!("pluto_{v}_linux_amd64.tar.gz")),
        _ => None,
    }
}

/// `<mirror>/<upstream file>` for a tool.
pub fn mirror_file(mirror: &str, tool: &str, version: &str) -> Option<String> {
    Some(format!(
        "{}/{}",
        mirror.trim_end_matches('/'),
        upstream_file(tool, version)?
    ))
}

/// Names of every `ARG` in a Dockerfile, with or without a default.
pub fn arg_names(dockerfile: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in tags::dockerfile_instructions(dockerfile) {
        let Some(rest) = line.strip_prefix("ARG ").or_else(|| line.strip_prefix("arg ")) else {
            continue;
        };
        for pair in rest.split_whitespace() {
            let name = pair.split('=').next().unwrap_or("").to_string();
            if !name.is_empty() && !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

/// A `--build-arg` split into its key and value; a usage error unless it is `KEY=VALUE`
/// with a key. The command line checks it, and so does the plan (whoever built the options).
pub fn build_arg(kv: &str) -> Result<(&str, &str)> {
    kv.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| exit::usage(format!("--build-arg `{kv}` is not KEY=VALUE")))
}

/// `--tools-mirror` must be an http:// or https:// URL (a usage error otherwise).
pub fn check_tools_mirror(mirror: &str) -> Result<()> {
    if mirror.starts_with("http://") || mirror.starts_with("https://") {
        return Ok(());
    }
    Err(exit::usage(format!(
        "--tools-mirror `{mirror}` must be an http:// or https:// URL"
    )))
}

/// The `--build-arg`s docker gets (the user's, checked against the Dockerfile's `ARG`s,
/// plus the mirror's URLs) and every argument's value after them.
pub fn resolve_args(dockerfile: &str, opts: &BuildOpts) -> Result<(Vec<String>, BTreeMap<String, String>)> {
    let known = arg_names(dockerfile);
    let mut user: BTreeMap<String, String> = BTreeMap::new();
    for kv in &opts.build_args {
        let (k, v) = build_arg(kv)?;
        if !known.iter().any(|n| n == k) {
            return Err(exit::usage(format!(
                "--build-arg {k}: the Dockerfile has no `ARG {k}` (it has: {}); check the spelling",
                known.join(", ")
            )));
        }
        user.insert(k.to_string(), v.to_string());
    }
    for tool in tags::TOOLS {
        let up = tool.to_ascii_uppercase();
        if user.contains_key(&format!("{up}_VERSION")) && !user.contains_key(&format!("{up}_SHA256")) {
            return Err(exit::usage(format!(
                "--build-arg {up}_VERSION changes {tool}'s version but not its checksum; pass --build-arg {up}_SHA256=<sha256 of that release> too"
            )));
        }
    }

    let mut build_args = opts.build_args.clone();
    if let Some(mirror) = &opts.tools_mirror {
        check_tools_mirror(mirror)?;
        let pins = tags::tool_pins(&tags::dockerfile_args(dockerfile, &build_args));
        for tool in tags::TOOLS {
            let key = format!("{}_URL", tool.to_ascii_uppercase());
            if user.contains_key(&key) {
                continue; // an explicit URL wins over the mirror
            }
            let Some(v) = pins.get(tool) else {
                return Err(exit::usage(format!(
                    "the Dockerfile pins no {}_VERSION",
                    tool.to_ascii_uppercase()
                )));
            };
            let url = mirror_file(mirror, tool, v).unwrap_or_default();
            build_args.push(format!("{key}={url}"));
        }
    }

    let args = tags::dockerfile_args(dockerfile, &build_args);
    Ok((build_args, args))
}

pub fn plan(i: &Input<'_>) -> Result<Plan> {
    let (build_args, args) = resolve_args(i.dockerfile, i.opts)?;
    let tools = tags::tool_pins(&args);
    for tool in tags::TOOLS {
        if !tools.contains_key(tool) {
            return Err(exit::usage(format!(
                "the Dockerfile has no `ARG {}_VERSION=<version>`; every tool's version must be pinned",
                tool.to_ascii_uppercase()
            )));
        }
    }
    let base_image = args.get("BASE_IMAGE").cloned();
    let mut labels = tags::labels(&tags::LabelInput {
        config: i.config,
        version: i.version,
        commit: i.commit,
        commit_time: i.commit_time,
        tools: &tools,
        base_image: base_image.as_deref(),
    });
    labels.insert(tags::LABEL_POLICY_HASH.to_string(), i.policy_hash.to_string());

    let image = &i.config.image;
    let reference = format!("{image}:{}", crate::version::tag(i.version));
    let mut all_tags: Vec<String> = tags::release_tags(i.version, i.commit, i.config.sha_length)
        .into_iter()
        .map(|t| format!("{image}:{t}"))
        .collect();
    for t in &i.opts.extra_tags {
        if !all_tags.contains(t) {
            all_tags.push(t.clone());
        }
    }
    // Docker's tag rules, checked before anything is built (a long sha-length, a dated tag...).
    for r in &all_tags {
        let tag = r
            .rsplit_once(':')
            .filter(|(_, t)| !t.contains('/'))
            .map(|(_, t)| t)
            .unwrap_or("latest");
        tags::check_tag(tag).map_err(|why| exit::usage(format!("cannot tag the image `{r}`: {why}")))?;
    }

    let build_iidfile = i.out_dir.join("build.iid");
    let iidfile = i.out_dir.join("iid");
    let mut argv: Vec<String> = vec![
        "build".into(),
        "--file".into(),
        i.context.join("Dockerfile").display().to_string(),
    ];
    // Remove the containers of failed steps too: a failed build leaves nothing behind.
    argv.push("--force-rm".into());
    argv.push("--iidfile".into());
    argv.push(build_iidfile.display().to_string());
    if i.opts.pull {
        argv.push("--pull".into());
    }
    if i.opts.no_cache {
        argv.push("--no-cache".into());
    }
    if let Some(n) = &i.opts.network {
        argv.push("--network".into());
        argv.push(n.clone());
    }
    for c in &i.opts.cache_from {
        argv.push("--cache-from".into());
        argv.push(c.clone());
    }
    for kv in &build_args {
        argv.push("--build-arg".into());
        argv.push(kv.clone());
    }
    argv.push(i.context.display().to_string());

    let mut label_argv: Vec<String> = vec![
        "build".into(),
        "--force-rm".into(),
        "--iidfile".into(),
        iidfile.display().to_string(),
    ];
    for t in &all_tags {
        label_argv.push("--tag".into());
        label_argv.push(t.clone());
    }
    // The label step's layer is cached only if the published image is a cache source too:
    // without it a fresh runner gets a new `created` and a new digest for the same inputs.
    for c in &i.opts.cache_from {
        label_argv.push("--cache-from".into());
        label_argv.push(c.clone());
    }
    label_argv.push("-".into());
    Ok(Plan {
        argv,
        build_iidfile,
        label_argv,
        iidfile,
        reference,
        tags: all_tags,
        tools,
        labels,
        base_image,
        args,
    })
}

/// `FROM <id>` and one `LABEL` instruction with every label, values double-quoted
/// (Dockerfile escapes: `\\`, `\"`, `\$`; a newline becomes a space).
pub fn label_dockerfile(image_id: &str, labels: &BTreeMap<String, String>) -> String {
    let quote = |s: &str| {
        let mut q = String::from("\"");
        for c in s.chars() {
            match c {
                '\\' | '"' | '$' => {
                    q.push('\\');
                    q.push(c);
                }
                '\n' | '\r' => q.push(' '),
                _ => q.push(c),
            }
        }
        q.push('"');
        q
    };
    let pairs: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{}={}", quote(k), quote(v)))
        .collect();
    format!("FROM {image_id}\nLABEL {}\n", pairs.join(" \\\n      "))
}

/// One line of `docker history`.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    pub size: u64,
    pub created_by: String,
}

/// Parses `docker history --human=false --format '{{.Size}}\t{{.CreatedBy}}'`.
pub fn parse_history(out: &str) -> Vec<Layer> {
    out.lines()
        .filter_map(|l| {
            let (size, by) = l.split_once('\t')?;
            Some(Layer {
                size: size.trim().parse().ok()?,
                created_by: short_step(by),
            })
        })
        .collect()
}

/// `/bin/sh -c #(nop) COPY dir:… in /repos/` → `COPY dir:… in /repos/`, at most 90 chars.
fn short_step(by: &str) -> String {
    let s = by.trim();
    let s = s.strip_prefix("/bin/sh -c #(nop)").map(str::trim).unwrap_or(s);
    let s = s
        .strip_prefix("/bin/sh -c ")
        .map(|r| format!("RUN {r}"))
        .unwrap_or_else(|| s.to_string());
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.is_empty() {
        return "(base image)".to_string(); // an imported layer records no step
    }
    if s.chars().count() > 90 {
        format!("{}…", s.chars().take(89).collect::<String>())
    } else {
        s
    }
}

/// Decimal megabytes (kilobytes when small), as docker prints them.
pub fn mb(bytes: u64) -> String {
    if bytes < 100_000 {
        return format!("{:.1} kB", bytes as f64 / 1e3);
    }
    format!("{:.1} MB", bytes as f64 / 1e6)
}

pub fn layer_table(layers: &[Layer]) -> String {
    let mut s = String::from("layers (newest first):\n");
    for l in layers {
        s.push_str(&format!("  {:>10}  {}\n", mb(l.size), l.created_by));
    }
    s
}

/// Exit 1 when the image is over `size-budget-mb`, naming the largest layers.
pub fn size_gate(size: u64, budget_mb: u64, layers: &[Layer]) -> Result<()> {
    if size <= budget_mb.saturating_mul(1_000_000) {
        return Ok(());
    }
    let mut big: Vec<&Layer> = layers.iter().filter(|l| l.size > 0).collect();
    big.sort_by_key(|l| std::cmp::Reverse(l.size));
    let largest: Vec<String> = big
        .iter()
        .take(3)
        .map(|l| format!("{} {}", mb(l.size), l.created_by))
        .collect();
    Err(exit::gate(format!(
        "the image is {}, over its size budget of {budget_mb} MB (size-budget-mb in Cargo.toml); largest layers: {}; shrink those layers or raise the budget",
        mb(size),
        largest.join("; ")
    )))
}

/// One line for a failed `docker build`, from the tail of its output. The Dockerfile's
/// download step prints `download failed for <tool>`, `checksum mismatch for <tool>` or
/// `no <file> in the <tool> tarball`.
pub fn explain_failure(tail: &[String], tools: &[&str], base_image: Option<&str>) -> anyhow::Error {
    let find = |needle: &str| tail.iter().rev().find(|l| l.contains(needle));
    let tool_after = |line: &str, marker: &str| -> Option<String> {
        let rest = &line[line.find(marker)? + marker.len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        tools.contains(&name.as_str()).then_some(name)
    };
    // The step's own messages; the echo of the failed command holds the same words with
    // `$1` for the tool, which names no tool and is skipped.
    let named = |marker: &str| {
        tail.iter()
            .rev()
            .find_map(|l| Some((tool_after(l, marker)?, l.trim().to_string())))
    };
    if let Some((tool, _)) = named("checksum mismatch for ") {
        let up = tool.to_ascii_uppercase();
        return exit::env(format!(
            "the {tool} download does not match its pinned sha256 ({up}_SHA256): the file at {up}_URL was changed or corrupted, or the pin is wrong; do not build from it: check the source (--tools-mirror) and the pin in the Dockerfile"
        ));
    }
    if let Some((tool, line)) = named("download failed for ") {
        let up = tool.to_ascii_uppercase();
        return exit::env(format!(
            "cannot download {tool} ({line}); check the network or point the build at a mirror with --tools-mirror URL (or --build-arg {up}_URL=...)"
        ));
    }
    for tool in tools {
        if let Some(line) = find(&format!(" in the {tool} tarball")) {
            return exit::env(format!(
                "the {tool} release tarball has an unexpected layout ({}); check {}_URL",
                line.trim(),
                tool.to_ascii_uppercase()
            ));
        }
    }
    let base = base_image.unwrap_or("the base image");
    for needle in [
        "pull access denied",
        "manifest unknown",
        "not found: manifest",
        "failed to resolve",
        "no such host",
        "registry-1.docker.io",
    ] {
        if let Some(line) = find(needle) {
            return exit::env(format!(
                "cannot get the base image {base} or the DOWNLOAD_IMAGE ({}); load it into Docker first (docker load / docker import) or pass --build-arg BASE_IMAGE=<a local image> (and DOWNLOAD_IMAGE=<one with wget, sha256sum and tar>)",
                line.trim()
            ));
        }
    }
    let last = tail
        .iter()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_string())
        .unwrap_or_default();
    exit::env(format!("docker build failed ({last}); see the build output above"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::code_of;

    const DF: &str = "ARG BASE_IMAGE=alpine:3.22\nFROM ${BASE_IMAGE} AS download\nARG KYVERNO_VERSION=1.19.1\nARG KYVERNO_URL=https://x/v${KYVERNO_VERSION}/k.tar.gz\nARG KYVERNO_SHA256=aa\nARG HELM_VERSION=3.21.4\nARG HELM_URL=https://h\nARG HELM_SHA256=bb\nARG PLUTO_VERSION=5.24.0\nARG PLUTO_URL\nARG PLUTO_SHA256=cc\nFROM ${BASE_IMAGE}\n";
    const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

    fn input<'a>(config: &'a Config, v: &'a Version, opts: &'a BuildOpts) -> Input<'a> {
        Input {
            config,
            dockerfile: DF,
            version: v,
            commit: COMMIT,
            commit_time: "2026-11-27T10:00:00+00:00",
            policy_hash: "feed",
            opts,
            out_dir: Path::new("/r/target/xtask/image"),
            context: Path::new("/r"),
        }
    }

    fn pairs(argv: &[String], flag: &str) -> Vec<String> {
        argv.windows(2).filter(|w| w[0] == flag).map(|w| w[1].clone()).collect()
    }

    #[test]
    fn tags_that_break_docker_rules_are_refused_before_building() {
        let config = Config {
            image: "pp".into(),
            ..Config::default()
        };
        let v = Version::new(1, 2, 3);
        for bad in ["reg.example:5000/pp:-dated", "pp:rebuild+1", "reg.example/pp:.x"] {
            let opts = BuildOpts {
                extra_tags: vec![bad.into()],
                ..BuildOpts::default()
            };
            let e = plan(&input(&config, &v, &opts)).unwrap_err();
            assert_eq!(crate::exit::code_of(&e), 2, "{bad}");
            assert!(e.to_string().contains(bad), "{e}");
        }
        let opts = BuildOpts {
            extra_tags: vec!["reg.example:5000/org/pp:20261127".into()],
            ..BuildOpts::default()
        };
        plan(&input(&config, &v, &opts)).unwrap();
    }

    #[test]
    fn upstream_names() {
        assert_eq!(
            upstream_file("kyverno", "1.19.1").unwrap(),
            "kyverno-cli_v1.19.1_linux_x86_64.tar.gz"
        );
        assert_eq!(
            upstream_file("helm", "v3.21.4").unwrap(),
            "helm-v3.21.4-linux-amd64.tar.gz"
        );
        assert_eq!(
            upstream_file("pluto", "5.24.0").unwrap(),
            "pluto_5.24.0_linux_amd64.tar.gz"
        );
        assert!(upstream_file("trivy", "1").is_none());
        assert_eq!(
            mirror_file("http://m/t/", "helm", "3.1.0").unwrap(),
            "http://m/t/helm-v3.1.0-linux-amd64.tar.gz"
        );
    }

    #[test]
    fn plan_has_tags_labels_and_flags() {
        let config = Config {
            image: "pp".into(),
            ..Config::default()
        };
        let v = Version::new(1, 2, 3);
        let opts = BuildOpts {
            build_args: vec!["BASE_IMAGE=busybox:local".into()],
            pull: true,
            no_cache: true,
            network: Some("host".into()),
            cache_from: vec!["pp:latest".into()],
            extra_tags: vec!["reg.example/pp:v1.2.3".into()],
            ..BuildOpts::default()
        };
        let p = plan(&input(&config, &v, &opts)).unwrap();
        assert_eq!(p.reference, "pp:v1.2.3");
        assert_eq!(
            p.tags,
            vec!["pp:v1.2.3", "pp:sha-0123456", "pp:latest", "reg.example/pp:v1.2.3"]
        );
        assert_eq!(pairs(&p.label_argv, "--tag"), p.tags);
        assert!(pairs(&p.argv, "--tag").is_empty() && pairs(&p.argv, "--label").is_empty());
        assert_eq!(p.label_argv.last().unwrap(), "-");
        assert!(
            !p.label_argv.contains(&"--pull".to_string()),
            "the label step builds on a local id"
        );
        assert_eq!(
            pairs(&p.label_argv, "--cache-from"),
            vec!["pp:latest"],
            "same digest on a fresh runner"
        );
        assert_eq!(pairs(&p.label_argv, "--iidfile"), vec!["/r/target/xtask/image/iid"]);
        assert_eq!(&p.argv[..3], &["build", "--file", "/r/Dockerfile"]);
        assert_eq!(p.argv.last().unwrap(), "/r");
        for f in ["--pull", "--no-cache", "--force-rm"] {
            assert!(p.argv.contains(&f.to_string()), "{f}");
        }
        assert_eq!(pairs(&p.argv, "--network"), vec!["host"]);
        assert_eq!(pairs(&p.argv, "--cache-from"), vec!["pp:latest"]);
        assert_eq!(pairs(&p.argv, "--iidfile"), vec!["/r/target/xtask/image/build.iid"]);
        assert_eq!(pairs(&p.argv, "--build-arg"), vec!["BASE_IMAGE=busybox:local"]);
        let labels: Vec<String> = p.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        for want in [
            "io.policy-platform.tool.kyverno=1.19.1",
            "io.policy-platform.tool.helm=3.21.4",
            "io.policy-platform.tool.pluto=5.24.0",
            "org.opencontainers.image.base.name=busybox:local",
            "org.opencontainers.image.version=v1.2.3",
            "io.policy-platform.policy-hash=feed",
        ] {
            assert!(labels.contains(&want.to_string()), "{want} in {labels:?}");
        }
    }

    #[test]
    fn one_label_instruction_with_escaped_values() {
        let labels = BTreeMap::from([
            ("a.title".to_string(), "pp".to_string()),
            ("b.desc".to_string(), "say \"hi\" $HOME \\ ok\nnext".to_string()),
        ]);
        let df = label_dockerfile("sha256:abc", &labels);
        assert_eq!(
            df,
            "FROM sha256:abc\nLABEL \"a.title\"=\"pp\" \\\n      \"b.desc\"=\"say \\\"hi\\\" \\$HOME \\\\ ok next\"\n"
        );
    }

    #[test]
    fn prerelease_has_no_latest_and_plain_build_has_no_extras() {
        let config = Config::default();
        let v = Version::parse("2.0.0-rc.1").unwrap();
        let opts = BuildOpts::default();
        let p = plan(&input(&config, &v, &opts)).unwrap();
        assert_eq!(
            p.tags,
            vec!["policy-platform:v2.0.0-rc.1", "policy-platform:sha-0123456"]
        );
        for f in ["--pull", "--no-cache", "--network", "--cache-from", "--build-arg"] {
            assert!(!p.argv.contains(&f.to_string()), "{f}");
        }
    }

    #[test]
    fn mirror_sets_every_url_but_an_explicit_one() {
        let config = Config::default();
        let v = Version::new(1, 0, 0);
        let opts = BuildOpts {
            tools_mirror: Some("http://127.0.0.1:9/tools/".into()),
            build_args: vec!["HELM_URL=http://elsewhere/h.tgz".into()],
            ..BuildOpts::default()
        };
        let p = plan(&input(&config, &v, &opts)).unwrap();
        let args = pairs(&p.argv, "--build-arg");
        assert!(args.contains(&"KYVERNO_URL=http://127.0.0.1:9/tools/kyverno-cli_v1.19.1_linux_x86_64.tar.gz".into()));
        assert!(args.contains(&"PLUTO_URL=http://127.0.0.1:9/tools/pluto_5.24.0_linux_amd64.tar.gz".into()));
        assert!(args.contains(&"HELM_URL=http://elsewhere/h.tgz".into()));
        assert_eq!(args.iter().filter(|a| a.starts_with("HELM_URL=")).count(), 1);
    }

    #[test]
    fn bad_build_args_are_usage_errors() {
        let config = Config::default();
        let v = Version::new(1, 0, 0);
        for (args, mirror, want) in [
            (vec!["NOVALUE"], None, "not KEY=VALUE"),
            (vec!["KYVERNO_VERSON=1"], None, "no `ARG KYVERNO_VERSON`"),
            (vec!["HELM_VERSION=3.9.9"], None, "HELM_SHA256"),
            (vec![], Some("ftp://m"), "--tools-mirror"),
        ] {
            let opts = BuildOpts {
                build_args: args.iter().map(|s| s.to_string()).collect(),
                tools_mirror: mirror.map(String::from),
                ..BuildOpts::default()
            };
            let e = plan(&input(&config, &v, &opts)).unwrap_err();
            assert_eq!(code_of(&e), 2, "{e}");
            assert!(e.to_string().contains(want), "{e}");
        }
        let opts = BuildOpts {
            build_args: vec!["HELM_VERSION=3.9.9".into(), "HELM_SHA256=ff".into()],
            ..BuildOpts::default()
        };
        assert_eq!(plan(&input(&config, &v, &opts)).unwrap().tools["helm"], "3.9.9");
    }

    #[test]
    fn history_and_size_gate() {
        let out = "1200\t/bin/sh -c #(nop) COPY dir:abc in /repos/ \n45000000\tCOPY /out/ / # buildkit\n0\t/bin/sh -c #(nop)  USER 10001\n2100000\t/bin/sh -c #(nop) ADD file:x in / \n";
        let layers = parse_history(out);
        assert_eq!(layers.len(), 4);
        assert_eq!(
            layers[0],
            Layer {
                size: 1200,
                created_by: "COPY dir:abc in /repos/".into()
            }
        );
        assert_eq!(layers[2].created_by, "USER 10001");
        assert_eq!(parse_history("2000000\t\n")[0].created_by, "(base image)");
        let total: u64 = layers.iter().map(|l| l.size).sum();
        size_gate(total, 48, &layers).unwrap();
        let e = size_gate(total, 40, &layers).unwrap_err();
        assert_eq!(code_of(&e), 1);
        let msg = e.to_string();
        assert!(msg.contains("is 47.1 MB") && msg.contains("budget of 40 MB"), "{msg}");
        assert!(msg.contains("1.2 kB COPY dir:abc"), "{msg}");
        let first = msg.find("45.0 MB COPY /out/").expect(&msg);
        assert!(first < msg.find("2.1 MB ADD").unwrap(), "largest first: {msg}");
        assert!(layer_table(&layers).contains("45.0 MB  COPY /out/ / # buildkit"));
    }

    #[test]
    fn failures_name_the_tool() {
        let tools = tags::TOOLS.as_slice();
        let lines = |s: &str| s.lines().map(String::from).collect::<Vec<_>>();
        let e = explain_failure(&lines("Step 5/9 : RUN ...\nkyverno.tar.gz: FAILED\nchecksum mismatch for kyverno: ...\nThe command '/bin/sh -c fetch() { echo \"download failed for $1\"; echo \"checksum mismatch for $1\"; echo \"no $4 in the $1 tarball\"; }' returned a non-zero code: 1"), tools, None);
        assert_eq!(code_of(&e), 3);
        assert!(
            e.to_string().starts_with("the kyverno download does not match")
                && e.to_string().contains("KYVERNO_SHA256"),
            "{e}"
        );
        let e = explain_failure(&lines("download failed for pluto from http://x/p.tgz"), tools, None);
        assert!(
            e.to_string().contains("cannot download pluto") && e.to_string().contains("--tools-mirror"),
            "{e}"
        );
        let e = explain_failure(&lines("no linux-amd64/helm in the helm tarball"), tools, None);
        assert!(e.to_string().contains("helm release tarball"), "{e}");
        let e = explain_failure(
            &lines("pull access denied for alpine, repository does not exist"),
            tools,
            Some("alpine:3.22"),
        );
        assert!(
            e.to_string().contains("base image alpine:3.22") && e.to_string().contains("BASE_IMAGE"),
            "{e}"
        );
        assert!(
            e.to_string().contains("DOWNLOAD_IMAGE="),
            "the download stages' image is named too: {e}"
        );
        let e = explain_failure(&lines("something\nboom\n"), tools, None);
        assert!(e.to_string().contains("(boom)"), "{e}");
    }

    #[test]
    fn arg_names_with_and_without_defaults() {
        assert_eq!(
            arg_names("ARG A=1\nFROM x\nARG B\n  ARG A\nRUN echo ARG C\nARG D=1 \\\n  E=2 F"),
            vec!["A", "B", "D", "E", "F"]
        );
    }
}
