//! The gate decision: findings + options + waivers + today -> verdict. Pure.

use super::report::{Finding, Kind, SEVERITIES};
use super::waivers::{self, Date, Section, Waiver};
use super::ScanOpts;
use serde_json::{json, Value};

#[derive(Debug, Default)]
pub struct Verdict {
    /// Every finding in the report.
    pub all: Vec<Finding>,
    /// At gate severity, not waived: these fail the scan.
    pub failing: Vec<Finding>,
    /// Covered by a live waiver (any severity), with the waiver's id.
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

pub fn decide(findings: Vec<Finding>, opts: &ScanOpts, waivers: &[Waiver], today: Date) -> Verdict {
    let mut v = Verdict::default();
    for w in waivers {
        if w.expired(today) {
            v.expired.push(w.clone());
        } else if w.expiring_soon(today) {
            v.expiring.push(w.clone());
        }
    }
    for f in &findings {
        if let Some(w) = waivers.iter().find(|w| !w.expired(today) && covers(w, f)) {
            v.waived.push((f.clone(), w.clone()));
            continue;
        }
        if !opts.severity.contains(&f.severity) {
            continue;
        }
        if opts.ignore_unfixed && f.is_vuln() && !f.has_fix() {
            v.unfixed.push(f.clone());
            continue;
        }
        v.failing.push(f.clone());
    }
    v.all = findings;
    v
}

/// Whether waiver `w` applies to finding `f`: same kind and id, and its `paths`/`purls`
/// (if any) match the finding's target or package path / package URL.
pub fn covers(w: &Waiver, f: &Finding) -> bool {
    let kind_ok = match f.kind {
        Some(Kind::Vulnerability) => w.section == Section::Vulnerabilities,
        Some(Kind::Secret) => w.section == Section::Secrets,
        None => false,
    };
    if !kind_ok || w.id != f.id {
        return false;
    }
    let target = f.target.trim_start_matches('/');
    let path_ok = w.paths.is_empty()
        || w.paths.iter().any(|p| {
            let p = p.trim_start_matches('/');
            glob(p, target) || (!f.pkg_path.is_empty() && glob(p, f.pkg_path.trim_start_matches('/')))
        });
    // A purl without version or qualifiers covers every version of the package.
    let purl_ok = w.purls.is_empty()
        || w.purls.iter().any(|p| {
            f.purl == *p
                || f.purl
                    .strip_prefix(p.as_str())
                    .is_some_and(|rest| rest.starts_with(['@', '?']))
        });
    path_ok && purl_ok
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
        s.push_str(&format!(
            "\nexpired waiver: {} expired on {}\n",
            w.name(),
            w.expired_at
        ));
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
                _ => format!("{} in {} {}", f.id, f.pkg, f.installed),
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

/// Glob match as in Trivy's `paths`: `**` crosses `/`, `*` and `?` do not.
pub fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some(b'*') if p.get(1) == Some(&b'*') => match p[2..].strip_prefix(b"/") {
                // `**/`: zero or more whole folders.
                Some(after) => go(after, t) || (1..=t.len()).any(|i| t[i - 1] == b'/' && go(after, &t[i..])),
                None => (0..=t.len()).any(|i| go(&p[2..], &t[i..])),
            },
            Some(b'*') => (0..=t.len())
                .take_while(|&i| i == 0 || t[i - 1] != b'/')
                .any(|i| go(&p[1..], &t[i..])),
            Some(b'?') => t.first().is_some_and(|&c| c != b'/') && go(&p[1..], &t[1..]),
            Some(&c) => t.first() == Some(&c) && go(&p[1..], &t[1..]),
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

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
            paths: vec![],
            purls: vec![],
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
        let v = decide(f.clone(), &opts(&["CRITICAL"], false), &[], TODAY);
        assert!(!v.passed());
        assert_eq!(v.failing.len(), 1);
        assert_eq!(v.failing[0].id, "CVE-1");
        let v = decide(vec![f[1].clone()], &opts(&["CRITICAL"], false), &[], TODAY);
        assert!(v.passed(), "HIGH does not fail a CRITICAL gate");
        assert_eq!(v.all.len(), 1, "but it is still reported");
        assert!(!decide(vec![f[1].clone()], &opts(&["CRITICAL", "HIGH"], false), &[], TODAY).passed());
        assert!(decide(vec![], &opts(&["CRITICAL"], false), &[], TODAY).passed());
    }

    #[test]
    fn ignore_unfixed_skips_only_vulnerabilities_without_a_fix() {
        let f = vec![vuln("CVE-1", "CRITICAL", ""), secret("github-pat", "/a.env")];
        let v = decide(f.clone(), &opts(&["CRITICAL"], true), &[], TODAY);
        assert_eq!(v.unfixed.len(), 1);
        assert_eq!(v.failing.len(), 1, "a secret is never 'unfixed'");
        let v = decide(vec![f[0].clone()], &opts(&["CRITICAL"], false), &[], TODAY);
        assert!(!v.passed());
    }

    #[test]
    fn live_waivers_waive_and_list() {
        let f = vec![
            vuln("CVE-1", "CRITICAL", "2"),
            secret("github-pat", "/workspace/deploy.env"),
        ];
        let w = vec![
            waiver(Section::Vulnerabilities, "CVE-1", Some("2027-01-31")),
            waiver(Section::Secrets, "github-pat", Some("2027-01-31")),
        ];
        let v = decide(f, &opts(&["CRITICAL"], false), &w, TODAY);
        assert!(v.passed());
        assert_eq!(v.waived.len(), 2);
        let t = table(&v, &opts(&["CRITICAL"], false));
        assert!(
            t.contains("waived (2)") && t.contains("CVE-1") && t.contains("github-pat"),
            "{t}"
        );
        let s = summary(&v, &opts(&["CRITICAL"], false));
        assert_eq!(s["waived"][0]["waiver"]["expired_at"], "2027-01-31");
        assert_eq!(s["counts"]["CRITICAL"]["vulnerabilities"], 1);
    }

    #[test]
    fn a_waiver_of_the_wrong_kind_or_id_does_not_apply() {
        let f = vec![vuln("github-pat", "CRITICAL", "2"), secret("CVE-1", "/a")];
        let w = vec![
            waiver(Section::Secrets, "github-pat", None),
            waiver(Section::Vulnerabilities, "CVE-1", None),
        ];
        let v = decide(f, &opts(&["CRITICAL"], false), &w, TODAY);
        assert_eq!(v.failing.len(), 2);
        assert!(warnings(&v, TODAY).is_empty());
    }

    #[test]
    fn expired_waiver_fails_even_with_nothing_to_waive() {
        let w = vec![waiver(Section::Vulnerabilities, "CVE-9", Some("2026-11-27"))];
        let v = decide(vec![], &opts(&["CRITICAL"], false), &w, TODAY);
        assert!(!v.passed());
        let msg = failure(&v, &opts(&["CRITICAL"], false));
        assert!(
            msg.contains("`CVE-9` (.trivyignore.yaml:2) expired on 2026-11-27"),
            "{msg}"
        );
        // And what it covered fails again.
        let v = decide(
            vec![vuln("CVE-9", "CRITICAL", "2")],
            &opts(&["CRITICAL"], false),
            &w,
            TODAY,
        );
        assert_eq!((v.failing.len(), v.waived.len()), (1, 0));
    }

    #[test]
    fn soon_expiring_waivers_warn() {
        let w = vec![waiver(Section::Vulnerabilities, "CVE-1", Some("2026-12-05"))];
        let v = decide(vec![], &opts(&["CRITICAL"], false), &w, TODAY);
        assert!(v.passed());
        let warn = warnings(&v, TODAY);
        assert_eq!(warn.len(), 1);
        assert!(warn[0].contains("expires on 2026-12-05 (in 8 days)"), "{warn:?}");
    }

    #[test]
    fn paths_and_purls_narrow_a_waiver() {
        let mut w = waiver(Section::Secrets, "github-pat", None);
        w.paths = vec!["workspace/*.env".into()];
        assert!(covers(&w, &secret("github-pat", "/workspace/deploy.env")));
        assert!(!covers(&w, &secret("github-pat", "/etc/deploy.env")));
        let mut w = waiver(Section::Vulnerabilities, "CVE-1", None);
        w.purls = vec!["pkg:apk/alpine/busybox".into()];
        assert!(covers(&w, &vuln("CVE-1", "CRITICAL", "")));
        w.purls = vec!["pkg:apk/alpine/busybox-extras".into()];
        assert!(!covers(&w, &vuln("CVE-1", "CRITICAL", "")));
    }

    #[test]
    fn failure_line_names_findings() {
        let v = decide(
            vec![
                vuln("CVE-1", "CRITICAL", "2"),
                secret("github-pat", "/workspace/deploy.env"),
            ],
            &opts(&["CRITICAL"], false),
            &[],
            TODAY,
        );
        let msg = failure(&v, &opts(&["CRITICAL"], false));
        assert!(msg.contains("2 finding(s) at gate severity CRITICAL"), "{msg}");
        assert!(msg.contains("CVE-1 in busybox 1.37.0-r18"), "{msg}");
        assert!(msg.contains("secret github-pat in /workspace/deploy.env"), "{msg}");
    }

    #[test]
    fn globs() {
        assert!(glob("usr/local/bin/*", "usr/local/bin/helm"));
        assert!(!glob("usr/local/bin/*", "usr/local/bin/x/helm"));
        assert!(glob("usr/**", "usr/local/bin/x/helm"));
        assert!(glob("**/deploy.env", "workspace/deploy.env"));
        assert!(glob("**/deploy.env", "deploy.env"));
        assert!(glob("workspace/deploy.en?", "workspace/deploy.env"));
        assert!(!glob("etc/*", "workspace/deploy.env"));
    }
}
