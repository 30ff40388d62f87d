//! Reading Trivy's JSON report (SchemaVersion 2) into findings. Pure.

use serde_json::Value;

pub const SEVERITIES: [&str; 5] = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Vulnerability,
    Secret,
}

/// One vulnerability or secret from the report.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Finding {
    pub kind: Option<Kind>,
    /// `VulnerabilityID`, or the secret's `RuleID`.
    pub id: String,
    pub severity: String,
    /// The result's `Target`: the OS, or the file a secret is in.
    pub target: String,
    pub pkg: String,
    pub pkg_path: String,
    pub purl: String,
    pub installed: String,
    pub fixed: String,
    /// Trivy's status (`fixed`, `affected`, `will_not_fix`, ...); empty for secrets.
    pub status: String,
    pub title: String,
    /// First line of a secret in its file.
    pub line: u64,
}

impl Finding {
    pub fn is_vuln(&self) -> bool {
        self.kind == Some(Kind::Vulnerability)
    }

    /// A fix exists (what `--ignore-unfixed` keeps), as Trivy decides it.
    pub fn has_fix(&self) -> bool {
        match self.status.as_str() {
            "" => !self.fixed.is_empty(),
            s => s == "fixed",
        }
    }

    /// One line for the terminal: what, where, and what to do.
    pub fn describe(&self) -> String {
        match self.kind {
            Some(Kind::Secret) => format!(
                "{:<8} secret {} in {} line {} ({})",
                self.severity, self.id, self.target, self.line, self.title
            ),
            _ => {
                let fix = if self.fixed.is_empty() {
                    "no fix yet".to_string()
                } else {
                    format!("fixed in {}", self.fixed)
                };
                format!(
                    "{:<8} {} in {} {} ({fix})",
                    self.severity, self.id, self.pkg, self.installed
                )
            }
        }
    }

    /// The record form (release record, summary).
    pub fn to_json(&self) -> Value {
        match self.kind {
            Some(Kind::Secret) => serde_json::json!({
                "kind": "secret", "rule": self.id, "severity": self.severity,
                "file": self.target, "line": self.line, "title": self.title,
            }),
            _ => serde_json::json!({
                "kind": "vulnerability", "id": self.id, "severity": self.severity,
                "package": self.pkg, "installed": self.installed, "fixed": self.fixed,
                "status": self.status, "target": self.target,
            }),
        }
    }
}

/// Every vulnerability and secret in a Trivy JSON report. `Err` names what is wrong with it.
pub fn parse(report: &Value) -> Result<Vec<Finding>, String> {
    let mut out = Vec::new();
    for r in results(report)? {
        let target = text(&r["Target"]);
        for v in list(r, "Vulnerabilities")? {
            out.push(vuln(v, &target)?);
        }
        for s in list(r, "Secrets")? {
            out.push(secret(s, &target)?);
        }
    }
    Ok(out)
}

/// A finding Trivy took out of the report because of the ignore file: an element of a
/// result's `ExperimentalModifiedFindings` (written with `--show-suppressed`).
#[derive(Debug, Clone, PartialEq)]
pub struct Suppressed {
    pub finding: Finding,
    /// `ignored` for an ignore-file entry.
    pub status: String,
    /// The entry's `statement`, verbatim.
    pub statement: String,
    /// The ignore file, as Trivy was given it.
    pub source: String,
}

/// Every suppressed finding in a Trivy JSON report; a type other than vulnerability or
/// secret is an `Err` (the gate does not know what it would be waiving).
pub fn suppressed(report: &Value) -> Result<Vec<Suppressed>, String> {
    let mut out = Vec::new();
    for r in results(report)? {
        let target = text(&r["Target"]);
        for m in list(r, "ExperimentalModifiedFindings")? {
            let finding = match m["Type"].as_str() {
                Some("vulnerability") => vuln(&m["Finding"], &target)?,
                Some("secret") => secret(&m["Finding"], &target)?,
                other => return Err(format!("a suppressed finding of type {}", other.unwrap_or("(none)"))),
            };
            let field = |k: &str| {
                m[k].as_str()
                    .map(String::from)
                    .ok_or_else(|| format!("a suppressed finding without `{k}`"))
            };
            out.push(Suppressed {
                finding,
                status: field("Status")?,
                statement: field("Statement")?,
                source: field("Source")?,
            });
        }
    }
    Ok(out)
}

fn results(report: &Value) -> Result<&[Value], String> {
    if report["SchemaVersion"].as_u64() != Some(2) {
        return Err(format!("SchemaVersion is {}, expected 2", report["SchemaVersion"]));
    }
    match &report["Results"] {
        Value::Null => Ok(&[]),
        Value::Array(r) => Ok(r),
        other => Err(format!("`Results` is not a list: {other}")),
    }
}

fn vuln(v: &Value, target: &str) -> Result<Finding, String> {
    Ok(Finding {
        kind: Some(Kind::Vulnerability),
        id: need(v, "VulnerabilityID")?,
        severity: severity(v)?,
        target: target.to_string(),
        pkg: need(v, "PkgName")?,
        pkg_path: text(&v["PkgPath"]),
        purl: text(&v["PkgIdentifier"]["PURL"]),
        installed: text(&v["InstalledVersion"]),
        fixed: text(&v["FixedVersion"]),
        status: text(&v["Status"]),
        title: text(&v["Title"]),
        line: 0,
    })
}

fn secret(s: &Value, target: &str) -> Result<Finding, String> {
    Ok(Finding {
        kind: Some(Kind::Secret),
        id: need(s, "RuleID")?,
        severity: severity(s)?,
        target: target.to_string(),
        title: text(&s["Title"]),
        line: s["StartLine"].as_u64().unwrap_or(0),
        ..Finding::default()
    })
}

fn list<'a>(r: &'a Value, key: &str) -> Result<&'a [Value], String> {
    match &r[key] {
        Value::Null => Ok(&[]),
        Value::Array(a) => Ok(a),
        other => Err(format!("`{key}` is not a list: {other}")),
    }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn need(v: &Value, key: &str) -> Result<String, String> {
    v[key]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(String::from)
        .ok_or_else(|| format!("a finding without `{key}`"))
}

fn severity(v: &Value) -> Result<String, String> {
    let s = need(v, "Severity")?;
    if SEVERITIES.contains(&s.as_str()) {
        Ok(s)
    } else {
        Err(format!("unknown severity `{s}`"))
    }
}

/// The OS Trivy detected (`alpine 3.22.0`); `None` means OS packages were not checked.
pub fn os(report: &Value) -> Option<String> {
    let os = &report["Metadata"]["OS"];
    let family = os["Family"].as_str().filter(|s| !s.is_empty())?;
    Some(
        format!("{family} {}", os["Name"].as_str().unwrap_or_default())
            .trim()
            .to_string(),
    )
}

/// The report's file name (without extension): the image's tag, made file-safe.
/// `repo/name:v1.2.3` -> `v1.2.3`; a digest -> `sha256-<12 hex>`; no tag -> `latest`.
pub fn file_stem(image: &str) -> String {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    let raw = match (last.split_once(':'), digest) {
        (Some((_, tag)), _) => tag.to_string(),
        (None, Some(d)) => d.replace(':', "-").chars().take(7 + 12).collect(),
        (None, None) => "latest".to_string(),
    };
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Shaped like Trivy 0.59.1's output for an Alpine image with a planted token (trimmed).
    fn sample() -> Value {
        json!({
            "SchemaVersion": 2,
            "ArtifactName": "pp:v1",
            "Results": [
                { "Target": "pp:v1 (alpine 3.22.0)", "Class": "os-pkgs", "Type": "alpine", "Vulnerabilities": [
                    { "VulnerabilityID": "CVE-2099-0001", "PkgName": "busybox", "InstalledVersion": "1.37.0-r18",
                      "FixedVersion": "1.37.0-r20", "Status": "fixed", "Severity": "CRITICAL",
                      "PkgIdentifier": { "PURL": "pkg:apk/alpine/busybox@1.37.0-r18?arch=x86_64" }, "Title": "t" },
                    { "VulnerabilityID": "CVE-2099-0003", "PkgName": "zlib", "InstalledVersion": "1.3.1-r2",
                      "Status": "affected", "Severity": "HIGH" }
                ]},
                { "Target": "/workspace/deploy.env", "Class": "secret", "Secrets": [
                    { "RuleID": "github-pat", "Category": "GitHub", "Severity": "CRITICAL", "Title": "GitHub Personal Access Token",
                      "StartLine": 3, "EndLine": 3 }
                ]},
                { "Target": "usr/local/bin/helm", "Class": "lang-pkgs", "Type": "gobinary" }
            ]
        })
    }

    #[test]
    fn reads_vulnerabilities_and_secrets() {
        let f = parse(&sample()).unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(f[0].id, "CVE-2099-0001");
        assert_eq!(
            (f[0].pkg.as_str(), f[0].installed.as_str(), f[0].fixed.as_str()),
            ("busybox", "1.37.0-r18", "1.37.0-r20")
        );
        assert!(f[0].has_fix());
        assert!(!f[1].has_fix());
        assert_eq!(f[2].kind, Some(Kind::Secret));
        assert_eq!(
            (f[2].id.as_str(), f[2].target.as_str(), f[2].line),
            ("github-pat", "/workspace/deploy.env", 3)
        );
        assert!(
            f[2].describe().contains("github-pat in /workspace/deploy.env line 3"),
            "{}",
            f[2].describe()
        );
        assert!(
            f[0].describe().contains("busybox 1.37.0-r18 (fixed in 1.37.0-r20)"),
            "{}",
            f[0].describe()
        );
    }

    #[test]
    fn reads_suppressed_findings() {
        // Shaped like `trivy convert --show-suppressed --ignorefile F` output (0.59.1, trimmed).
        let r = json!({ "SchemaVersion": 2, "Results": [
            { "Target": "pp:v1 (alpine 3.22.0)", "Class": "os-pkgs", "ExperimentalModifiedFindings": [
                { "Type": "vulnerability", "Status": "ignored", "Statement": "not reachable", "Source": "/t/.trivyignore.yaml",
                  "Finding": { "VulnerabilityID": "CVE-2099-0001", "PkgName": "busybox", "InstalledVersion": "1.37.0-r18", "Severity": "CRITICAL" } }
            ]},
            { "Target": "/workspace/aws.env", "Class": "secret", "ExperimentalModifiedFindings": [
                { "Type": "secret", "Status": "ignored", "Statement": "fixture", "Source": "/t/.trivyignore.yaml",
                  "Finding": { "RuleID": "aws-access-key-id", "Severity": "CRITICAL", "StartLine": 1 } }
            ]}
        ]});
        assert!(parse(&r).unwrap().is_empty(), "suppressed findings are not live ones");
        let s = suppressed(&r).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0].finding.id.as_str(), s[0].finding.target.as_str()),
            ("CVE-2099-0001", "pp:v1 (alpine 3.22.0)")
        );
        assert_eq!(
            (s[0].status.as_str(), s[0].statement.as_str(), s[0].source.as_str()),
            ("ignored", "not reachable", "/t/.trivyignore.yaml")
        );
        assert_eq!(
            (s[1].finding.kind, s[1].finding.target.as_str()),
            (Some(Kind::Secret), "/workspace/aws.env")
        );
        let odd = json!({ "SchemaVersion": 2, "Results": [{ "Target": "x", "ExperimentalModifiedFindings": [
            { "Type": "misconfiguration", "Status": "ignored", "Statement": "", "Source": "f", "Finding": {} }]}]});
        assert!(suppressed(&odd).unwrap_err().contains("type misconfiguration"));
        let odd = json!({ "SchemaVersion": 2, "Results": [{ "Target": "x", "ExperimentalModifiedFindings": [
            { "Type": "secret", "Status": "ignored", "Source": "f", "Finding": { "RuleID": "r", "Severity": "LOW" } }]}]});
        assert!(suppressed(&odd).unwrap_err().contains("without `Statement`"));
    }

    #[test]
    fn detected_os() {
        let r = json!({ "Metadata": { "OS": { "Family": "alpine", "Name": "3.22.0" } } });
        assert_eq!(os(&r).as_deref(), Some("alpine 3.22.0"));
        assert_eq!(os(&json!({ "Metadata": {} })), None);
    }

    #[test]
    fn a_clean_report_has_no_findings() {
        assert_eq!(
            parse(&json!({ "SchemaVersion": 2, "ArtifactName": "x" })).unwrap(),
            vec![]
        );
        assert_eq!(
            parse(&json!({ "SchemaVersion": 2, "Results": [{ "Target": "x" }] })).unwrap(),
            vec![]
        );
    }

    #[test]
    fn a_report_that_is_not_trivys_is_an_error() {
        assert!(parse(&json!({})).unwrap_err().contains("SchemaVersion"));
        assert!(parse(&json!({ "SchemaVersion": 2, "Results": {} })).is_err());
        let bad = json!({ "SchemaVersion": 2, "Results": [{ "Vulnerabilities": [{ "VulnerabilityID": "C", "PkgName": "p", "Severity": "SEVERE" }] }] });
        assert!(parse(&bad).unwrap_err().contains("SEVERE"));
        let bad = json!({ "SchemaVersion": 2, "Results": [{ "Secrets": [{ "Severity": "HIGH" }] }] });
        assert!(parse(&bad).unwrap_err().contains("RuleID"));
    }

    #[test]
    fn has_fix_without_status_falls_back_to_fixed_version() {
        let f = Finding {
            fixed: "1.2".into(),
            ..Finding::default()
        };
        assert!(f.has_fix());
        assert!(!Finding::default().has_fix());
        assert!(!Finding {
            fixed: "1.2".into(),
            status: "will_not_fix".into(),
            ..Finding::default()
        }
        .has_fix());
    }

    #[test]
    fn report_names() {
        assert_eq!(file_stem("policy-platform:v1.2.3"), "v1.2.3");
        assert_eq!(file_stem("127.0.0.1:5000/org/pp:v1.0.0-rc.1"), "v1.0.0-rc.1");
        assert_eq!(file_stem("127.0.0.1:5000/org/pp"), "latest");
        assert_eq!(file_stem("pp@sha256:0123456789abcdef0123"), "sha256-0123456789ab");
    }
}
