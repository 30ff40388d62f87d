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
    if report["SchemaVersion"].as_u64() != Some(2) {
        return Err(format!("SchemaVersion is {}, expected 2", report["SchemaVersion"]));
    }
    let results = match &report["Results"] {
        Value::Null => return Ok(vec![]),
        Value::Array(r) => r,
        other => return Err(format!("`Results` is not a list: {other}")),
    };
    let mut out = Vec::new();
    for r in results {
        let target = text(&r["Target"]);
        for v in list(r, "Vulnerabilities")? {
            let f = Finding {
                kind: Some(Kind::Vulnerability),
                id: need(v, "VulnerabilityID")?,
                severity: severity(v)?,
                target: target.clone(),
                pkg: need(v, "PkgName")?,
                pkg_path: text(&v["PkgPath"]),
                purl: text(&v["PkgIdentifier"]["PURL"]),
                installed: text(&v["InstalledVersion"]),
                fixed: text(&v["FixedVersion"]),
                status: text(&v["Status"]),
                title: text(&v["Title"]),
                line: 0,
            };
            out.push(f);
        }
        for s in list(r, "Secrets")? {
            out.push(Finding {
                kind: Some(Kind::Secret),
                id: need(s, "RuleID")?,
                severity: severity(s)?,
                target: target.clone(),
                title: text(&s["Title"]),
                line: s["StartLine"].as_u64().unwrap_or(0),
                ..Finding::default()
            });
        }
    }
    Ok(out)
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
