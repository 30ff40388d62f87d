//! The pure half of `smoke`: the script run inside the image, reading its output, the
//! tools' version formats, and comparing the image's `/repos/` with the checkout.

use std::collections::BTreeMap;

/// Runs inside the image as `sh -c SCRIPT sh TOOL...`: each tool's `version`, then a
/// sha256 of every file under /repos and a list of everything that is not a regular file.
/// Constant text; the tools come in as positional arguments.
pub const SCRIPT: &str = r#"for t in "$@"; do
  echo "@@tool $t"
  "$t" version 2>&1
  echo "@@rc $?"
done
if cd /repos 2>/dev/null; then
  echo "@@files"
  find . -type f -print0 | xargs -0 -r sha256sum
  echo "@@dirs"
  find . -mindepth 1 -type d
  echo "@@other"
  find . ! -type f ! -type d
else
  echo "@@norepos"
fi
echo "@@end"
"#;

/// What the script saw.
#[derive(Debug, Default, PartialEq)]
pub struct Seen {
    /// Tool → (exit code, output).
    pub tools: BTreeMap<String, (i32, String)>,
    /// `None` when /repos does not exist.
    pub files: Option<BTreeMap<String, String>>,
    pub dirs: Vec<String>,
    pub other: Vec<String>,
}

/// Parses the script's output; `None` if it did not run to the end.
pub fn parse_output(out: &str) -> Option<Seen> {
    let mut seen = Seen::default();
    let mut section = "";
    let mut tool = String::new();
    let mut buf = String::new();
    let mut files = BTreeMap::new();
    let mut ended = false;
    for line in out.lines() {
        if let Some(t) = line.strip_prefix("@@tool ") {
            section = "tool";
            tool = t.to_string();
            buf.clear();
            continue;
        }
        if let Some(rc) = line.strip_prefix("@@rc ") {
            if section == "tool" {
                seen.tools.insert(
                    tool.clone(),
                    (rc.trim().parse().unwrap_or(-1), buf.trim_end().to_string()),
                );
            }
            section = "";
            continue;
        }
        match line {
            "@@files" | "@@dirs" | "@@other" => {
                section = &line[2..];
                seen.files.get_or_insert_with(BTreeMap::new);
                continue;
            }
            "@@norepos" => {
                section = "";
                continue;
            }
            "@@end" => {
                ended = true;
                break;
            }
            _ => {}
        }
        match section {
            "tool" => {
                buf.push_str(line);
                buf.push('\n');
            }
            "files" => {
                if let Some((sum, path)) = line.split_once("  ") {
                    files.insert(clean(path), sum.to_string());
                }
            }
            "dirs" if !line.is_empty() => seen.dirs.push(clean(line)),
            "other" if !line.is_empty() => seen.other.push(clean(line)),
            _ => {}
        }
    }
    if seen.files.is_some() {
        seen.files = Some(files);
    }
    ended.then_some(seen)
}

fn clean(path: &str) -> String {
    path.trim_start_matches("./").to_string()
}

/// The version a tool reports, without a leading `v`, from its `version` output:
/// kyverno `Version: 1.19.1`; helm `version.BuildInfo{Version:"v3.21.4", ...}` or
/// `--short` `v3.21.4+g813176c`; pluto `Version:5.24.0 Commit:...`.
pub fn reported_version(tool: &str, out: &str) -> Option<String> {
    let v = match tool {
        "helm" => {
            if let Some(i) = out.find("Version:\"") {
                let rest = &out[i + 9..];
                rest[..rest.find('"')?].to_string()
            } else {
                let first = out.lines().next()?.trim();
                first.split('+').next()?.to_string()
            }
        }
        "pluto" => out
            .lines()
            .find_map(|l| l.trim().strip_prefix("Version:"))?
            .split_whitespace()
            .next()?
            .to_string(),
        _ => out
            .lines()
            .find_map(|l| l.trim().strip_prefix("Version:"))?
            .trim()
            .to_string(),
    };
    let v = v.trim().trim_start_matches('v').to_string();
    (!v.is_empty() && v.chars().next()?.is_ascii_digit()).then_some(v)
}

/// One check's result, as printed.
#[derive(Debug, PartialEq)]
pub struct Outcome {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

fn outcome(name: &str, ok: bool, detail: String) -> Outcome {
    Outcome {
        name: name.to_string(),
        ok,
        detail,
    }
}

/// Every check: one per tool, then the policy files. `pins` are the image's tool labels;
/// `host` maps `repo/path` to sha256 for every file under `policies/`.
pub fn evaluate(
    tools: &[&str],
    pins: &BTreeMap<String, String>,
    seen: &Seen,
    host: &BTreeMap<String, String>,
) -> Vec<Outcome> {
    let mut out = Vec::new();
    for tool in tools {
        let label = crate::tags::tool_label(tool);
        let Some(pin) = pins.get(*tool) else {
            out.push(outcome(
                tool,
                false,
                format!("the image has no label {label}; build it with `cargo xtask image`"),
            ));
            continue;
        };
        let pin = pin.trim_start_matches('v');
        let result = match seen.tools.get(*tool) {
            None => outcome(tool, false, "was not run".into()),
            Some((127, _)) => outcome(tool, false, format!("`{tool}` is missing from the image (not on PATH)")),
            Some((code, text)) if *code != 0 => outcome(
                tool,
                false,
                format!("`{tool} version` failed with exit {code}: {}", first_line(text)),
            ),
            Some((_, text)) => match reported_version(tool, text) {
                Some(v) if v == pin => outcome(tool, true, v),
                Some(v) => outcome(
                    tool,
                    false,
                    format!("reports version {v}, but the image pins {pin} ({label})"),
                ),
                None => outcome(
                    tool,
                    false,
                    format!("`{tool} version` printed no version: {}", first_line(text)),
                ),
            },
        };
        out.push(result);
    }
    out.extend(compare_repos(seen, host));
    out
}

fn first_line(s: &str) -> String {
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("(no output)")
        .trim()
        .to_string()
}

fn compare_repos(seen: &Seen, host: &BTreeMap<String, String>) -> Vec<Outcome> {
    let name = "policies";
    let Some(files) = &seen.files else {
        return vec![outcome(name, false, "/repos/ does not exist in the image".into())];
    };
    if host.is_empty() {
        return vec![outcome(
            name,
            false,
            "policies/ in the checkout holds no file: the image would carry no policy".into(),
        )];
    }
    let mut problems = Vec::new();
    for (path, sum) in host {
        match files.get(path) {
            None => problems.push(format!("/repos/{path} is missing (policies/{path} is in the checkout)")),
            Some(s) if s != sum => problems.push(format!("/repos/{path} differs from policies/{path}")),
            Some(_) => {}
        }
    }
    for path in files.keys().filter(|p| !host.contains_key(*p)) {
        problems.push(format!("/repos/{path} is not in policies/"));
    }
    for dir in seen
        .dirs
        .iter()
        .filter(|d| !host.keys().any(|p| p.starts_with(&format!("{d}/"))))
    {
        problems.push(format!("/repos/{dir}/ is not in policies/"));
    }
    for path in &seen.other {
        problems.push(format!("/repos/{path} is not a regular file"));
    }
    if problems.is_empty() {
        let repos: std::collections::BTreeSet<&str> = host.keys().map(|p| p.split('/').next().unwrap_or("")).collect();
        let list: Vec<&str> = repos.into_iter().collect();
        return vec![outcome(
            name,
            true,
            format!("{} files in {} match /repos/", host.len(), list.join(", ")),
        )];
    }
    problems.into_iter().map(|p| outcome(name, false, p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOOLS: [&str; 3] = ["kyverno", "helm", "pluto"];

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    const GOOD: &str = "@@tool kyverno\nVersion: 1.19.1\nTime: 2026-09-10T05:20:21Z\nGit commit ID: 40ec788d48bb28d83dbf85538e962a59db9d45c6\n@@rc 0\n@@tool helm\nversion.BuildInfo{Version:\"v3.21.4\", GitCommit:\"813176c51bb5c181dbbd7901298ddcc104cd3417\", GitTreeState:\"clean\", GoVersion:\"go1.26.5\"}\n@@rc 0\n@@tool pluto\nVersion:5.24.0 Commit:dd5ec8cccce5e42dfe8054b8250baa35546056a0\n@@rc 0\n@@files\naaa  ./sec/a.yaml\nbbb  ./sec/sub dir/b.yaml\n@@dirs\n./sec\n./sec/sub dir\n@@other\n@@end\n";

    fn pins() -> BTreeMap<String, String> {
        map(&[("kyverno", "1.19.1"), ("helm", "3.21.4"), ("pluto", "5.24.0")])
    }

    fn host() -> BTreeMap<String, String> {
        map(&[("sec/a.yaml", "aaa"), ("sec/sub dir/b.yaml", "bbb")])
    }

    #[test]
    fn versions_in_every_real_format() {
        assert_eq!(
            reported_version("kyverno", "Version: 1.19.0\nTime: ---\nGit commit ID: ---\n").unwrap(),
            "1.19.0"
        );
        assert_eq!(
            reported_version("pluto", "Version:5.24.0 Commit:dd5ec8cc").unwrap(),
            "5.24.0"
        );
        assert_eq!(
            reported_version("helm", "version.BuildInfo{Version:\"v3.21.4\", GitCommit:\"x\", GitTreeState:\"clean\", GoVersion:\"go1.25.1\"}").unwrap(),
            "3.21.4"
        );
        assert_eq!(
            reported_version(
                "helm",
                "version.BuildInfo{Version:\"v4.2.4\", GitCommit:\"x\", KubeClientVersion:\"v1.35\"}"
            )
            .unwrap(),
            "4.2.4"
        );
        assert_eq!(reported_version("helm", "v3.21.4+g813176c\n").unwrap(), "3.21.4");
        assert_eq!(reported_version("pluto", "Version:development Commit:n/a"), None);
        assert_eq!(reported_version("kyverno", "Version: ---"), None);
        assert_eq!(reported_version("kyverno", "sh: kyverno: not found"), None);
    }

    #[test]
    fn a_good_image_passes_every_check() {
        let seen = parse_output(GOOD).unwrap();
        assert_eq!(seen.tools["helm"].0, 0);
        assert_eq!(seen.files.as_ref().unwrap()["sec/sub dir/b.yaml"], "bbb");
        let r = evaluate(&TOOLS, &pins(), &seen, &host());
        assert!(r.iter().all(|o| o.ok), "{r:?}");
        assert_eq!(r.len(), 4);
        assert_eq!(r[3].detail, "2 files in sec match /repos/");
    }

    #[test]
    fn unfinished_output_is_not_a_result() {
        assert!(parse_output("@@tool kyverno\nVersion: 1\n@@rc 0\n").is_none());
    }

    #[test]
    fn each_problem_is_named() {
        let out = GOOD
            .replace("Version:5.24.0", "Version:5.23.0")
            .replace("version.BuildInfo{Version:\"v3.21.4\", GitCommit:\"813176c51bb5c181dbbd7901298ddcc104cd3417\", GitTreeState:\"clean\", GoVersion:\"go1.26.5\"}\n@@rc 0", "sh: helm: not found\n@@rc 127")
            .replace("bbb  ./sec/sub dir/b.yaml", "bbX  ./sec/sub dir/b.yaml\nccc  ./extra/c.yaml")
            .replace("@@other\n", "@@other\n./sec/link\n");
        let seen = parse_output(&out).unwrap();
        let mut h = host();
        h.insert("sec/gone.yaml".into(), "ddd".into());
        let r = evaluate(&TOOLS, &pins(), &seen, &h);
        let bad: Vec<String> = r
            .iter()
            .filter(|o| !o.ok)
            .map(|o| format!("{}: {}", o.name, o.detail))
            .collect();
        let want = [
            "helm: `helm` is missing from the image (not on PATH)",
            "pluto: reports version 5.23.0, but the image pins 5.24.0 (io.policy-platform.tool.pluto)",
            "policies: /repos/sec/gone.yaml is missing (policies/sec/gone.yaml is in the checkout)",
            "policies: /repos/sec/sub dir/b.yaml differs from policies/sec/sub dir/b.yaml",
            "policies: /repos/extra/c.yaml is not in policies/",
            "policies: /repos/sec/link is not a regular file",
        ];
        for w in want {
            assert!(bad.contains(&w.to_string()), "{w}\n in {bad:#?}");
        }
        assert_eq!(bad.len(), want.len(), "{bad:#?}");
        assert!(r.iter().any(|o| o.ok && o.name == "kyverno"));
    }

    #[test]
    fn missing_labels_repos_and_empty_checkout() {
        let seen = parse_output("@@tool kyverno\nVersion: 1.19.1\n@@rc 0\n@@norepos\n@@end\n").unwrap();
        assert!(seen.files.is_none());
        let r = evaluate(&["kyverno", "helm"], &map(&[("kyverno", "1.19.1")]), &seen, &host());
        assert!(r[0].ok);
        assert!(r[1].detail.contains("no label io.policy-platform.tool.helm"), "{r:?}");
        assert!(r[2].detail.contains("/repos/ does not exist"), "{r:?}");
        let seen = parse_output(GOOD).unwrap();
        let r = evaluate(&TOOLS, &pins(), &seen, &BTreeMap::new());
        assert!(r[3].detail.contains("holds no file"), "{r:?}");
        // An empty directory that is not in the checkout is something else in /repos/.
        let seen = parse_output(&GOOD.replace("@@dirs\n", "@@dirs\n./stray\n")).unwrap();
        let r = evaluate(&TOOLS, &pins(), &seen, &host());
        assert!(
            r.iter().any(|o| o.detail == "/repos/stray/ is not in policies/"),
            "{r:?}"
        );
    }
}
