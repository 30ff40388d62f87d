//! The gate decision: the findings Trivy left live and those it waived + options + waivers +
//! today -> verdict. Pure.

use super::report::{Finding, Kind, SEVERITIES};
use super::waivers::{self, Date, Waiver};
use super::ScanOpts;
use serde_json::{json, Value};

#[derive(Debug, Default)]
pub struct Verdict {
    /// Every finding in the report, waived or not.
    pub all: Vec<Finding>,
    /// At gate severity, not waived: these fail the scan.
    pub failing: Vec<Finding>,
    /// Taken out by Trivy because of a live waiver (any severity), with that waiver.
    pub waived: Vec<(Finding, Waiver)>,
    /// At gate severity but without a fix, skipped because of `--ignore-unfixed`.
    pub unfixed: Vec<Finding>,
    /// Waivers past their date: each fails the scan.
    pub expired: Vec<Waiver>,
    /// Waivers that end within `waivers::WARN_DAYS`.
    pub expiring: Vec<Waiver>,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.failing.is_empty() && self.expired.is_empty()
    }

    pub fn count(&self, severity: &str, kind: Kind) -> usize {
        self.all
            .iter()
            .filter(|f| f.severity == severity && f.kind == Some(kind))
            .count()
    }
}

/// The verdict on the findings Trivy left in the report (`live`) and those it took out because
/// of an entry of ours (`waived`, paired by `trivy::waived`).
pub fn decide(
    live: Vec<Finding>,
    waived: Vec<(Finding, Waiver)>,
    opts: &ScanOpts,
    waivers: &[Waiver],
    today: Date,
) -> Verdict {
    let mut v = Verdict::default();
    for w in waivers {
        if w.expired(today) {
            v.expired.push(w.clone());
        } else if w.expiring_soon(today) {
            v.expiring.push(w.clone());
        }
    }
    for f in &live {
        if !opts.severity.contains(&f.severity) {
            continue;
        }
        if opts.ignore_unfixed && f.is_vuln() && !f.has_fix() {
            v.unfixed.push(f.clone());
            continue;
        }
        v.failing.push(f.clone());
    }
    v.all = live;
    v.all.extend(waived.iter().map(|(f, _)| f.clone()));
    v.waived = waived;
    v
}

/// The terminal summary: severity x count, then what fails, what is waived, and warnings.
pub fn table(v: &Verdict, opts: &ScanOpts) -> String {
    let mut s = format!(
        "{:<10} {:>15} {:>8} {:>7}  gate\n",
        "severity", "vulnerabilities", "secrets", "waived"
    );
    for sev in SEVERITIES {
        let waived = v.waived.iter().filter(|(f, _)| f.severity == sev).count();
        let gate = if opts.severity.iter().any(|s| s == sev) {
            "fails"
        } else {
            "-"
        };
        s.push_str(&format!(
            "{sev:<10} {:>15} {:>8} {waived:>7}  {gate}\n",
            v.count(sev, Kind::Vulnerability),
            v.count(sev, Kind::Secret)
        ));
    }
    if !v.failing.is_empty() {
        s.push_str(&format!("\nfailing the gate ({}):\n", v.failing.len()));
        for f in &v.failing {
            s.push_str(&format!("  {}\n", f.describe()));
        }
    }
    if !v.waived.is_empty() {
        s.push_str(&format!("\nwaived ({}):\n", v.waived.len()));
        for (f, w) in &v.waived {
            let until = format!("until {}", w.expired_at);
            s.push_str(&format!(
                "  {} -- waived by {}, {until}: {}\n",
                f.describe(),
                w.name(),
                w.statement
            ));
        }
    }
    if !v.unfixed.is_empty() {
        s.push_str(&format!(
            "\nnot gated, no fix yet (--ignore-unfixed) ({}):\n",
            v.unfixed.len()
        ));
        for f in &v.unfixed {
            s.push_str(&format!("  {}\n", f.describe()));
        }
    }
    for w in &v.expired {
        s.push_str(&format!("\nexpired waiver: {} expired on {}\n", w.name(), w.expired_at));
    }
    s
}

/// Warnings for stderr (waivers about to expire).
pub fn warnings(v: &Verdict, today: Date) -> Vec<String> {
    let mut out = Vec::new();
    for w in &v.expiring {
        let e = w.expired_at;
        out.push(format!(
            "warning: waiver {} expires on {e} (in {} days); fix the finding or renew the waiver with a new statement",
            w.name(),
            e.days() - today.days()
        ));
    }
    out
}

/// The one-line reason the gate failed (the `error:` line).
pub fn failure(v: &Verdict, opts: &ScanOpts) -> String {
    let mut parts = Vec::new();
    if !v.failing.is_empty() {
        let shown: Vec<String> = v
            .failing
            .iter()
            .take(5)
            .map(|f| match f.kind {
                Some(Kind::Secret) => format!("secret {} in {}", f.id, f.target),
                // The fixed version says what to bump (the tool, or the base).
                _ if f.fixed.is_empty() => format!("{} in {} {} (no fix yet)", f.id, f.pkg, f.installed),
                _ => format!("{} in {} {} (fixed in {})", f.id, f.pkg, f.installed, f.fixed),
            })
            .collect();
        let more = if v.failing.len() > 5 {
            format!(" and {} more", v.failing.len() - 5)
        } else {
            String::new()
        };
        parts.push(format!(
            "{} finding(s) at gate severity {}: {}{more}",
            v.failing.len(),
            opts.severity.join(","),
            shown.join(", ")
        ));
    }
    if !v.expired.is_empty() {
        let names: Vec<String> = v
            .expired
            .iter()
            .map(|w| format!("{} expired on {}", w.name(), w.expired_at))
            .collect();
        parts.push(format!("expired waiver(s): {}", names.join(", ")));
    }
    format!(
        "{}; fix the image (upgrade the package, remove the secret), or waive with a statement and expiry in {}",
        parts.join("; "),
        waivers::FILE
    )
}

/// The summary for the release record.
pub fn summary(v: &Verdict, opts: &ScanOpts) -> Value {
    let mut counts = serde_json::Map::new();
    for sev in SEVERITIES {
        counts.insert(
            sev.to_string(),
            json!({ "vulnerabilities": v.count(sev, Kind::Vulnerability), "secrets": v.count(sev, Kind::Secret) }),
        );
    }
    json!({
        "gate": { "severity": opts.severity, "ignore_unfixed": opts.ignore_unfixed, "passed": v.passed() },
        "counts": counts,
        "findings": v.failing.iter().map(Finding::to_json).collect::<Vec<_>>(),
        "waived": v.waived.iter().map(|(f, w)| {
            let mut j = f.to_json();
            j["waiver"] = json!({ "id": w.id, "statement": w.statement, "expired_at": w.expired_at.to_string() });
            j
        }).collect::<Vec<_>>(),
        "unfixed": v.unfixed.iter().map(Finding::to_json).collect::<Vec<_>>(),
        "expired_waivers": v.expired.iter().map(|w| w.id.clone()).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::waivers::Section;

    fn vuln(id: &str, sev: &str, fixed: &str) -> Finding {
        Finding {
            kind: Some(Kind::Vulnerability),
            id: id.into(),
            severity: sev.into(),
            target: "pp:v1 (alpine 3.22.0)".into(),
            pkg: "busybox".into(),
            purl: "pkg:apk/alpine/busybox@1.37.0-r18?arch=x86_64".into(),
            installed: "1.37.0-r18".into(),
            fixed: fixed.into(),
            status: if fixed.is_empty() { "affected" } else { "fixed" }.into(),
            ..Finding::default()
        }
    }

    fn secret(rule: &str, file: &str) -> Finding {
        Finding {
            kind: Some(Kind::Secret),
            id: rule.into(),
            severity: "CRITICAL".into(),
            target: file.into(),
            line: 1,
            ..Finding::default()
        }
    }

    fn waiver(section: Section, id: &str, until: Option<&str>) -> Waiver {
        Waiver {
            section,
            id: id.into(),
            statement: "accepted".into(),
            expired_at: Date::parse(until.unwrap_or("2999-12-31")).unwrap(),
            line: 2,
        }
    }

    fn opts(sev: &[&str], ignore_unfixed: bool) -> ScanOpts {
        ScanOpts {
            severity: sev.iter().map(|s| s.to_string()).collect(),
            ignore_unfixed,
        }
    }

    const TODAY: Date = Date { y: 2026, m: 11, d: 27 };

    #[test]
    fn gate_severity_decides() {
        let f = vec![vuln("CVE-1", "CRITICAL", "2"), vuln("CVE-2", "HIGH", "2")];
        let v = decide(f.clone(), vec![], &opts(&["CRITICAL"], false), &[], TODAY);
        assert!(!v.passed());
        assert_eq!(v.failing.len(), 1);
        assert_eq!(v.failing[0].id, "CVE-1");
        let v = decide(vec![f[1].clone()], vec![], &opts(&["CRITICAL"], false), &[], TODAY);
        assert!(v.passed(), "HIGH does not fail a CRITICAL gate");
        assert_eq!(v.all.len(), 1, "but it is still reported");
        assert!(!decide(
            vec![f[1].clone()],
            vec![],
            &opts(&["CRITICAL", "HIGH"], false),
            &[],
            TODAY
        )
        .passed());
        assert!(decide(vec![], vec![], &opts(&["CRITICAL"], false), &[], TODAY).passed());
    }

    #[test]
    fn ignore_unfixed_skips_only_vulnerabilities_without_a_fix() {
        let f = vec![vuln("CVE-1", "CRITICAL", ""), secret("github-pat", "/a.env")];
        let v = decide(f.clone(), vec![], &opts(&["CRITICAL"], true), &[], TODAY);
        assert_eq!(v.unfixed.len(), 1);
        assert_eq!(v.failing.len(), 1, "a secret is never 'unfixed'");
        let v = decide(vec![f[0].clone()], vec![], &opts(&["CRITICAL"], false), &[], TODAY);
        assert!(!v.passed());
    }

    #[test]
    fn waived_findings_pass_are_counted_and_listed() {
        let w = vec![
            waiver(Section::Vulnerabilities, "CVE-1", Some("2027-01-31")),
            waiver(Section::Secrets, "github-pat", Some("2027-01-31")),
        ];
        let waived = vec![
            (vuln("CVE-1", "CRITICAL", "2"), w[0].clone()),
            (secret("github-pat", "/workspace/deploy.env"), w[1].clone()),
        ];
        let v = decide(
            vec![vuln("CVE-2", "HIGH", "2")],
            waived,
            &opts(&["CRITICAL"], false),
            &w,
            TODAY,
        );
        assert!(v.passed());
        assert_eq!(v.waived.len(), 2);
        let t = table(&v, &opts(&["CRITICAL"], false));
        assert!(
            t.contains("waived (2)") && t.contains("CVE-1") && t.contains("github-pat"),
            "{t}"
        );
        assert!(
            t.contains("-- waived by `CVE-1` (.trivyignore.yaml:2), until 2027-01-31: accepted"),
            "{t}"
        );
        let critical = t.lines().find(|l| l.starts_with("CRITICAL")).unwrap();
        assert_eq!(
            critical.split_whitespace().collect::<Vec<_>>(),
            ["CRITICAL", "1", "1", "2", "fails"],
            "{t}"
        );
        let s = summary(&v, &opts(&["CRITICAL"], false));
        assert_eq!(s["waived"][0]["waiver"]["expired_at"], "2027-01-31");
        assert_eq!(s["counts"]["CRITICAL"]["vulnerabilities"], 1);
        assert_eq!(s["counts"]["HIGH"]["vulnerabilities"], 1);
    }

    #[test]
    fn expired_waiver_fails_even_with_nothing_to_waive() {
        let w = vec![waiver(Section::Vulnerabilities, "CVE-9", Some("2026-11-27"))];
        let v = decide(vec![], vec![], &opts(&["CRITICAL"], false), &w, TODAY);
        assert!(!v.passed());
        let msg = failure(&v, &opts(&["CRITICAL"], false));
        assert!(
            msg.contains("`CVE-9` (.trivyignore.yaml:2) expired on 2026-11-27"),
            "{msg}"
        );
        // What it covered is live again (Trivy dropped the entry) and fails too.
        let v = decide(
            vec![vuln("CVE-9", "CRITICAL", "2")],
            vec![],
            &opts(&["CRITICAL"], false),
            &w,
            TODAY,
        );
        assert_eq!((v.failing.len(), v.waived.len(), v.expired.len()), (1, 0, 1));
        assert!(warnings(&v, TODAY).is_empty());
    }

    #[test]
    fn soon_expiring_waivers_warn() {
        let w = vec![waiver(Section::Vulnerabilities, "CVE-1", Some("2026-12-05"))];
        let v = decide(vec![], vec![], &opts(&["CRITICAL"], false), &w, TODAY);
        assert!(v.passed());
        let warn = warnings(&v, TODAY);
        assert_eq!(warn.len(), 1);
        assert!(warn[0].contains("expires on 2026-12-05 (in 8 days)"), "{warn:?}");
    }

    #[test]
    fn failure_line_names_findings() {
        let v = decide(
            vec![
                vuln("CVE-1", "CRITICAL", "2"),
                secret("github-pat", "/workspace/deploy.env"),
            ],
            vec![],
            &opts(&["CRITICAL"], false),
            &[],
            TODAY,
        );
        let msg = failure(&v, &opts(&["CRITICAL"], false));
        assert!(msg.contains("2 finding(s) at gate severity CRITICAL"), "{msg}");
        assert!(msg.contains("CVE-1 in busybox 1.37.0-r18"), "{msg}");
        assert!(msg.contains("secret github-pat in /workspace/deploy.env"), "{msg}");
    }
}
