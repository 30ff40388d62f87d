//! The scan's Trivy arguments and what Trivy's exit code and output mean. Pure.

use super::report::{self, Finding};
use crate::config::Config;
use serde_json::Value;

/// The exit code Trivy is told to use for findings. Not 1: Trivy exits 1 on every fatal error.
pub const FINDINGS_EXIT: i32 = 10;

/// `--severity` for Trivy: report everything (`UNKNOWN,LOW,...,CRITICAL`); the gate picks.
pub fn all_severities() -> String {
    super::report::SEVERITIES.iter().rev().copied().collect::<Vec<_>>().join(",")
}

/// Settings that would make Trivy hide findings from the gate. Waivers belong in
/// `.trivyignore.yaml`; unfixed vulnerabilities are skipped with `--ignore-unfixed`.
pub const HIDING_ENV: &[&str] = &[
    "TRIVY_IGNOREFILE",
    "TRIVY_IGNORE_UNFIXED",
    "TRIVY_IGNORE_STATUS",
    "TRIVY_IGNORE_POLICY",
    "TRIVY_SKIP_FILES",
    "TRIVY_SKIP_DIRS",
    "TRIVY_VEX",
    "TRIVY_OUTPUT",
    "TRIVY_INPUT",
    "TRIVY_SECRET_CONFIG",
];

/// The environment variables that would hide findings (set, and not "false"/"0").
pub fn hiding_env(vars: &[(String, String)]) -> Vec<String> {
    let mut out: Vec<String> = vars
        .iter()
        .filter(|(k, v)| HIDING_ENV.contains(&k.as_str()) && !v.is_empty() && v != "false" && v != "0")
        .map(|(k, _)| k.clone())
        .collect();
    out.sort();
    out
}

/// Trivy's arguments for the scan: every severity, vulnerabilities and secrets, JSON on
/// stdout, a distinct exit code for findings, the image from the local Docker engine only
/// (never a registry pull).
pub fn scan_args(image: &str, db_repository: Option<&str>) -> Vec<String> {
    let mut a: Vec<String> = [
        "image",
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
            "image --scanners vuln,secret --severity UNKNOWN,LOW,MEDIUM,HIGH,CRITICAL --format json --exit-code 10 --image-src docker pp:v1"
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
    fn settings_that_hide_findings_are_named() {
        let v = |k: &str, val: &str| (k.to_string(), val.to_string());
        let vars = vec![
            v("TRIVY_SKIP_DB_UPDATE", "true"),
            v("TRIVY_SKIP_FILES", "usr/bin/x"),
            v("TRIVY_IGNORE_UNFIXED", "false"),
            v("TRIVY_IGNOREFILE", ".trivyignore"),
            v("TRIVY_CACHE_DIR", "/c"),
        ];
        assert_eq!(hiding_env(&vars), vec!["TRIVY_IGNOREFILE", "TRIVY_SKIP_FILES"]);
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
