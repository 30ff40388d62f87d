//! Finding the pinned Trivy (on PATH, else its container image), the commands the scan runs,
//! and what Trivy's exit code and output mean. Building and interpreting are pure.

use super::report::{self, Finding};
use crate::config::Config;
use crate::{ctx::Ctx, exit, tools};
use anyhow::Result;
use serde_json::Value;
use std::path::{Path, PathBuf};
use xshell::Cmd;

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

/// Where Trivy comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Runner {
    /// `trivy` found on PATH.
    Host(PathBuf),
    /// The fallback: the pinned Trivy image, run with the Docker socket mounted.
    Container {
        image: String,
        socket: PathBuf,
        cache: PathBuf,
    },
}

/// The pinned Trivy, or exit 3 that says what was found and how to get the right one.
pub fn find(ctx: &Ctx, cfg: &Config) -> Result<Runner> {
    let want = &cfg.trivy_version;
    if let Some(bin) = tools::find("trivy") {
        let out = ctx.probe_output(ctx.sh.cmd(&bin).arg("--version"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let found = version_of(&text);
        if !out.status.success() || found.is_none() {
            let why = String::from_utf8_lossy(&out.stderr);
            return Err(exit::env(format!(
                "`{} --version` failed ({}); reinstall Trivy {want}: {}",
                bin.display(),
                why.trim().lines().last().unwrap_or("no version printed"),
                tools::how_to_get("trivy")
            )));
        }
        let found = found.unwrap();
        if found != *want {
            return Err(exit::env(format!(
                "found Trivy {found} at {}, but the scan accepts exactly {want} (config `trivy-version`); install Trivy {want}: {}",
                bin.display(),
                tools::how_to_get("trivy")
            )));
        }
        if !cfg.trivy_sha256.is_empty() {
            check_sha256(ctx, &bin, &cfg.trivy_sha256)?;
        }
        return Ok(Runner::Host(bin));
    }
    let image = format!("{}:{want}", cfg.trivy_image);
    let present = ctx.probe_output(
        ctx.sh
            .cmd("docker")
            .args(["image", "inspect", "--format", "{{.Id}}", &image]),
    )?;
    if !present.status.success() {
        return Err(exit::env(format!(
            "`trivy` is not on PATH and the fallback image {image} is not present locally; install Trivy {want}: {}; or `docker load` the image {image}",
            tools::how_to_get("trivy")
        )));
    }
    let out = ctx.probe_output(ctx.sh.cmd("docker").args(["run", "--rm", &image, "--version"]))?;
    let found = version_of(&String::from_utf8_lossy(&out.stdout));
    if found.as_deref() != Some(want.as_str()) {
        return Err(exit::env(format!(
            "the fallback image {image} runs Trivy {}, but the scan accepts exactly {want}; load the right image or install Trivy {want}",
            found.unwrap_or_else(|| "of unknown version".into())
        )));
    }
    let socket = docker_socket(std::env::var("DOCKER_HOST").ok().as_deref()).ok_or_else(|| {
        exit::env("the Trivy container needs the local Docker socket, but DOCKER_HOST is not a unix:// socket; install Trivy on this host")
    })?;
    Ok(Runner::Container {
        image,
        socket,
        cache: host_cache_dir(),
    })
}

/// The binary is the one pinned in config `trivy-sha256` (a version string proves nothing
/// about a tampered build).
fn check_sha256(ctx: &Ctx, bin: &Path, want: &str) -> Result<()> {
    tools::require(&["sha256sum"])?;
    let real = std::fs::canonicalize(bin).unwrap_or_else(|_| bin.to_path_buf());
    let out = ctx.probe(ctx.sh.cmd("sha256sum").arg(&real))?;
    let found = out.split_whitespace().next().unwrap_or_default();
    if found != want {
        return Err(exit::env(format!(
            "{} has sha256 {found}, but config `trivy-sha256` pins {want}; reinstall Trivy from a trusted source: {}",
            real.display(),
            tools::how_to_get("trivy")
        )));
    }
    Ok(())
}

/// `Version: 0.59.1` (the first such line of `trivy --version`).
pub fn version_of(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Version:"))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The Docker socket to mount into the fallback container.
pub fn docker_socket(docker_host: Option<&str>) -> Option<PathBuf> {
    match docker_host {
        None | Some("") => Some(PathBuf::from("/var/run/docker.sock")),
        Some(h) => h.strip_prefix("unix://").map(PathBuf::from),
    }
}

/// Trivy's cache on the host: `TRIVY_CACHE_DIR`, else `$XDG_CACHE_HOME/trivy`, else `~/.cache/trivy`.
fn host_cache_dir() -> PathBuf {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    var("TRIVY_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("trivy")))
        .or_else(|| var("HOME").map(|d| d.join(".cache/trivy")))
        .unwrap_or_else(|| PathBuf::from("/root/.cache/trivy"))
}

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

/// The command for `args`, on the host or in the fallback container.
pub fn command<'a>(ctx: &'a Ctx, runner: &Runner, args: &[String], mounts: &[(&Path, &str)]) -> Cmd<'a> {
    match runner {
        Runner::Host(bin) => ctx.sh.cmd(bin).args(args),
        Runner::Container { image, socket, cache } => {
            let mut c = ctx.sh.cmd("docker").args(["run", "--rm"]);
            c = c.arg("-v").arg(format!("{}:/var/run/docker.sock", socket.display()));
            c = c.arg("-v").arg(format!("{}:/trivy-cache", cache.display()));
            for (host, inside) in mounts {
                c = c.arg("-v").arg(format!("{}:{inside}", host.display()));
            }
            // Names only: Docker copies the values from this environment (nothing in argv).
            for name in trivy_env_names() {
                c = c.arg("-e").arg(name);
            }
            c.args(["-e", "TRIVY_CACHE_DIR=/trivy-cache"]).arg(image).args(args)
        }
    }
}

fn trivy_env_names() -> Vec<String> {
    let mut v: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| k.starts_with("TRIVY_") && k != "TRIVY_CACHE_DIR")
        .collect();
    v.sort();
    v
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
    fn version_line() {
        assert_eq!(
            version_of("Version: 0.59.1\nVulnerability DB:\n  Version: 2\n").as_deref(),
            Some("0.59.1")
        );
        assert_eq!(version_of("trivy 0.59.1"), None);
    }

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

    #[test]
    fn socket_from_docker_host() {
        assert_eq!(docker_socket(None), Some(PathBuf::from("/var/run/docker.sock")));
        assert_eq!(
            docker_socket(Some("unix:///run/user/1000/docker.sock")),
            Some(PathBuf::from("/run/user/1000/docker.sock"))
        );
        assert_eq!(docker_socket(Some("tcp://10.0.0.1:2376")), None);
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
