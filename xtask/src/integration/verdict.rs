//! Pure gate decisions over the tool runs of one `integration`, the results table and the
//! summary for the release record.

use super::parse::{self, Counts, Section};
use super::pluto;
use serde_json::{json, Value};

/// One chart rendered with one values file (paths relative to the repo root).
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub chart: String,
    pub values: String,
}

impl Case {
    /// `backend-applications/charts/app values-prod.yaml`, as users name it.
    pub fn name(&self) -> String {
        format!(
            "{} {}",
            self.chart.strip_prefix("policies/").unwrap_or(&self.chart),
            self.values
        )
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    pub chart: String,
    pub values: String,
    pub resources: Option<usize>,
    pub rules: Option<u64>,
    pub counts: Option<Counts>,
    pub deprecated: Vec<String>,
    pub result: &'static str,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TestRow {
    pub repo: String,
    pub passed: Option<u64>,
    pub failed: Option<u64>,
    pub result: &'static str,
}

/// What the runs add up to. `env` problems (exit 3) mean the results cannot be trusted;
/// the other lists are gate failures (exit 1).
#[derive(Debug, Default)]
pub struct Outcome {
    pub rows: Vec<Row>,
    pub tests: Vec<TestRow>,
    pub violations: Vec<String>,
    pub deprecations: Vec<String>,
    pub test_failures: Vec<String>,
    pub env: Vec<String>,
    /// Full messages (kyverno's validation errors), printed under the table.
    pub details: Vec<String>,
    /// Cases where kyverno loaded no policy rule (one message for all of them).
    zero_rules: Vec<String>,
}

fn find<'a>(sections: &'a [Section], label: &str, case: &Case) -> Option<&'a Section> {
    sections
        .iter()
        .find(|s| s.label == label && s.chart == case.chart && s.values == case.values)
}

/// The first non-empty line of stderr, else of stdout: what a user needs to see of a crash.
fn why(s: &Section) -> String {
    format!("exit {}: {}", s.code, crate::runner::first_line(&s.stderr, &s.stdout))
}

/// `k8s` is the Kubernetes version pluto was asked to check against.
pub fn evaluate(cases: &[Case], sections: &[Section], policy_dir: &str, k8s: &str) -> Outcome {
    let mut o = Outcome::default();
    for case in cases {
        let row = check_case(case, sections, k8s, &mut o);
        o.rows.push(row);
    }
    if !o.zero_rules.is_empty() {
        o.env.push(format!(
            "kyverno loaded 0 policy rules from {policy_dir} for {} (kyverno drops a whole folder when one .yaml in it is not a policy, and then passes everything); keep only policies there (test resources go in a hidden folder such as .kyverno-test/) and rebuild the image",
            o.zero_rules.join(", ")
        ));
    }
    for s in sections.iter().filter(|s| s.label == "kyverno-test") {
        let (passed, failed, result) = match parse::kyverno_test(&s.stdout) {
            Some(t) if t.failed == 0 && s.code == 0 => (Some(t.passed), Some(0), "ok"),
            Some(t) if t.failed > 0 => {
                o.test_failures.push(format!(
                    "kyverno test {}: {} of {} tests failed ({})",
                    s.chart,
                    t.failed,
                    t.passed + t.failed,
                    t.failures.join("; ")
                ));
                (Some(t.passed), Some(t.failed), "FAIL")
            }
            _ => {
                o.env.push(format!("kyverno test {} did not run ({})", s.chart, why(s)));
                (None, None, "ERROR")
            }
        };
        o.tests.push(TestRow {
            repo: s.chart.clone(),
            passed,
            failed,
            result,
        });
    }
    o
}

fn check_case(case: &Case, sections: &[Section], k8s: &str, o: &mut Outcome) -> Row {
    let mut row = Row {
        chart: case.chart.strip_prefix("policies/").unwrap_or(&case.chart).to_string(),
        values: case.values.clone(),
        ..Row::default()
    };
    let name = case.name();
    let env = |o: &mut Outcome, msg: String| {
        o.env.push(msg);
        "ERROR"
    };
    let Some(helm) = find(sections, "helm", case) else {
        row.result = env(o, format!("{name}: no helm result (the container stopped early)"));
        return row;
    };
    if helm.code != 0 {
        row.result = env(o, format!("helm template failed for {name} ({})", why(helm)));
        return row;
    }
    let rendered = parse::count_manifests(&helm.stdout);
    row.resources = Some(rendered);
    if rendered == 0 {
        row.result = env(
            o,
            format!("helm template rendered no resources for {name}, so nothing was checked"),
        );
        return row;
    }
    let mut result = "ok";
    match find(sections, "kyverno", case) {
        None => result = env(o, format!("{name}: no kyverno result (the container stopped early)")),
        Some(k) => match parse::apply(&k.stdout) {
            None => result = env(o, format!("kyverno apply failed for {name} ({})", why(k))),
            Some(a) => {
                row.rules = Some(a.rules);
                row.counts = Some(a.counts.clone());
                if a.rules == 0 {
                    o.zero_rules.push(name.clone());
                    result = "ERROR";
                } else if a.resources as usize != rendered {
                    result = env(
                        o,
                        format!(
                            "kyverno read {} of the {rendered} resources helm rendered for {name}",
                            a.resources
                        ),
                    );
                } else if a.counts.error > 0 || !(k.code == 0 || k.code == 1) || (k.code == 1 && a.counts.fail == 0) {
                    result = env(
                        o,
                        format!(
                            "kyverno apply reported {} rule error(s) for {name} ({})",
                            a.counts.error,
                            why(k)
                        ),
                    );
                } else if a.counts.fail > 0 {
                    result = "FAIL";
                    for v in a.violations.iter().filter(|v| !v.warning) {
                        o.violations.push(format!(
                            "{name}: policy {}, rule {}, resource {}",
                            v.policy, v.rule, v.resource
                        ));
                        o.details.push(format!(
                            "{name}: policy {} rule {} resource {}: {}",
                            v.policy, v.rule, v.resource, v.message
                        ));
                    }
                    if a.violations.iter().all(|v| v.warning) {
                        o.violations.push(format!(
                            "{name}: {} failed rule(s) (kyverno printed no details)",
                            a.counts.fail
                        ));
                    }
                }
            }
        },
    }
    match find(sections, "pluto", case) {
        None => result = env(o, format!("{name}: no pluto result (the container stopped early)")),
        Some(p) => match pluto::judge(p.code, &p.stdout, &p.stderr, k8s) {
            Err(e) => result = env(o, format!("{name}: {e}")),
            Ok(findings) => {
                for f in &findings {
                    row.deprecated.push(format!("{} {} {}", f.version, f.kind, f.status()));
                    o.deprecations.push(format!("{name}: {}", f.describe()));
                }
                if !findings.is_empty() && result == "ok" {
                    result = "FAIL";
                }
            }
        },
    }
    row.result = result;
    row
}

fn table(head: &[&str], rows: &[Vec<String>], right: &[bool]) -> String {
    let mut w: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    let line = |cells: Vec<String>| {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if right[i] {
                    format!("{c:>width$}", width = w[i])
                } else {
                    format!("{c:<width$}", width = w[i])
                }
            })
            .collect();
        parts.join("  ").trim_end().to_string() + "\n"
    };
    let mut s = line(head.iter().map(|h| h.to_string()).collect());
    for r in rows {
        s.push_str(&line(r.clone()));
    }
    s
}

/// The results as two plain-text tables: charts × values files, then policy tests.
pub fn render(o: &Outcome) -> String {
    let num = |v: Option<u64>| v.map_or("-".to_string(), |n| n.to_string());
    let rows: Vec<Vec<String>> = o
        .rows
        .iter()
        .map(|r| {
            let c = r.counts.clone();
            let count = |f: fn(&Counts) -> u64| num(c.as_ref().map(f));
            vec![
                r.chart.clone(),
                r.values.clone(),
                num(r.resources.map(|n| n as u64)),
                num(r.rules),
                count(|c| c.pass),
                count(|c| c.fail),
                count(|c| c.warn),
                count(|c| c.error),
                count(|c| c.skip),
                if r.deprecated.is_empty() {
                    "-".into()
                } else {
                    r.deprecated.join("; ")
                },
                r.result.to_string(),
            ]
        })
        .collect();
    let head = [
        "CHART",
        "VALUES",
        "RESOURCES",
        "RULES",
        "PASS",
        "FAIL",
        "WARN",
        "ERROR",
        "SKIP",
        "DEPRECATED APIS",
        "RESULT",
    ];
    let right = [false, false, true, true, true, true, true, true, true, false, false];
    let mut s = table(&head, &rows, &right);
    if !o.tests.is_empty() {
        let rows: Vec<Vec<String>> = o
            .tests
            .iter()
            .map(|t| vec![t.repo.clone(), num(t.passed), num(t.failed), t.result.to_string()])
            .collect();
        s.push('\n');
        s.push_str(&table(
            &["POLICY TESTS", "PASSED", "FAILED", "RESULT"],
            &rows,
            &[false, true, true, false],
        ));
    }
    s
}

/// The summary `publish` puts in the release record.
pub fn summary(o: &Outcome, image: &str, kubernetes_version: &str) -> Value {
    let cases: Vec<Value> = o
        .rows
        .iter()
        .map(|r| {
            let c = r.counts.clone().unwrap_or_default();
            json!({
                "chart": r.chart, "values": r.values, "resources": r.resources, "rules": r.rules,
                "pass": c.pass, "fail": c.fail, "warn": c.warn, "error": c.error, "skip": c.skip,
                "deprecated": r.deprecated, "result": r.result,
            })
        })
        .collect();
    let tests: Vec<Value> = o
        .tests
        .iter()
        .map(|t| json!({"repo": t.repo, "passed": t.passed, "failed": t.failed, "result": t.result}))
        .collect();
    json!({
        "image": image,
        "kubernetes_version": kubernetes_version,
        "cases": cases,
        "policy_tests": tests,
        "passed": o.env.is_empty() && o.violations.is_empty() && o.deprecations.is_empty() && o.test_failures.is_empty(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integration::parse::MARK;

    const CHART: &str = "policies/apps/charts/web";

    fn case(values: &str) -> Case {
        Case {
            chart: CHART.into(),
            values: values.into(),
        }
    }

    fn sec(label: &str, values: &str, code: i32, stdout: &str, stderr: &str) -> String {
        format!("{MARK}begin\t{label}\t{CHART}\t{values}\n{stdout}\n{MARK}stderr\n{stderr}\n{MARK}end\t{code}\n")
    }

    const RENDERED: &str =
        "---\n# Source: web/templates/deployment.yaml\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n";
    const PASS: &str =
        "\nApplying 3 policy rule(s) to 1 resource(s)...\n\npass: 1, fail: 0, warn: 0, error: 0, skip: 0 \n";
    const NONE: &str = "{\"target-versions\":{\"cert-manager\":\"v1.5.3\",\"istio\":\"v1.11.0\",\"k8s\":\"v1.37.0\"}}";

    fn run(out: &str) -> Outcome {
        evaluate(
            &[case("values.yaml")],
            &parse::sections(out),
            "/repos/security-policy/",
            "v1.37.0",
        )
    }

    #[test]
    fn a_clean_case_passes() {
        let out = sec("helm", "values.yaml", 0, RENDERED, "")
            + &sec("kyverno", "values.yaml", 0, PASS, "")
            + &sec("pluto", "values.yaml", 0, NONE, "");
        let o = run(&out);
        assert!(
            o.env.is_empty() && o.violations.is_empty() && o.deprecations.is_empty(),
            "{o:?}"
        );
        assert_eq!(o.rows[0].result, "ok");
        let t = render(&o);
        assert!(t.contains("apps/charts/web  values.yaml"), "{t}");
        assert_eq!(summary(&o, "img", "v1.37.0")["passed"], true);
    }

    #[test]
    fn a_violation_names_policy_rule_and_resource() {
        let fail = "\nApplying 3 policy rule(s) to 1 resource(s)...\npolicy disallow-latest-tag -> resource default/Deployment/web failed:\n1 - autogen-validate-image-tag validation error: no latest. rule autogen-validate-image-tag failed at path /spec/template/spec/containers/0/image/\n\npass: 0, fail: 1, warn: 0, error: 0, skip: 0 \n";
        let out = sec("helm", "values.yaml", 0, RENDERED, "")
            + &sec("kyverno", "values.yaml", 1, fail, "")
            + &sec("pluto", "values.yaml", 0, NONE, "");
        let o = run(&out);
        assert!(o.env.is_empty(), "{o:?}");
        assert_eq!(o.violations, vec!["apps/charts/web values.yaml: policy disallow-latest-tag, rule autogen-validate-image-tag, resource default/Deployment/web"]);
        assert_eq!(o.rows[0].result, "FAIL");
        assert_eq!(summary(&o, "img", "v1.37.0")["passed"], false);
    }

    #[test]
    fn zero_rules_zero_resources_and_crashes_are_environment_errors() {
        let zero = "\nApplying 0 policy rule(s) to 1 resource(s)...\n\npass: 0, fail: 0, warn: 0, error: 0, skip: 0 \n";
        let o = run(&(sec("helm", "values.yaml", 0, RENDERED, "")
            + &sec("kyverno", "values.yaml", 0, zero, "")
            + &sec("pluto", "values.yaml", 0, NONE, "")));
        assert_eq!(o.env.len(), 1, "{o:?}");
        assert!(
            o.env[0].contains("kyverno loaded 0 policy rules from /repos/security-policy/"),
            "{}",
            o.env[0]
        );

        let o = run(&sec(
            "helm",
            "values.yaml",
            0,
            "---\n# Source: web/templates/off.yaml\n",
            "",
        ));
        assert!(
            o.env[0].contains("rendered no resources for apps/charts/web values.yaml"),
            "{:?}",
            o.env
        );

        let o = run(&sec(
            "helm",
            "values.yaml",
            1,
            "",
            "Error: template: web/templates/x.yaml:3: function \"nope\" not defined",
        ));
        assert!(
            o.env[0].contains("helm template failed for apps/charts/web values.yaml (exit 1: Error: template"),
            "{:?}",
            o.env
        );

        let o = run(&(sec("helm", "values.yaml", 0, RENDERED, "")
            + &sec("kyverno", "values.yaml", 1, "", "Error: require policy")));
        assert!(
            o.env
                .iter()
                .any(|e| e.contains("kyverno apply failed") && e.contains("Error: require policy")),
            "{:?}",
            o.env
        );
        assert!(o.env.iter().any(|e| e.contains("no pluto result")), "{:?}", o.env);

        let o = run(
            &(sec("helm", "values.yaml", 0, &format!("{RENDERED}---\nkind: Service\n"), "")
                + &sec("kyverno", "values.yaml", 0, PASS, "")
                + &sec("pluto", "values.yaml", 0, NONE, "")),
        );
        assert!(o.env[0].contains("kyverno read 1 of the 2 resources"), "{:?}", o.env);

        let o = run("");
        assert!(o.env[0].contains("no helm result"), "{:?}", o.env);
    }

    fn with_pluto(code: i32, stdout: &str, stderr: &str) -> Outcome {
        run(&(sec("helm", "values.yaml", 0, RENDERED, "")
            + &sec("kyverno", "values.yaml", 0, PASS, "")
            + &sec("pluto", "values.yaml", code, stdout, stderr)))
    }

    // pluto 5.24's JSON for one chart, target v1.37.0 (xtask/tests/standins/TOOLS.md 2.5).
    const REMOVED: &str = r#"{"name":"old","api":{"version":"batch/v1beta1","kind":"CronJob","deprecated-in":"v1.21.0","removed-in":"v1.25.0","replacement-api":"batch/v1","replacement-available-in":"v1.21.0","component":"k8s"},"deprecated":true,"removed":true,"replacementAvailable":true}"#;
    const NO_REPLACEMENT: &str = r#"{"name":"psp","api":{"version":"policy/v1beta1","kind":"PodSecurityPolicy","deprecated-in":"v1.21.0","removed-in":"v1.25.0","replacement-api":"","replacement-available-in":"","component":"k8s"},"deprecated":true,"removed":true,"replacementAvailable":false}"#;

    fn items(items: &[&str]) -> String {
        format!("{{\"items\":[{}],\"target-versions\":{{\"cert-manager\":\"v1.5.3\",\"istio\":\"v1.11.0\",\"k8s\":\"v1.37.0\"}}}}", items.join(","))
    }

    #[test]
    fn deprecated_apis_fail_the_gate() {
        let o = with_pluto(3, &items(&[REMOVED]), "");
        assert!(o.env.is_empty(), "{o:?}");
        assert_eq!(o.deprecations, vec!["apps/charts/web values.yaml: batch/v1beta1 CronJob \"old\" is removed in v1.25.0, use batch/v1 (available since v1.21.0)"]);
        assert_eq!(o.rows[0].deprecated, vec!["batch/v1beta1 CronJob removed in v1.25.0"]);
        assert_eq!(o.rows[0].result, "FAIL");
        assert_eq!(summary(&o, "img", "v1.37.0")["passed"], false);
    }

    #[test]
    fn removed_and_unavailable_replacements_are_told_apart() {
        // Exit 4 (a replacement not in the target) is a finding, not a crash.
        let o = with_pluto(4, &items(&[REMOVED, NO_REPLACEMENT]), "");
        assert!(o.env.is_empty(), "{o:?}");
        assert_eq!(o.deprecations.len(), 2);
        assert!(
            o.deprecations[1]
                .ends_with("policy/v1beta1 PodSecurityPolicy \"psp\" is removed in v1.25.0, no replacement"),
            "{:?}",
            o.deprecations
        );
        let t = render(&o);
        assert!(t.contains("batch/v1beta1 CronJob removed in v1.25.0; policy/v1beta1 PodSecurityPolicy removed in v1.25.0, no replacement  FAIL"), "{t}");
    }

    #[test]
    fn pluto_codes_that_are_not_results_are_environment_errors() {
        let o = with_pluto(1, "", "Error: unknown flag: -x");
        assert_eq!(
            o.env,
            vec!["apps/charts/web values.yaml: pluto detect failed (exit 1: Error: unknown flag: -x)"]
        );
        // An undocumented code never passes, even with an empty result.
        let o = with_pluto(5, NONE, "");
        assert!(
            o.env[0].contains("pluto detect exited 5, which is none of pluto's codes"),
            "{:?}",
            o.env
        );
        assert_eq!(
            (o.rows[0].result, summary(&o, "img", "v1.37.0")["passed"].clone()),
            ("ERROR", false.into())
        );
        // A finding code with nothing listed, or items the code does not account for.
        let o = with_pluto(3, NONE, "");
        assert!(
            o.env[0].contains("pluto exited 3 (removed) but its JSON lists 0 item(s) that mean exit 0"),
            "{:?}",
            o.env
        );
        let o = with_pluto(3, &items(&[REMOVED, NO_REPLACEMENT]), "");
        assert!(o.env[0].contains("that mean exit 4"), "{:?}", o.env);
        // Output from before pluto 5.24's fields: unreadable, not a pass.
        let o = with_pluto(3, &items(&[&REMOVED.replace(",\"replacementAvailable\":true", "")]), "");
        assert!(o.env[0].contains("no true/false `replacementAvailable`"), "{:?}", o.env);
        assert!(o.deprecations.is_empty());
    }

    #[test]
    fn policy_tests() {
        let ok = format!("{MARK}begin\tkyverno-test\t/repos/a/\t-\nTest Summary: 4 tests passed and 0 tests failed\n\n{MARK}stderr\n\n{MARK}end\t0\n");
        let bad = format!("{MARK}begin\tkyverno-test\t/repos/b/\t-\n│ 1 │ p │ r │ v1/Pod/default/x │ Fail │ Want fail, got pass │\nTest Summary: 3 tests passed and 1 tests failed\n\n{MARK}stderr\nError: 1 tests failed\n{MARK}end\t1\n");
        let broken = format!("{MARK}begin\tkyverno-test\t/repos/c/\t-\n\n{MARK}stderr\nError: test file x uses a deprecated schema\n{MARK}end\t1\n");
        let o = evaluate(
            &[],
            &parse::sections(&(ok + &bad + &broken)),
            "/repos/security-policy/",
            "v1.37.0",
        );
        assert_eq!(
            o.tests.iter().map(|t| t.result).collect::<Vec<_>>(),
            vec!["ok", "FAIL", "ERROR"]
        );
        assert_eq!(
            o.test_failures,
            vec!["kyverno test /repos/b/: 1 of 4 tests failed (p r v1/Pod/default/x: Want fail, got pass)"]
        );
        assert!(
            o.env[0]
                .contains("kyverno test /repos/c/ did not run (exit 1: Error: test file x uses a deprecated schema)"),
            "{:?}",
            o.env
        );
        assert!(render(&o).contains("POLICY TESTS"));
    }
}
