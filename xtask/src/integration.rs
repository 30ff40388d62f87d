//! `integration`: renders every chart under `policies/*/charts/*` with each of its values
//! files and checks the result against the image's policies, all inside the image (one
//! `docker run`): `helm template | kyverno apply /repos/security-policy/ --resource -`,
//! `pluto detect -` against the configured Kubernetes version, and `kyverno test` on every
//! policy repo with tests. Needs docker and the image (`cargo xtask image`).

mod parse;
mod pluto;
mod verdict;

use crate::tools::docker;
use crate::{ctx::Ctx, exit};
use anyhow::{Context, Result};
use std::path::Path;
use verdict::Case;

/// The policies every chart is checked against, as the image holds them.
pub const POLICY_DIR: &str = "/repos/security-policy/";

/// Runs inside the image with `/workspace` = the checkout (read-only). Arguments: the
/// policy folder, the Kubernetes version, then chart/values-file pairs. Each tool run is
/// wrapped in `::pp-integration::` begin/stderr/end markers that `parse::sections` reads.
const SCRIPT: &str = r#"set -u
policies=$1; k8s=$2; shift 2
tmp=$(mktemp -d /tmp/pp-integration.XXXXXX) || exit 1
# section LABEL CHART VALUES INPUT DIR CMD...: runs CMD, keeps its framed output in DIR/LABEL.
section() {
    label=$1; chart=$2; values=$3; input=$4; dir=$5; shift 5
    "$@" <"$input" >"$dir/$label.out" 2>"$dir/$label.err"
    rc=$?
    {
        printf '::pp-integration::begin\t%s\t%s\t%s\n' "$label" "$chart" "$values"
        cat "$dir/$label.out"
        printf '\n::pp-integration::stderr\n'
        cat "$dir/$label.err"
        printf '\n::pp-integration::end\t%s\n' "$rc"
    } >"$dir/$label.framed"
    return $rc
}
# Every chart x values case and every repo's policy tests run side by side; the output
# comes out in a fixed order afterwards.
n=0
while [ $# -ge 2 ]; do
    chart=$1; values=$2; shift 2
    n=$((n + 1)); d="$tmp/$n"; mkdir "$d"
    (
        if section helm "$chart" "$values" /dev/null "$d" helm template "${chart##*/}" "$chart" -f "$chart/$values"; then
            section kyverno "$chart" "$values" "$d/helm.out" "$d" kyverno apply "$policies" --resource - &
            section pluto "$chart" "$values" "$d/helm.out" "$d" pluto detect - -o json --target-versions "k8s=$k8s"
            wait
        fi
    ) &
done
for repo in /repos/*/; do
    [ -n "$(find "$repo" -type f -name kyverno-test.yaml | head -n 1)" ] || continue
    n=$((n + 1)); d="$tmp/$n"; mkdir "$d"
    section kyverno-test "$repo" - /dev/null "$d" kyverno test "$repo" &
done
wait
i=0
while [ "$i" -lt "$n" ]; do
    i=$((i + 1))
    for label in helm kyverno pluto kyverno-test; do
        if [ -f "$tmp/$i/$label.framed" ]; then cat "$tmp/$i/$label.framed"; fi
    done
done
rm -rf "$tmp"
"#;

/// Runs the whole check on `image` and prints the table. Returns the summary for the
/// release record; exit 1 on a violation, a deprecated API or a failing policy test, exit 3
/// when a tool errors, loads no policy rule or a chart renders nothing.
pub fn check(ctx: &Ctx, image: &str) -> Result<serde_json::Value> {
    check_as(ctx, image, image)
}

/// [`check`] of `image` (publish gives the built image's id) under the name `shown`.
pub fn check_as(ctx: &Ctx, image: &str, shown: &str) -> Result<serde_json::Value> {
    let cases = cases(&ctx.root)?;
    let k8s = ctx.config()?.kubernetes_version.clone();
    let mut pairs = Vec::new();
    for c in &cases {
        pairs.push(c.chart.clone());
        pairs.push(c.values.clone());
    }
    // An absolute path, or docker would take it for a volume name.
    let root = std::fs::canonicalize(&ctx.root).with_context(|| format!("cannot resolve {}", ctx.root.display()))?;
    let mut args = vec![POLICY_DIR.to_string(), k8s.clone()];
    args.extend(pairs);
    let run = docker::Run {
        image,
        script: SCRIPT,
        args,
        mount_ro: Some((&root, "/workspace")),
        workdir: Some("/workspace"),
    };
    if ctx.dry_run() {
        ctx.run.show(&run.cmd());
        let names: Vec<String> = cases.iter().map(Case::name).collect();
        println!(
            "integration {shown}: would check {} chart/values case(s): {}",
            cases.len(),
            names.join(", ")
        );
        return Ok(serde_json::json!({ "image": shown, "dry_run": true }));
    }
    docker::require(ctx)?;
    ctx.step(&format!("integration {shown}"));
    let out = run.output(ctx)?;
    let stdout = out.text();
    let stderr = out.stderr.clone();
    let sections = parse::sections(&stdout);
    if !out.ok() || (sections.is_empty() && !cases.is_empty()) {
        ctx.end_step();
        return Err(container_error(shown, out.code, &stderr, &stdout));
    }
    let outcome = verdict::evaluate(&cases, &sections, POLICY_DIR, &k8s);
    println!("integration {shown} (Kubernetes {k8s})\n");
    print!("{}", verdict::render(&outcome));
    for d in &outcome.details {
        eprintln!("  {d}");
    }
    ctx.end_step();
    decide(&outcome)?;
    Ok(verdict::summary(&outcome, shown, &k8s))
}

/// One error from the outcome: environment problems first (the results are not to be
/// trusted), then every gate failure.
fn decide(o: &verdict::Outcome) -> Result<()> {
    if !o.env.is_empty() {
        return Err(exit::env(format!(
            "integration could not check everything: {}",
            o.env.join("; ")
        )));
    }
    let mut gate = Vec::new();
    if !o.violations.is_empty() {
        gate.push(format!(
            "{} policy violation(s): {}",
            o.violations.len(),
            o.violations.join("; ")
        ));
    }
    if !o.deprecations.is_empty() {
        gate.push(format!(
            "{} deprecated or removed API(s): {}",
            o.deprecations.len(),
            o.deprecations.join("; ")
        ));
    }
    if !o.test_failures.is_empty() {
        gate.push(o.test_failures.join("; "));
    }
    if gate.is_empty() {
        return Ok(());
    }
    Err(exit::gate(format!(
        "integration: {}; fix the charts or values (or the policies) and run again",
        gate.join("; ")
    )))
}

fn container_error(image: &str, code: Option<i32>, stderr: &str, stdout: &str) -> anyhow::Error {
    let why = crate::runner::first_line(stderr, stdout);
    match code {
        Some(125) if stderr.contains("No such image") || stderr.contains("Unable to find image") => {
            docker::not_found(image)
        }
        Some(125) => exit::env(format!("docker could not start {image} ({why})")),
        Some(126) | Some(127) => exit::env(format!("{image} has no /bin/sh to run the checks ({why})")),
        _ => exit::env(format!(
            "the checks inside {image} did not finish (exit {}: {why})",
            code.map_or("signal".into(), |c| c.to_string())
        )),
    }
}

/// Every `policies/<repo>/charts/<chart>/` with a Chart.yaml, each with its `values.yaml`
/// and `values-<env>.yaml` files (values.yaml first). Exit 2 when there is none.
pub fn cases(root: &Path) -> Result<Vec<Case>> {
    let mut cases = Vec::new();
    for repo in sorted_dirs(&root.join("policies"))? {
        for chart in sorted_dirs(&root.join("policies").join(&repo).join("charts"))? {
            let dir = root.join("policies").join(&repo).join("charts").join(&chart);
            if !dir.join("Chart.yaml").is_file() {
                continue;
            }
            let mut values: Vec<String> = std::fs::read_dir(&dir)
                .with_context(|| format!("cannot read {}", dir.display()))?
                .filter_map(|e| e.ok())
                .filter(|e| e.path().is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| is_values_file(n))
                .collect();
            values.sort_by_key(|n| (!n.starts_with("values."), n.clone()));
            let rel = format!("policies/{repo}/charts/{chart}");
            if values.is_empty() {
                return Err(exit::usage(format!(
                    "{rel} has no values.yaml; add one (even empty) so the chart can be rendered"
                )));
            }
            cases.extend(values.into_iter().map(|v| Case {
                chart: rel.clone(),
                values: v,
            }));
        }
    }
    if cases.is_empty() {
        return Err(exit::usage(
            "no Helm chart under policies/*/charts/* (a folder with Chart.yaml); add one to test",
        ));
    }
    Ok(cases)
}

/// `values.yaml`, `values-prod.yaml`, `values-eu-west.yml`: the chart's values files.
pub fn is_values_file(name: &str) -> bool {
    let stem = name.strip_suffix(".yaml").or_else(|| name.strip_suffix(".yml"));
    match stem {
        Some("values") => true,
        Some(s) => s.strip_prefix("values-").is_some_and(|env| !env.is_empty()),
        None => false,
    }
}

fn sorted_dirs(dir: &Path) -> Result<Vec<String>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    v.sort();
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_files() {
        for ok in ["values.yaml", "values.yml", "values-prod.yaml", "values-eu-west.yml"] {
            assert!(is_values_file(ok), "{ok}");
        }
        for no in [
            "values-.yaml",
            "values.json",
            "prod-values.yaml",
            "Chart.yaml",
            "values-prod.yaml.bak",
        ] {
            assert!(!is_values_file(no), "{no}");
        }
    }

    #[test]
    fn cases_from_a_tree() {
        let tmp = std::env::temp_dir().join(format!("pp-test-integration-cases-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        for (f, text) in [
            ("policies/apps/charts/web/Chart.yaml", "name: web\n"),
            ("policies/apps/charts/web/values-prod.yaml", ""),
            ("policies/apps/charts/web/values.yaml", ""),
            ("policies/apps/charts/web/templates/d.yaml", ""),
            ("policies/apps/charts/notachart/README.md", ""),
            ("policies/security-policy/p/p.yaml", ""),
        ] {
            std::fs::create_dir_all(tmp.join(f).parent().unwrap()).unwrap();
            std::fs::write(tmp.join(f), text).unwrap();
        }
        let got: Vec<String> = cases(&tmp).unwrap().iter().map(Case::name).collect();
        assert_eq!(
            got,
            vec!["apps/charts/web values.yaml", "apps/charts/web values-prod.yaml"]
        );
        std::fs::remove_file(tmp.join("policies/apps/charts/web/Chart.yaml")).unwrap();
        let e = cases(&tmp).unwrap_err();
        assert_eq!(exit::code_of(&e), 2);
        let _ = std::fs::remove_dir_all(&tmp);
    }

    #[test]
    fn host_values_reach_the_script_as_arguments_never_as_script_text() {
        // A chart path a contributor controls, with shell syntax in it.
        let hostile = "policies/x$(touch /tmp/pwned)'\"/charts/y";
        let run = crate::tools::docker::Run {
            image: "pp:v1",
            script: SCRIPT,
            args: vec![
                POLICY_DIR.into(),
                "v1.37.0".into(),
                hostile.into(),
                "values.yaml".into(),
            ],
            mount_ro: None,
            workdir: Some("/workspace"),
        };
        let argv: Vec<String> = run
            .cmd()
            .arg_list()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let c = argv.iter().position(|a| a == "-c").expect("sh -c");
        assert_eq!(argv[c + 1], SCRIPT, "the script is passed verbatim");
        assert_eq!(&argv[c + 2..], ["sh", POLICY_DIR, "v1.37.0", hostile, "values.yaml"]);
        assert!(SCRIPT.contains("kyverno apply \"$policies\" --resource -"));
    }
}
