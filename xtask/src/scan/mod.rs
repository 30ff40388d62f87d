//! `scan`: the Trivy gate on the image. Needs docker and the pinned Trivy (on PATH, or its
//! image `aquasec/trivy:<trivy-version>` present locally as the fallback).
//!
//! One Trivy run reports every severity of vulnerabilities and secrets as JSON, with a
//! distinct exit code for findings; the gate then reads the JSON (never Trivy's exit 1, which
//! also means "Trivy crashed"). The full report goes to `target/xtask/scan/<tag>.json`, a
//! SARIF copy (converted from that JSON) next to it. Waivers: `.trivyignore.yaml`.

mod gate;
mod report;
mod trivy;
mod waivers;

use crate::cli::{self, Args, Spec};
use crate::{ctx::Ctx, exit, release, tools};
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::path::Path;

pub const SPEC: Spec = Spec {
    name: "scan",
    about: "Trivy gate on the image: vulnerabilities and secrets, with expiring waivers\n\
            Exit 1: a finding at gate severity or an expired waiver; 3: Trivy missing, wrong version, crashed or without its DB.\n\
            TRIVY_* variables reach Trivy (cache dir, DB repository, offline flags like TRIVY_SKIP_DB_UPDATE=true).",
    positional: None,
    flags: &[
        cli::IMAGE,
        cli::SEVERITY,
        cli::switch("--ignore-unfixed", "Do not gate on vulnerabilities that have no fixed version (they stay in the report)"),
        cli::DRY_RUN,
    ],
};

/// What the gate fails on.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanOpts {
    /// Severities that fail the gate (upper case), default `CRITICAL`.
    pub severity: Vec<String>,
    /// Vulnerabilities without a fixed version do not fail the gate.
    pub ignore_unfixed: bool,
}

impl ScanOpts {
    /// From `--severity LIST` and `--ignore-unfixed` (either may be absent from a task's spec).
    pub fn from_args(args: &Args) -> Result<ScanOpts> {
        let severity = match args.value("--severity") {
            None => vec!["CRITICAL".to_string()],
            Some(list) => parse_severities(list)?,
        };
        Ok(ScanOpts {
            severity,
            ignore_unfixed: args.has("--ignore-unfixed"),
        })
    }
}

fn parse_severities(list: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for s in list.split(',').map(|s| s.trim().to_ascii_uppercase()) {
        if !report::SEVERITIES.contains(&s.as_str()) {
            return Err(exit::usage(format!(
                "--severity: unknown severity `{s}`; use a comma-separated list of {}",
                report::SEVERITIES.join(",")
            )));
        }
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out)
}

pub fn run(ctx: &Ctx, args: &Args) -> Result<()> {
    let opts = ScanOpts::from_args(args)?;
    let image = release::image_arg(ctx, args)?;
    scan(ctx, &image, &opts)?;
    Ok(())
}

/// Scans `image` (a local image) and gates on it. `Ok` is the summary for the release record
/// (counts by severity, gate findings, waived findings, report paths); a gate failure is an
/// `Err` with exit 1, a broken scanner exit 3.
pub fn scan(ctx: &Ctx, image: &str, opts: &ScanOpts) -> Result<Value> {
    ctx.step(&format!("scan {image}"));
    let r = scan_inner(ctx, image, opts);
    ctx.end_step();
    r
}

fn scan_inner(ctx: &Ctx, image: &str, opts: &ScanOpts) -> Result<Value> {
    let cfg = ctx.config()?;
    let env: Vec<(String, String)> = std::env::vars().filter(|(k, _)| k.starts_with("TRIVY_")).collect();
    let hiding = trivy::hiding_env(&env);
    if !hiding.is_empty() {
        return Err(exit::usage(format!(
            "{} set: it would hide findings from the gate; unset it (waive findings in {} with a statement and expiry, skip unfixed ones with --ignore-unfixed)",
            hiding.join(", "),
            waivers::FILE
        )));
    }
    let waivers = read_waivers(ctx)?;
    tools::require_docker(ctx, &["docker"])?;
    let runner = trivy::find(ctx, cfg)?;

    let out = ctx.out_dir("scan")?;
    let stem = report::file_stem(image);
    let (json_path, sarif_path) = (out.join(format!("{stem}.json")), out.join(format!("{stem}.sarif")));
    let db_repo = trivy::db_repository(cfg, env.iter().any(|(k, _)| k == "TRIVY_DB_REPOSITORY"));
    let scan_cmd = trivy::command(ctx, &runner, &trivy::scan_args(image, db_repo.as_deref()), &[]);
    let sarif_cmd = sarif_command(ctx, &runner, &json_path);
    if ctx.dry_run {
        ctx.echo(&scan_cmd);
        ctx.echo(&sarif_cmd);
        return Ok(
            json!({ "image": image, "dry_run": true, "report": rel(ctx, &json_path), "sarif": rel(ctx, &sarif_path) }),
        );
    }
    // An image that is not there is the user's input, not a scanner problem.
    let inspect = ctx.probe_output(
        ctx.sh
            .cmd("docker")
            .args(["image", "inspect", "--format", "{{.Id}}", image]),
    )?;
    if !inspect.status.success() {
        return Err(exit::usage(format!(
            "image {image} is not in the local Docker engine; build it with `cargo xtask image` or pass --image REF of a local image"
        )));
    }
    for p in [&json_path, &sarif_path] {
        let _ = std::fs::remove_file(p); // never leave a stale report next to a failed scan
    }

    let res = run_streaming_log(ctx, scan_cmd)?;
    let log = String::from_utf8_lossy(&res.stderr);
    let (report_json, findings) = trivy::interpret(res.status.code(), &res.stdout, &log).map_err(exit::env)?;
    // Trivy's own bytes: the full report, exactly as Trivy wrote it.
    std::fs::write(&json_path, &res.stdout).with_context(|| format!("cannot write {}", json_path.display()))?;
    let conv = ctx.probe_output(sarif_cmd)?;
    let sarif: Option<Value> = serde_json::from_slice(&conv.stdout).ok();
    if !conv.status.success() || sarif.as_ref().map(|s| &s["version"]) != Some(&json!("2.1.0")) {
        let log = String::from_utf8_lossy(&conv.stderr);
        return Err(exit::env(format!(
            "`trivy convert` to SARIF failed (exit {:?}): {}; run it by hand to see why",
            conv.status.code(),
            trivy::fatal(&log)
        )));
    }
    std::fs::write(&sarif_path, &conv.stdout).with_context(|| format!("cannot write {}", sarif_path.display()))?;

    let os = report::os(&report_json);
    if os.is_none() {
        eprintln!("warning: Trivy detected no OS in {image}; only language packages and secrets were checked");
    }
    let today = waivers::Date::from_days(now_days());
    let verdict = gate::decide(findings, opts, &waivers, today);
    println!("{}", gate::table(&verdict, opts));
    for w in gate::warnings(&verdict, today) {
        eprintln!("{w}");
    }
    println!("reports: {} {}", rel(ctx, &json_path), rel(ctx, &sarif_path));
    if !verdict.passed() {
        return Err(exit::gate(format!(
            "scan of {image}: {}",
            gate::failure(&verdict, opts)
        )));
    }
    let mut summary = gate::summary(&verdict, opts);
    summary["image"] = json!(image);
    summary["trivy"] = json!(cfg.trivy_version);
    summary["os"] = json!(os);
    summary["report"] = json!(rel(ctx, &json_path));
    summary["sarif"] = json!(rel(ctx, &sarif_path));
    println!(
        "scan passed: no finding at {} (gate), {} waived",
        opts.severity.join(","),
        verdict.waived.len()
    );
    Ok(summary)
}

/// `trivy convert` of the JSON report to SARIF on stdout (no second scan; the xtask writes
/// the file, so a container never writes into the work tree).
fn sarif_command<'a>(ctx: &'a Ctx, runner: &trivy::Runner, json: &Path) -> xshell::Cmd<'a> {
    // Every severity, as in the JSON (a TRIVY_SEVERITY setting must not thin the SARIF out).
    let convert = ["convert", "--format", "sarif", "--severity", &trivy::all_severities()]
        .map(String::from)
        .to_vec();
    match runner {
        trivy::Runner::Host(_) => {
            trivy::command(ctx, runner, &[convert, vec![json.display().to_string()]].concat(), &[])
        }
        trivy::Runner::Container { .. } => {
            let inside = format!("/out/{}", json.file_name().unwrap().to_string_lossy());
            trivy::command(
                ctx,
                runner,
                &[convert, vec![inside]].concat(),
                &[(json.parent().unwrap(), "/out:ro")],
            )
        }
    }
}

/// Runs a read-only command, showing its stderr (Trivy's log, e.g. a DB download) as it
/// comes while keeping it for the error message; stdout (the report) is captured.
fn run_streaming_log(ctx: &Ctx, cmd: xshell::Cmd<'_>) -> Result<std::process::Output> {
    use std::io::{BufRead, Read};
    use std::process::Stdio;
    ctx.echo(&cmd);
    let mut c: std::process::Command = cmd.into();
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let err = child.stderr.take().unwrap();
    let logger = std::thread::spawn(move || {
        let mut kept = Vec::new();
        for line in std::io::BufReader::new(err).split(b'\n').map_while(|l| l.ok()) {
            eprintln!("{}", String::from_utf8_lossy(&line));
            kept.extend_from_slice(&line);
            kept.push(b'\n');
        }
        kept
    });
    let mut stdout = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut stdout)?;
    let status = child.wait()?;
    let stderr = logger.join().unwrap_or_default();
    Ok(std::process::Output { status, stdout, stderr })
}

/// The waivers at the repo root (none if the file is missing); a malformed file is exit 2.
fn read_waivers(ctx: &Ctx) -> Result<Vec<waivers::Waiver>> {
    // Trivy reads these from its working folder (the repo root) and would drop findings silently.
    if ctx.path(".trivyignore").exists() {
        return Err(exit::usage(format!(
            ".trivyignore would make Trivy drop findings silently; move its entries to {} with a statement and expired_at",
            waivers::FILE
        )));
    }
    if ctx.path("trivy-secret.yaml").exists() {
        return Err(exit::usage(format!(
            "trivy-secret.yaml can disable Trivy's secret rules for the gate; remove it and waive findings in {}",
            waivers::FILE
        )));
    }
    let path = ctx.path(waivers::FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(exit::usage(format!("cannot read {} ({e})", path.display()))),
    };
    waivers::parse(&text).map_err(|e| exit::usage(format!("{e}")))
}

fn rel(ctx: &Ctx, p: &Path) -> String {
    p.strip_prefix(&ctx.root).unwrap_or(p).display().to_string()
}

/// Today (UTC) as days since 1970-01-01: the only clock the scan reads.
fn now_days() -> i64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    (secs / 86_400) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_default_to_critical_and_are_checked() {
        let o = ScanOpts::from_args(&Args::default()).unwrap();
        assert_eq!(
            o,
            ScanOpts {
                severity: vec!["CRITICAL".into()],
                ignore_unfixed: false
            }
        );
        let o = ScanOpts::from_args(
            &Args::default()
                .with("--severity", "high, critical,HIGH")
                .with("--ignore-unfixed", ""),
        )
        .unwrap();
        assert_eq!(o.severity, vec!["HIGH", "CRITICAL"]);
        assert!(o.ignore_unfixed);
        let e = ScanOpts::from_args(&Args::default().with("--severity", "CRITICAL,SEVERE")).unwrap_err();
        assert_eq!(exit::code_of(&e), 2);
        assert!(e.to_string().contains("`SEVERE`"), "{e}");
        assert!(ScanOpts::from_args(&Args::default().with("--severity", "")).is_err());
    }
}
