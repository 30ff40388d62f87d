//! `pluto detect -o json` as pluto 5.24 prints it, and what its exit code means
//! (xtask/tests/standins/TOOLS.md 2.4 and 2.5). Pure: the in-container run is parsed elsewhere.

use serde_json::{Map, Value};

/// One item of pluto's JSON: an object whose apiVersion is deprecated or removed in the target.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub name: String,
    pub namespace: String,
    /// The apiVersion the chart uses, e.g. `flowcontrol.apiserver.k8s.io/v1beta2`.
    pub version: String,
    pub kind: String,
    pub deprecated_in: String,
    pub removed_in: String,
    /// `replacement-api`; empty when the API has no replacement (PodSecurityPolicy).
    pub replacement: String,
    /// `replacement-available-in`: the first release that serves the replacement.
    pub replacement_in: String,
    /// `k8s`, `istio` or `cert-manager`: whose release numbers the versions above are.
    pub component: String,
    pub deprecated: bool,
    pub removed: bool,
    /// pluto 5.24's `replacementAvailable`: the replacement is served by the target.
    pub replacement_available: bool,
}

/// What pluto says about the target (`target-versions.k8s`) and the items it found.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub k8s: String,
    pub findings: Vec<Finding>,
}

/// pluto's exit codes without any `--ignore-*` flag; 1 (an error) and anything else are not
/// a result.
pub fn meaning(code: i32) -> Option<&'static str> {
    match code {
        0 => Some("nothing deprecated"),
        2 => Some("deprecated"),
        3 => Some("removed"),
        4 => Some("replacement not available in the target"),
        _ => None,
    }
}

impl Finding {
    /// The exit code pluto gives for this item alone: 4 (replacement unavailable) over 3
    /// (removed) over 2 (deprecated).
    pub fn code(&self) -> i32 {
        if !self.replacement_available {
            4
        } else if self.removed {
            3
        } else {
            2
        }
    }

    /// A release of this item's component: `v1.29.0`, or `istio v1.6.0` for other components.
    fn at(&self, version: &str) -> String {
        match self.component.as_str() {
            "" | "k8s" => version.to_string(),
            c => format!("{c} {version}"),
        }
    }

    /// Short, for the table: `removed in v1.29.0`, `deprecated in v1.22.0, replacement
    /// autoscaling/v2 available in v1.23.0`, `removed in v1.25.0, no replacement`.
    pub fn status(&self) -> String {
        let state = if self.removed {
            format!("removed in {}", self.at(&self.removed_in))
        } else {
            format!("deprecated in {}", self.at(&self.deprecated_in))
        };
        if self.replacement.is_empty() {
            format!("{state}, no replacement")
        } else if self.replacement_available {
            state
        } else {
            format!("{state}, {}", self.unavailable())
        }
    }

    /// For the `error:` line: `flowcontrol.apiserver.k8s.io/v1beta2 FlowSchema "fs" is
    /// removed in v1.29.0, use flowcontrol.apiserver.k8s.io/v1 (available since v1.29.0)`.
    pub fn describe(&self) -> String {
        let mut s = format!("{} {} \"{}\" is ", self.version, self.kind, self.object());
        if self.removed {
            s += &format!("removed in {}", self.at(&self.removed_in));
        } else {
            s += &format!("deprecated in {}", self.at(&self.deprecated_in));
            if !self.removed_in.is_empty() {
                s += &format!(" and removed in {}", self.at(&self.removed_in));
            }
        }
        if self.replacement.is_empty() {
            s += ", no replacement";
        } else if self.replacement_available {
            s += &format!(", use {}", self.replacement);
            if !self.replacement_in.is_empty() {
                s += &format!(" (available since {})", self.at(&self.replacement_in));
            }
        } else {
            s += &format!(", {}", self.unavailable());
        }
        s
    }

    fn unavailable(&self) -> String {
        if self.replacement_in.is_empty() {
            format!(
                "replacement {} not known to be available in any release",
                self.replacement
            )
        } else {
            format!(
                "replacement {} available in {}",
                self.replacement,
                self.at(&self.replacement_in)
            )
        }
    }

    fn object(&self) -> String {
        if self.namespace.is_empty() {
            self.name.clone()
        } else {
            format!("{}/{}", self.namespace, self.name)
        }
    }
}

/// The exit code pluto gives for all these items: the highest of theirs, 0 for none.
pub fn expected_code(findings: &[Finding]) -> i32 {
    findings.iter().map(Finding::code).max().unwrap_or(0)
}

/// Parses pluto 5.24's one-line JSON. `items` is absent when nothing was found; `name` and
/// `namespace` may be absent; `deprecated`, `removed` and `replacementAvailable` are always
/// there, so a missing one means output this gate cannot read (an older pluto).
pub fn parse(out: &str) -> Result<Report, String> {
    let v: Value = serde_json::from_str(out.trim()).map_err(|e| format!("not JSON ({e})"))?;
    let k8s = v
        .get("target-versions")
        .and_then(|t| t.get("k8s"))
        .and_then(Value::as_str)
        .ok_or("no `target-versions.k8s`")?
        .to_string();
    let items = match v.get("items") {
        None => {
            return Ok(Report {
                k8s,
                findings: Vec::new(),
            })
        }
        Some(i) => i.as_array().ok_or("`items` is not a list")?,
    };
    let findings = items
        .iter()
        .enumerate()
        .map(|(n, i)| finding(n + 1, i))
        .collect::<Result<_, _>>()?;
    Ok(Report { k8s, findings })
}

fn finding(n: usize, item: &Value) -> Result<Finding, String> {
    let text = |o: &Map<String, Value>, k: &str| o.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let i = item.as_object().ok_or(format!("item {n} is not an object"))?;
    let api = i
        .get("api")
        .and_then(Value::as_object)
        .ok_or(format!("item {n} has no `api`"))?;
    let flag = |k: &str| {
        i.get(k).and_then(Value::as_bool).ok_or(format!(
            "item {n} has no true/false `{k}` (pluto 5.24 always prints it)"
        ))
    };
    let f = Finding {
        name: text(i, "name"),
        namespace: text(i, "namespace"),
        version: text(api, "version"),
        kind: text(api, "kind"),
        deprecated_in: text(api, "deprecated-in"),
        removed_in: text(api, "removed-in"),
        replacement: text(api, "replacement-api"),
        replacement_in: text(api, "replacement-available-in"),
        component: text(api, "component"),
        deprecated: flag("deprecated")?,
        removed: flag("removed")?,
        replacement_available: flag("replacementAvailable")?,
    };
    if f.version.is_empty() {
        return Err(format!("item {n} has no `api.version`"));
    }
    // pluto only lists what is deprecated or removed in the target.
    if !f.deprecated && !f.removed {
        return Err(format!(
            "item {n} ({} {}) is neither deprecated nor removed",
            f.version, f.kind
        ));
    }
    Ok(f)
}

/// Reads one `pluto detect - -o json --target-versions k8s=<k8s>` run: its findings (none:
/// the chart passes), or why the run cannot be trusted. Exit 2, 3 and 4 are results, not
/// failures; the code must agree with the items, and pluto must have checked `k8s`.
pub fn judge(code: i32, stdout: &str, stderr: &str, k8s: &str) -> Result<Vec<Finding>, String> {
    let first = crate::runner::first_line(stderr, stdout);
    let Some(said) = meaning(code) else {
        return Err(if code == 1 {
            format!("pluto detect failed (exit 1: {})", clip(first))
        } else {
            format!(
                "pluto detect exited {code}, which is none of pluto's codes (0 nothing, 2 deprecated, 3 removed, 4 replacement unavailable, 1 error): {}",
                clip(first)
            )
        });
    };
    let report = parse(stdout).map_err(|e| {
        format!(
            "pluto detect printed no JSON this gate can read: {e}; output starts `{}`",
            clip(first)
        )
    })?;
    if report.k8s != k8s {
        return Err(format!(
            "pluto checked Kubernetes {} instead of the configured {k8s}",
            report.k8s
        ));
    }
    let want = expected_code(&report.findings);
    if want != code {
        let means = meaning(want).unwrap_or("?");
        return Err(format!(
            "pluto exited {code} ({said}) but its JSON lists {} item(s) that mean exit {want} ({means}); check the image's pluto (5.24 expected) and PLUTO_* settings in it",
            report.findings.len()
        ));
    }
    Ok(report.findings)
}

fn clip(s: &str) -> String {
    let mut c: String = s.chars().take(120).collect();
    if c.len() < s.len() {
        c.push_str("...");
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    // Each item below is in the shape pluto 5.24's `json.Marshal` of its Output struct prints
    // (xtask/tests/standins/TOOLS.md 2.5): one line, `name`/`namespace` only when set, no `filePath`
    // for stdin, the three booleans always present. Versions as in Kubernetes' deprecation
    // guide (flowcontrol v1beta2 removed in 1.29; v1 since 1.29).
    const TARGETS: &str = r#""target-versions":{"cert-manager":"v1.5.3","istio":"v1.11.0","k8s":"v1.37.0"}"#;
    const FLOW_V1BETA2: &str = r#"{"name":"fs","api":{"version":"flowcontrol.apiserver.k8s.io/v1beta2","kind":"FlowSchema","deprecated-in":"v1.26.0","removed-in":"v1.29.0","replacement-api":"flowcontrol.apiserver.k8s.io/v1","replacement-available-in":"v1.29.0","component":"k8s"},"deprecated":true,"removed":true,"replacementAvailable":true}"#;
    const PSP: &str = r#"{"name":"restricted","api":{"version":"policy/v1beta1","kind":"PodSecurityPolicy","deprecated-in":"v1.21.0","removed-in":"v1.25.0","replacement-api":"","replacement-available-in":"","component":"k8s"},"deprecated":true,"removed":true,"replacementAvailable":false}"#;
    // Target v1.22.0: deprecated, and autoscaling/v2 only arrives in v1.23.0 (pluto exits 4).
    const HPA_V2BETA1: &str = r#"{"name":"web","namespace":"shop","api":{"version":"autoscaling/v2beta1","kind":"HorizontalPodAutoscaler","deprecated-in":"v1.22.0","removed-in":"v1.25.0","replacement-api":"autoscaling/v2","replacement-available-in":"v1.23.0","component":"k8s"},"deprecated":true,"removed":false,"replacementAvailable":false}"#;
    const FLOW_V1BETA3: &str = r#"{"name":"fs3","api":{"version":"flowcontrol.apiserver.k8s.io/v1beta3","kind":"FlowSchema","deprecated-in":"v1.29.0","removed-in":"v1.32.0","replacement-api":"flowcontrol.apiserver.k8s.io/v1","replacement-available-in":"v1.29.0","component":"k8s"},"deprecated":true,"removed":false,"replacementAvailable":true}"#;

    fn json(items: &[&str], k8s: &str) -> String {
        let targets = TARGETS.replace("v1.37.0", k8s);
        if items.is_empty() {
            format!("{{{targets}}}")
        } else {
            format!("{{\"items\":[{}],{targets}}}", items.join(","))
        }
    }

    #[test]
    fn a_removed_api_names_release_and_replacement() {
        let r = parse(&json(&[FLOW_V1BETA2], "v1.37.0")).unwrap();
        assert_eq!(r.k8s, "v1.37.0");
        let f = &r.findings[0];
        assert_eq!((f.code(), f.status().as_str()), (3, "removed in v1.29.0"));
        assert_eq!(
            f.describe(),
            "flowcontrol.apiserver.k8s.io/v1beta2 FlowSchema \"fs\" is removed in v1.29.0, use flowcontrol.apiserver.k8s.io/v1 (available since v1.29.0)"
        );
    }

    #[test]
    fn no_replacement_and_unavailable_replacement_read_differently() {
        let r = parse(&json(&[PSP], "v1.37.0")).unwrap();
        assert_eq!(
            (r.findings[0].code(), r.findings[0].status().as_str()),
            (4, "removed in v1.25.0, no replacement")
        );
        assert_eq!(
            r.findings[0].describe(),
            "policy/v1beta1 PodSecurityPolicy \"restricted\" is removed in v1.25.0, no replacement"
        );

        let r = parse(&json(&[HPA_V2BETA1], "v1.22.0")).unwrap();
        let f = &r.findings[0];
        assert_eq!(f.code(), 4);
        assert_eq!(
            f.status(),
            "deprecated in v1.22.0, replacement autoscaling/v2 available in v1.23.0"
        );
        assert_eq!(f.describe(), "autoscaling/v2beta1 HorizontalPodAutoscaler \"shop/web\" is deprecated in v1.22.0 and removed in v1.25.0, replacement autoscaling/v2 available in v1.23.0");

        let r = parse(&json(&[FLOW_V1BETA3], "v1.31.0")).unwrap();
        assert_eq!(
            (r.findings[0].code(), r.findings[0].status().as_str()),
            (2, "deprecated in v1.29.0")
        );
        assert!(r.findings[0]
            .describe()
            .ends_with("is deprecated in v1.29.0 and removed in v1.32.0, use flowcontrol.apiserver.k8s.io/v1 (available since v1.29.0)"));
    }

    #[test]
    fn other_components_name_their_own_releases() {
        let cm = r#"{"name":"ca","api":{"version":"cert-manager.io/v1alpha2","kind":"Issuer","deprecated-in":"v1.4.0","removed-in":"v1.6.0","replacement-api":"cert-manager.io/v1","replacement-available-in":"v0.16.0","component":"cert-manager"},"deprecated":true,"removed":false,"replacementAvailable":true}"#;
        let f = &parse(&json(&[cm], "v1.37.0")).unwrap().findings[0];
        assert_eq!(f.status(), "deprecated in cert-manager v1.4.0");
    }

    #[test]
    fn the_exit_code_is_the_highest_item_code() {
        let f = |items: &[&str], k8s: &str| expected_code(&parse(&json(items, k8s)).unwrap().findings);
        assert_eq!(f(&[], "v1.37.0"), 0);
        assert_eq!(f(&[FLOW_V1BETA3], "v1.31.0"), 2);
        assert_eq!(f(&[FLOW_V1BETA3, FLOW_V1BETA2], "v1.31.0"), 3);
        assert_eq!(f(&[FLOW_V1BETA2, PSP, FLOW_V1BETA3], "v1.31.0"), 4, "4 over 3 over 2");
    }

    #[test]
    fn judge_takes_finding_codes_as_results() {
        let out = json(&[FLOW_V1BETA2], "v1.37.0");
        let got = judge(3, &out, "", "v1.37.0").unwrap();
        assert_eq!(got[0].version, "flowcontrol.apiserver.k8s.io/v1beta2");
        assert_eq!(
            judge(4, &json(&[PSP, FLOW_V1BETA2], "v1.37.0"), "", "v1.37.0")
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            judge(2, &json(&[FLOW_V1BETA3], "v1.31.0"), "", "v1.31.0")
                .unwrap()
                .len(),
            1
        );
        assert_eq!(judge(0, &json(&[], "v1.37.0"), "", "v1.37.0").unwrap(), vec![]);
    }

    #[test]
    fn judge_refuses_what_it_cannot_trust() {
        let removed = json(&[FLOW_V1BETA2], "v1.37.0");
        let e = judge(1, "", "Error: invalid file specified: x", "v1.37.0").unwrap_err();
        assert_eq!(e, "pluto detect failed (exit 1: Error: invalid file specified: x)");
        for code in [5, 127, 137, -1] {
            let e = judge(code, &removed, "", "v1.37.0").unwrap_err();
            assert!(
                e.contains(&format!("pluto detect exited {code}, which is none of pluto's codes")),
                "{e}"
            );
        }
        // The code and the items disagree, both ways.
        let e = judge(0, &removed, "", "v1.37.0").unwrap_err();
        assert!(
            e.contains("pluto exited 0 (nothing deprecated) but its JSON lists 1 item(s) that mean exit 3 (removed)"),
            "{e}"
        );
        let e = judge(3, &json(&[], "v1.37.0"), "", "v1.37.0").unwrap_err();
        assert!(e.contains("lists 0 item(s) that mean exit 0"), "{e}");
        let e = judge(3, &json(&[PSP], "v1.37.0"), "", "v1.37.0").unwrap_err();
        assert!(
            e.contains("mean exit 4 (replacement not available in the target)"),
            "{e}"
        );
        // Another target than asked for.
        let e = judge(3, &removed, "", "v1.36.0").unwrap_err();
        assert_eq!(e, "pluto checked Kubernetes v1.37.0 instead of the configured v1.36.0");
        // Not pluto 5.24's JSON: the normal table, an item without `replacementAvailable`.
        let e = judge(
            0,
            "There were no resources found with known deprecated apiVersions.",
            "",
            "v1.37.0",
        )
        .unwrap_err();
        assert!(
            e.starts_with("pluto detect printed no JSON this gate can read: not JSON"),
            "{e}"
        );
        let old = removed.replace(",\"replacementAvailable\":true", "");
        let e = judge(3, &old, "", "v1.37.0").unwrap_err();
        assert!(e.contains("item 1 has no true/false `replacementAvailable`"), "{e}");
    }

    #[test]
    fn parse_rejects_malformed_items() {
        assert!(parse(r#"{"items":[]}"#).unwrap_err().contains("target-versions.k8s"));
        assert!(parse(&format!("{{\"items\":{{}},{TARGETS}}}"))
            .unwrap_err()
            .contains("`items` is not a list"));
        assert!(parse(&json(&[r#"{"name":"x"}"#], "v1.37.0"))
            .unwrap_err()
            .contains("item 1 has no `api`"));
        let neither = FLOW_V1BETA3.replace("\"deprecated\":true", "\"deprecated\":false");
        assert!(parse(&json(&[&neither], "v1.28.0"))
            .unwrap_err()
            .contains("is neither deprecated nor removed"));
    }
}
