//! The scan's Trivy arguments and what Trivy's exit code and output mean. Pure.

use super::report::{self, Finding, Kind, Suppressed};
use super::waivers::{Date, Section, Waiver, FILE};
use crate::config::Config;
use serde_json::Value;

/// The exit code Trivy is told to use for findings. Not 1: Trivy exits 1 on every fatal error.
pub const FINDINGS_EXIT: i32 = 10;

/// `--severity` for Trivy: report everything (`UNKNOWN,LOW,...,CRITICAL`); the gate picks.
pub fn all_severities() -> String {
    super::report::SEVERITIES
        .iter()
        .rev()
        .copied()
        .collect::<Vec<_>>()
        .join(",")
}

/// The `TRIVY_*` variables that reach Trivy: where its DB and cache are and how it gets them
/// (mirrors and their credentials, the offline switches), how long it may take, and how much
/// it logs. None of them changes what is scanned or reported. Every other `TRIVY_*` is
/// refused, the unknown ones too: Trivy reads each of its flags from a `TRIVY_<FLAG>`
/// variable, so a name not listed here may be a flag (of this Trivy or the next) that
/// changes the scan. `TRIVY_QUIET` is not here: it also silences the fatal error the scan
/// quotes when Trivy fails.
pub const ALLOWED_ENV: &[&str] = &[
    "TRIVY_CACHE_DIR",
    "TRIVY_DB_REPOSITORY",
    "TRIVY_JAVA_DB_REPOSITORY",
    "TRIVY_SKIP_DB_UPDATE",
    "TRIVY_SKIP_JAVA_DB_UPDATE",
    "TRIVY_OFFLINE_SCAN",
    "TRIVY_TIMEOUT",
    "TRIVY_USERNAME",
    "TRIVY_PASSWORD",
    "TRIVY_REGISTRY_TOKEN",
    "TRIVY_NO_PROGRESS",
    "TRIVY_DEBUG",
];

/// The set `TRIVY_*` variables that are not allowed, sorted. An empty one is not counted:
/// Trivy treats it as unset, and it is not passed on.
pub fn refused_env(vars: &[(String, String)]) -> Vec<String> {
    let mut out: Vec<String> = vars
        .iter()
        .filter(|(k, v)| !v.is_empty() && !ALLOWED_ENV.contains(&k.as_str()))
        .map(|(k, _)| k.clone())
        .collect();
    out.sort();
    out
}

/// The variables Trivy gets: the allowed ones that are set.
pub fn passed_env(vars: &[(String, String)]) -> Vec<(String, String)> {
    vars.iter()
        .filter(|(k, v)| !v.is_empty() && ALLOWED_ENV.contains(&k.as_str()))
        .cloned()
        .collect()
}

/// `--config` for every Trivy command: nothing, so that no `trivy.yaml` applies.
pub const NO_CONFIG: &str = "/dev/null";

/// Trivy's arguments for the scan: every severity, vulnerabilities and secrets, JSON on
/// stdout, a distinct exit code for findings, the image from the local Docker engine only
/// (never a registry pull), no configuration file and no ignore file (the raw report holds
/// every finding; waivers are applied to it afterwards, see [`gate_args`]).
pub fn scan_args(image: &str, db_repository: Option<&str>) -> Vec<String> {
    let mut a: Vec<String> = [
        "image",
        "--config",
        NO_CONFIG,
        "--scanners",
        "vuln,secret",
        "--severity",
        &all_severities(),
        "--format",
        "json",
        "--exit-code",
        &FINDINGS_EXIT.to_string(),
        "--image-src",
        "docker",
    ]
    .map(String::from)
    .to_vec();
    if let Some(repo) = db_repository {
        a.extend(["--db-repository".to_string(), repo.to_string()]);
    }
    a.push(image.to_string());
    a
}

/// `trivy convert` of the raw report to SARIF on stdout: every finding, waived ones too.
pub fn sarif_args(report: &str) -> Vec<String> {
    [
        "convert",
        "--config",
        NO_CONFIG,
        "--format",
        "sarif",
        "--severity",
        &all_severities(),
        report,
    ]
    .map(String::from)
    .to_vec()
}

/// Trivy's check of the waiver file, against an empty report (no DB, no scan): exit 1 with
/// a FATAL line naming the file when Trivy cannot use it.
pub fn validate_args(ignorefile: &str, empty_report: &str) -> Vec<String> {
    [
        "convert",
        "--config",
        NO_CONFIG,
        "--format",
        "json",
        "--ignorefile",
        ignorefile,
        empty_report,
    ]
    .map(String::from)
    .to_vec()
}

/// An empty report for [`validate_args`] (`ArtifactType` is required by `convert`).
pub const EMPTY_REPORT: &str = r#"{"SchemaVersion":2,"ArtifactName":"waivers","ArtifactType":"filesystem"}"#;

/// The waivers applied to the raw report by Trivy itself: live findings stay in
/// `Vulnerabilities`/`Secrets`, waived ones move to `ExperimentalModifiedFindings` with
/// the entry's statement; the exit code counts live findings only.
pub fn gate_args(ignorefile: &str, report: &str) -> Vec<String> {
    [
        "convert",
        "--config",
        NO_CONFIG,
        "--format",
        "json",
        "--show-suppressed",
        "--exit-code",
        &FINDINGS_EXIT.to_string(),
        "--severity",
        &all_severities(),
        "--ignorefile",
        ignorefile,
        report,
    ]
    .map(String::from)
    .to_vec()
}

/// Findings Trivy took out, each with the entry of ours that did it.
pub type Waived = Vec<(Finding, Waiver)>;

/// Pairs each finding Trivy suppressed with the entry of ours that suppressed it, and checks
/// that the two reports add up: every finding of the raw scan is either live or waived,
/// nothing more or less. Trivy names an entry only by its statement, so section, id and
/// statement must match one live waiver (`waivers::parse` keeps that triple unique).
/// `Err`: Trivy and the gate disagree about the file (an environment error).
pub fn waived(
    raw: &[Finding],
    live: &[Finding],
    suppressed: Vec<Suppressed>,
    waivers: &[Waiver],
    source: &str,
    today: Date,
) -> Result<Waived, String> {
    let mut out = Vec::new();
    for s in suppressed {
        let what = s.finding.describe();
        let what = what.trim_start();
        if s.status != "ignored" || s.source != source {
            return Err(format!(
                "Trivy reports {what} as `{}` by `{}`, not as ignored by {source}",
                s.status, s.source
            ));
        }
        let section = match s.finding.kind {
            Some(Kind::Vulnerability) => Section::Vulnerabilities,
            _ => Section::Secrets,
        };
        let w = waivers
            .iter()
            .find(|w| w.section == section && w.id == s.finding.id && w.statement == s.statement)
            .ok_or_else(|| {
                format!(
                    "Trivy waived {what} with statement `{}`, but no entry of {FILE} has that id and statement",
                    s.statement
                )
            })?;
        if w.expired(today) {
            return Err(format!("Trivy applied the expired waiver {}", w.name()));
        }
        out.push((s.finding, w.clone()));
    }
    let mut left: Vec<&Finding> = raw.iter().collect();
    for f in live.iter().chain(out.iter().map(|(f, _)| f)) {
        match left.iter().position(|r| *r == f) {
            Some(i) => {
                left.remove(i);
            }
            None => return Err(format!("{} is not in the raw report", f.describe().trim_start())),
        }
    }
    if let Some(f) = left.first() {
        return Err(format!(
            "{} of the raw report is neither live nor waived",
            f.describe().trim_start()
        ));
    }
    Ok(out)
}

/// `--db-repository` from the config, unless `TRIVY_DB_REPOSITORY` is set (the environment wins).
pub fn db_repository(cfg: &Config, env_set: bool) -> Option<String> {
    (!env_set && !cfg.trivy_db_repository.is_empty()).then(|| cfg.trivy_db_repository.join(","))
}

/// What a finished Trivy run means: the report and its findings, or why it is not usable
/// (an environment error: Trivy crashed, no DB, a bad flag, an unreadable report).
pub fn interpret(code: Option<i32>, stdout: &[u8], stderr: &str) -> Result<(Value, Vec<Finding>), String> {
    let code = match code {
        Some(c @ (0 | FINDINGS_EXIT)) => c,
        Some(c) => return Err(format!("Trivy failed (exit {c}): {}; {}", fatal(stderr), hint(stderr))),
        None => return Err("Trivy was killed by a signal; run the scan again".into()),
    };
    let report: Value = serde_json::from_slice(stdout).map_err(|e| {
        format!("Trivy exited {code} but its output is not a JSON report ({e}); run it by hand to see why")
    })?;
    let findings = report::parse(&report).map_err(|e| format!("Trivy's JSON report is not readable: {e}"))?;
    let says_findings = code == FINDINGS_EXIT;
    if says_findings == findings.is_empty() {
        return Err(format!(
            "Trivy's exit code {code} disagrees with its report ({} finding(s)); check for TRIVY_* settings that change the output",
            findings.len()
        ));
    }
    Ok((report, findings))
}

/// The FATAL message in Trivy's log (with its indented continuation lines), else the last line.
pub fn fatal(stderr: &str) -> String {
    let mut lines = stderr.lines().skip_while(|l| !l.contains("\tFATAL\t"));
    if let Some(first) = lines.next() {
        let msg = first.split("\tFATAL\t").nth(1).unwrap_or(first);
        let msg = msg.strip_prefix("Fatal error\t").unwrap_or(msg);
        let more = lines
            .take_while(|l| !l.contains("\tINFO\t") && !l.contains("\tWARN\t"))
            .map(str::trim);
        let all: Vec<&str> = std::iter::once(msg.trim())
            .chain(more)
            .filter(|l| !l.is_empty())
            .collect();
        return all.join(" ");
    }
    stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no message")
        .trim()
        .to_string()
}

fn hint(stderr: &str) -> &'static str {
    if stderr.contains("DB error") || stderr.contains("vulnerability DB") {
        "the vulnerability DB is missing or broken: with network, let Trivy download it (or set `trivy-db-repository` / TRIVY_DB_REPOSITORY to a mirror); offline, put trivy.db and metadata.json under $TRIVY_CACHE_DIR/db and set TRIVY_SKIP_DB_UPDATE=true"
    } else if stderr.contains("unable to find the specified image") {
        "build the image first (`cargo xtask image`) or pass --image REF of a local image"
    } else if stderr.contains("unknown flag") {
        "this Trivy does not accept a flag the scan passes; install the pinned version"
    } else {
        "see Trivy's log above"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_args_report_everything_and_gate_on_a_distinct_code() {
        let a = scan_args("pp:v1", None).join(" ");
        assert_eq!(
            a,
            "image --config /dev/null --scanners vuln,secret --severity UNKNOWN,LOW,MEDIUM,HIGH,CRITICAL --format json --exit-code 10 --image-src docker pp:v1"
        );
        let a = scan_args(
            "pp:v1",
            Some("mirror.example/trivy-db:2,ghcr.io/aquasecurity/trivy-db:2"),
        );
        assert_eq!(
            a[a.len() - 3..],
            [
                "--db-repository",
                "mirror.example/trivy-db:2,ghcr.io/aquasecurity/trivy-db:2",
                "pp:v1"
            ]
        );
    }

    #[test]
    fn db_repository_from_config_unless_the_environment_says() {
        let cfg = Config {
            trivy_db_repository: vec!["a/db:2".into(), "b/db:2".into()],
            ..Config::default()
        };
        assert_eq!(db_repository(&cfg, false).as_deref(), Some("a/db:2,b/db:2"));
        assert_eq!(db_repository(&cfg, true), None);
        assert_eq!(db_repository(&Config::default(), false), None);
    }

    #[test]
    fn only_allowed_variables_pass_and_every_other_is_named() {
        let v = |k: &str, val: &str| (k.to_string(), val.to_string());
        let vars = vec![
            v("TRIVY_CACHE_DIR", "/c"),
            v("TRIVY_CONFIG", "/repo/trivy.yaml"),
            v("TRIVY_DEBUG", "true"),
            v("TRIVY_IGNORE_UNFIXED", "false"),
            v("TRIVY_PKG_TYPES", "library"),
            v("TRIVY_PP_SOMETHING_NEW", "1"),
            v("TRIVY_SEVERITY", ""),
            v("TRIVY_SKIP_DB_UPDATE", "true"),
            v("TRIVY_TIMEOUT", ""),
        ];
        assert_eq!(
            refused_env(&vars),
            [
                "TRIVY_CONFIG",
                "TRIVY_IGNORE_UNFIXED",
                "TRIVY_PKG_TYPES",
                "TRIVY_PP_SOMETHING_NEW"
            ]
        );
        let passed: Vec<String> = passed_env(&vars).into_iter().map(|(k, _)| k).collect();
        assert_eq!(passed, ["TRIVY_CACHE_DIR", "TRIVY_DEBUG", "TRIVY_SKIP_DB_UPDATE"]);
        for name in [
            "TRIVY_QUIET",
            "TRIVY_INSECURE",
            "TRIVY_DOCKER_HOST",
            "TRIVY_SERVER",
            "TRIVY_SECRET_CONFIG",
            "TRIVY_IGNOREFILE",
        ] {
            assert_eq!(refused_env(&[v(name, "x")]), [name]);
        }
    }

    #[test]
    fn every_command_runs_without_a_config_file() {
        for args in [
            scan_args("pp:v1", None),
            sarif_args("r.json"),
            validate_args("w.yaml", "e.json"),
            gate_args("w.yaml", "r.json"),
        ] {
            let at = args.iter().position(|a| a == "--config").unwrap();
            assert_eq!(args[at + 1], "/dev/null", "{args:?}");
        }
        assert_eq!(
            gate_args("/t/.trivyignore.yaml", "/o/v1.json").join(" "),
            "convert --config /dev/null --format json --show-suppressed --exit-code 10 --severity UNKNOWN,LOW,MEDIUM,HIGH,CRITICAL --ignorefile /t/.trivyignore.yaml /o/v1.json"
        );
        assert!(
            !sarif_args("r.json").contains(&"--ignorefile".to_string()),
            "waived findings stay in the SARIF"
        );
    }

    fn finding(kind: Kind, id: &str) -> Finding {
        Finding {
            kind: Some(kind),
            id: id.into(),
            severity: "CRITICAL".into(),
            target: "t".into(),
            ..Finding::default()
        }
    }

    fn waiver(section: Section, id: &str, statement: &str) -> Waiver {
        Waiver {
            section,
            id: id.into(),
            statement: statement.into(),
            expired_at: Date::parse("2027-01-31").unwrap(),
            line: 3,
        }
    }

    fn suppressed(f: &Finding, statement: &str) -> Suppressed {
        Suppressed {
            finding: f.clone(),
            status: "ignored".into(),
            statement: statement.into(),
            source: "/t/w.yaml".into(),
        }
    }

    const TODAY: Date = Date { y: 2026, m: 11, d: 27 };

    #[test]
    fn waived_findings_are_paired_with_their_entry() {
        let (cve, pat, other) = (
            finding(Kind::Vulnerability, "CVE-1"),
            finding(Kind::Secret, "github-pat"),
            finding(Kind::Vulnerability, "CVE-2"),
        );
        let raw = [cve.clone(), pat.clone(), other.clone()];
        let ws = [
            waiver(Section::Vulnerabilities, "CVE-1", "a"),
            waiver(Section::Secrets, "github-pat", "b"),
            waiver(Section::Secrets, "github-pat", "c"),
        ];
        let got = waived(
            &raw,
            std::slice::from_ref(&other),
            vec![suppressed(&cve, "a"), suppressed(&pat, "c")],
            &ws,
            "/t/w.yaml",
            TODAY,
        )
        .unwrap();
        assert_eq!(got, vec![(cve.clone(), ws[0].clone()), (pat.clone(), ws[2].clone())]);
        assert!(waived(&[], &[], vec![], &ws, "/t/w.yaml", TODAY).unwrap().is_empty());
    }

    #[test]
    fn anything_unexpected_in_trivys_waivers_is_an_error() {
        let (cve, pat) = (
            finding(Kind::Vulnerability, "CVE-1"),
            finding(Kind::Secret, "github-pat"),
        );
        let raw = [cve.clone(), pat.clone()];
        let ws = [
            waiver(Section::Vulnerabilities, "CVE-1", "a"),
            waiver(Section::Vulnerabilities, "github-pat", "b"),
        ];
        let run = |s: Vec<Suppressed>, live: &[Finding], today: Date| {
            waived(&raw, live, s, &ws, "/t/w.yaml", today).unwrap_err()
        };
        let mut other_source = suppressed(&cve, "a");
        other_source.source = "/repo/.trivyignore".into();
        assert!(run(vec![other_source], std::slice::from_ref(&pat), TODAY).contains("not as ignored by /t/w.yaml"));
        let mut vex = suppressed(&cve, "a");
        vex.status = "not_affected".into();
        assert!(run(vec![vex], std::slice::from_ref(&pat), TODAY).contains("as `not_affected`"));
        // The statement or the section does not match an entry of ours.
        assert!(run(vec![suppressed(&cve, "z")], std::slice::from_ref(&pat), TODAY)
            .contains("no entry of .trivyignore.yaml"));
        assert!(run(vec![suppressed(&pat, "b")], std::slice::from_ref(&cve), TODAY).contains("no entry"));
        assert!(run(
            vec![suppressed(&cve, "a")],
            std::slice::from_ref(&pat),
            Date::parse("2027-01-31").unwrap()
        )
        .contains("expired waiver `CVE-1`"));
        // The two reports must add up.
        assert!(run(vec![suppressed(&cve, "a")], &[], TODAY).contains("neither live nor waived"));
        assert!(run(vec![suppressed(&cve, "a")], &[pat.clone(), pat.clone()], TODAY).contains("not in the raw report"));
        assert!(run(vec![], &[pat.clone(), cve.clone(), cve.clone()], TODAY).contains("not in the raw report"));
    }

    const REPORT_WITH: &str = r#"{"SchemaVersion":2,"Results":[{"Target":"/a.env","Class":"secret","Secrets":[{"RuleID":"github-pat","Severity":"CRITICAL","StartLine":1}]}]}"#;
    const REPORT_CLEAN: &str = r#"{"SchemaVersion":2,"ArtifactName":"pp:v1"}"#;

    #[test]
    fn exit_codes_are_read_against_the_report() {
        let (_, f) = interpret(Some(10), REPORT_WITH.as_bytes(), "").unwrap();
        assert_eq!(f.len(), 1);
        assert!(interpret(Some(0), REPORT_CLEAN.as_bytes(), "").unwrap().1.is_empty());
        // Disagreement is never taken at face value.
        assert!(interpret(Some(0), REPORT_WITH.as_bytes(), "")
            .unwrap_err()
            .contains("disagrees"));
        assert!(interpret(Some(10), REPORT_CLEAN.as_bytes(), "")
            .unwrap_err()
            .contains("disagrees"));
        assert!(interpret(Some(10), b"", "").unwrap_err().contains("not a JSON report"));
    }

    #[test]
    fn exit_1_is_a_crash_not_a_finding() {
        let log = "2026-11-27T23:02:13Z\tINFO\t[vuln] Vulnerability scanning is enabled\n\
                   2026-11-27T23:02:13Z\tFATAL\tFatal error\tinit error: DB error: error in vulnerability DB initialize: failed to open db: invalid database\n";
        let e = interpret(Some(1), REPORT_WITH.as_bytes(), log).unwrap_err();
        assert!(e.starts_with("Trivy failed (exit 1): init error: DB error: error in vulnerability DB initialize: failed to open db: invalid database;"), "{e}");
        assert!(e.contains("TRIVY_SKIP_DB_UPDATE"), "{e}");
        let log = "x\tFATAL\tFatal error\timage scan error: unable to find the specified image \"pp:v9\" in [\"docker\"]: 1 error occurred:\n\t* docker error: no such image\n\n";
        let e = interpret(Some(1), b"", log).unwrap_err();
        assert!(
            e.contains("in [\"docker\"]: 1 error occurred: * docker error: no such image;"),
            "{e}"
        );
        assert!(e.contains("cargo xtask image"), "{e}");
        assert!(interpret(Some(2), b"", "boom\n").unwrap_err().contains("exit 2): boom"));
    }
}
