//! Pure parsers of what kyverno and helm print (formats in xtask/tests/standins/TOOLS.md; pluto's JSON
//! is read in `pluto.rs`), and of the section markers the in-container script wraps around
//! each tool run.

/// Starts every marker line the in-container script prints.
pub const MARK: &str = "::pp-integration::";

/// One tool run inside the container: `label` (helm, kyverno, pluto, kyverno-test), the
/// chart and values file it ran for, its stdout, stderr and exit code.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub label: String,
    pub chart: String,
    pub values: String,
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

/// Splits the container's stdout into sections. A section without its `end` marker (the
/// container died half-way) is dropped, so the caller sees fewer runs than planned.
pub fn sections(out: &str) -> Vec<Section> {
    let mut done = Vec::new();
    let mut cur: Option<(Section, bool)> = None; // (section, reading stderr)
    for line in out.split_inclusive('\n') {
        let bare = line.trim_end_matches('\n');
        if let Some(rest) = bare.strip_prefix(MARK) {
            let f: Vec<&str> = rest.trim_start().split('\t').collect();
            match f.first().copied() {
                Some("begin") => {
                    let get = |i: usize| f.get(i).unwrap_or(&"").to_string();
                    let s = Section {
                        label: get(1),
                        chart: get(2),
                        values: get(3),
                        stdout: String::new(),
                        stderr: String::new(),
                        code: -1,
                    };
                    cur = Some((s, false));
                }
                Some("stderr") => {
                    if let Some((_, err)) = cur.as_mut() {
                        *err = true;
                    }
                }
                Some("end") => {
                    if let Some((mut s, _)) = cur.take() {
                        s.code = f.get(1).and_then(|c| c.trim().parse().ok()).unwrap_or(-1);
                        s.stdout = strip_one_newline(s.stdout);
                        s.stderr = strip_one_newline(s.stderr);
                        done.push(s);
                    }
                }
                _ => {}
            }
            continue;
        }
        if let Some((s, err)) = cur.as_mut() {
            if *err {
                s.stderr.push_str(line)
            } else {
                s.stdout.push_str(line)
            }
        }
    }
    done
}

// The script prints a newline before each marker so that output without a final newline
// still leaves the marker on a line of its own; take that one newline off again.
fn strip_one_newline(mut s: String) -> String {
    if s.ends_with('\n') {
        s.pop();
    }
    s
}

/// How many resources `helm template` rendered: `---` separated documents with a top-level
/// `kind:` (what kyverno and pluto count as a resource).
pub fn count_manifests(rendered: &str) -> usize {
    let mut n = 0;
    let mut has_kind = false;
    for line in rendered.lines() {
        if line.trim_end() == "---" || line.starts_with("--- ") {
            n += has_kind as usize;
            has_kind = false;
        } else if line.starts_with("kind:") && !line["kind:".len()..].trim().is_empty() {
            has_kind = true;
        }
    }
    n + has_kind as usize
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    pub pass: u64,
    pub fail: u64,
    pub warn: u64,
    pub error: u64,
    pub skip: u64,
}

/// One failed rule: `policy <p> -> resource <r> failed:` then `<i> - <rule> <message>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub policy: String,
    pub resource: String,
    pub rule: String,
    pub message: String,
    /// `failed as audit warning:` (counted as warn, not fail).
    pub warning: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Apply {
    pub rules: u64,
    pub resources: u64,
    pub counts: Counts,
    pub violations: Vec<Violation>,
}

/// `kyverno apply` default output (v1.13–v1.19). `None` when the `Applying ...` line or the
/// summary line is missing: the tool did not get as far as applying anything.
pub fn apply(out: &str) -> Option<Apply> {
    let mut head = None;
    let mut counts = None;
    let mut violations: Vec<Violation> = Vec::new();
    let mut block: Option<(String, String, bool)> = None;
    for line in out.lines() {
        let line = line.trim_end();
        if let Some(rest) = line.strip_prefix("Applying ") {
            // "Applying N policy rule(s) to M resource(s)..." (maybe "with K exception(s)")
            let w: Vec<&str> = rest.split_whitespace().collect();
            if w.len() >= 5 && w[1] == "policy" && w[2] == "rule(s)" && w[3] == "to" {
                head = Some((w[0].parse().ok()?, w[4].parse().ok()?));
            }
            continue;
        }
        if let Some(c) = summary(line) {
            counts = Some(c);
            block = None;
            continue;
        }
        if let Some(rest) = line.strip_prefix("policy ") {
            if let Some((policy, rest)) = rest.split_once(" -> resource ") {
                let (resource, warning) = if let Some(r) = rest.strip_suffix(" failed as audit warning:") {
                    (r, true)
                } else if let Some(r) = rest.strip_suffix(" failed:") {
                    (r, false)
                } else {
                    continue;
                };
                block = Some((policy.to_string(), resource.to_string(), warning));
                continue;
            }
        }
        if let Some((policy, resource, warning)) = &block {
            if let Some((num, rest)) = line.split_once(" - ") {
                if !num.is_empty() && num.chars().all(|c| c.is_ascii_digit()) {
                    let (rule, message) = rest.split_once(' ').unwrap_or((rest, ""));
                    violations.push(Violation {
                        policy: policy.clone(),
                        resource: resource.clone(),
                        rule: rule.to_string(),
                        message: message.to_string(),
                        warning: *warning,
                    });
                    continue;
                }
            }
            if line.is_empty() {
                block = None;
            }
        }
    }
    let (rules, resources) = head?;
    Some(Apply {
        rules,
        resources,
        counts: counts?,
        violations,
    })
}

/// `pass: P, fail: F, warn: W, error: E, skip: S ` (the real line ends with a space).
fn summary(line: &str) -> Option<Counts> {
    let mut c = Counts::default();
    let mut seen = 0;
    for part in line.trim().split(", ") {
        let (k, v) = part.split_once(": ")?;
        let v: u64 = v.trim().parse().ok()?;
        match k {
            "pass" => c.pass = v,
            "fail" => c.fail = v,
            "warn" => c.warn = v,
            "error" => c.error = v,
            "skip" => c.skip = v,
            _ => return None,
        }
        seen += 1;
    }
    (seen == 5).then_some(c)
}

/// `kyverno test`: the summary counts and the failing table rows.
#[derive(Debug, Clone, PartialEq)]
pub struct TestRun {
    pub passed: u64,
    pub failed: u64,
    /// `policy rule resource: reason` of each row with RESULT `Fail`.
    pub failures: Vec<String>,
}

/// `None` when there is no `Test Summary:` line (nor `No test yamls available`).
pub fn kyverno_test(out: &str) -> Option<TestRun> {
    let mut run = None;
    let mut failures = Vec::new();
    for line in out.lines() {
        let line = line.trim();
        if line == "No test yamls available" {
            run = Some((0, 0));
        } else if let Some(rest) = line.strip_prefix("Test Summary: ") {
            // "N tests passed and M tests failed"
            let w: Vec<&str> = rest.split_whitespace().collect();
            if w.len() >= 6 && w[1] == "tests" && w[2] == "passed" && w[3] == "and" {
                run = Some((w[0].parse().ok()?, w[4].parse().ok()?));
            }
        } else if line.starts_with('│') {
            let cols: Vec<&str> = line.trim_matches('│').split('│').map(str::trim).collect();
            if cols.len() >= 6 && cols[4] == "Fail" {
                failures.push(format!("{} {} {}: {}", cols[1], cols[2], cols[3], cols[5]));
            }
        }
    }
    let (passed, failed) = run?;
    Some(TestRun {
        passed,
        failed,
        failures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // The v1.19 example of xtask/tests/standins/TOOLS.md 1.2, byte for byte (note the trailing space).
    const APPLY_FAIL: &str = "\nApplying 3 policy rule(s) to 2 resource(s)...\npolicy require-labels -> resource default/Pod/bad failed:\n1 - check-team validation error: label 'team' is required. rule check-team failed at path /metadata/labels/team/\n\npass: 1, fail: 1, warn: 0, error: 0, skip: 0 \n";

    #[test]
    fn apply_with_a_failure() {
        let a = apply(APPLY_FAIL).unwrap();
        assert_eq!((a.rules, a.resources), (3, 2));
        assert_eq!(
            a.counts,
            Counts {
                pass: 1,
                fail: 1,
                ..Counts::default()
            }
        );
        assert_eq!(a.violations.len(), 1);
        let v = &a.violations[0];
        assert_eq!(
            (v.policy.as_str(), v.resource.as_str(), v.rule.as_str()),
            ("require-labels", "default/Pod/bad", "check-team")
        );
        assert!(
            v.message.starts_with("validation error: label 'team' is required."),
            "{}",
            v.message
        );
        assert!(!v.warning);
    }

    #[test]
    fn apply_zero_rules_and_older_formats() {
        let a =
            apply("\nApplying 0 policy rule(s) to 2 resource(s)...\n\npass: 0, fail: 0, warn: 0, error: 0, skip: 0 \n")
                .unwrap();
        assert_eq!((a.rules, a.resources, a.counts.pass), (0, 2, 0));
        // v1.13-v1.17: an empty line after each block; several rules in one block; exceptions.
        let out = "\nApplying 6 policy rule(s) to 1 resource(s) with 1 exception(s)...\npolicy p -> resource /Namespace/ns failed:\n1 - a validation error: x\n2 - b validation failed\n\npolicy q -> resource default/Pod/x failed as audit warning:\n1 - c msg\n\npass: 3, fail: 2, warn: 1, error: 0, skip: 0 \n";
        let a = apply(out).unwrap();
        assert_eq!(a.rules, 6);
        let got: Vec<(&str, &str, &str, bool)> = a
            .violations
            .iter()
            .map(|v| (v.policy.as_str(), v.resource.as_str(), v.rule.as_str(), v.warning))
            .collect();
        assert_eq!(
            got,
            vec![
                ("p", "/Namespace/ns", "a", false),
                ("p", "/Namespace/ns", "b", false),
                ("q", "default/Pod/x", "c", true)
            ]
        );
        assert_eq!(a.violations[1].message, "validation failed");
    }

    #[test]
    fn apply_output_that_is_not_a_run() {
        assert_eq!(apply("Error: require policy\n"), None);
        assert_eq!(
            apply("\nApplying 3 policy rule(s) to 1 resource(s)...\n"),
            None,
            "no summary: crashed half-way"
        );
        assert_eq!(apply("pass: 1, fail: 0, warn: 0, error: 0, skip: 0 \n"), None);
    }

    #[test]
    fn kyverno_test_summary_and_failing_rows() {
        let out = "Loading test  ( /repos/p/.kyverno-test/kyverno-test.yaml ) ...\n  Checking results ...\n\n│────│────│\n│ ID │ POLICY │ RULE │ RESOURCE │ RESULT │ REASON │\n│ 1  │ pol    │ r1   │ v1/Pod/default/a │ Pass   │ Ok     │\n│ 2  │ pol    │ r1   │ v1/Pod/default/b │ Fail   │ Want fail, got pass │\n│────│────│\n\nTest Summary: 1 tests passed and 1 tests failed\n\n";
        let t = kyverno_test(out).unwrap();
        assert_eq!((t.passed, t.failed), (1, 1));
        assert_eq!(t.failures, vec!["pol r1 v1/Pod/default/b: Want fail, got pass"]);
        assert_eq!(kyverno_test("No test yamls available\n").unwrap().passed, 0);
        assert_eq!(kyverno_test("Error: found 1 errors after loading tests\n"), None);
    }

    #[test]
    fn sections_and_manifests() {
        let out = format!(
            "noise\n{MARK}begin\thelm\tpolicies/a/charts/x\tvalues.yaml\n---\n# Source: x/templates/s.yaml\napiVersion: v1\nkind: Service\n---\n# Source: x/templates/d.yaml\nkind: Deployment\n\n{MARK}stderr\nwarn\n\n{MARK}end\t0\n{MARK}begin\tkyverno\tpolicies/a/charts/x\tvalues.yaml\nno end marker\n"
        );
        let s = sections(&out);
        assert_eq!(s.len(), 1, "the unfinished section is dropped");
        assert_eq!(
            (
                s[0].label.as_str(),
                s[0].chart.as_str(),
                s[0].values.as_str(),
                s[0].code
            ),
            ("helm", "policies/a/charts/x", "values.yaml", 0)
        );
        assert_eq!(s[0].stderr, "warn\n");
        assert_eq!(count_manifests(&s[0].stdout), 2);
        assert_eq!(count_manifests("---\n# Source: x/templates/empty.yaml\n# nothing\n"), 0);
        assert_eq!(count_manifests(""), 0);
    }
}
