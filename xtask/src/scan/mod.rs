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

use crate::tools::{self, docker, trivy::Trivy};
use crate::{ctx::Ctx, exit};
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::path::Path;

/// What the gate fails on.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanOpts {
    /// Severities that fail the gate (upper case), default `CRITICAL`.
    pub severity: Vec<String>,
    /// Vulnerabilities without a fixed version do not fail the gate.
    pub ignore_unfixed: bool,
}

impl ScanOpts {
    /// From `--severity LIST` (default `CRITICAL`) and `--ignore-unfixed`.
    pub fn new(severity: Option<&str>, ignore_unfixed: bool) -> Result<ScanOpts> {
        let severity = match severity {
            None => vec!["CRITICAL".to_string()],
            Some(list) => parse_severities(list)?,
        };
        Ok(ScanOpts { severity, ignore_unfixed })
    }
}

impl Default for ScanOpts {
    fn default() -> ScanOpts {
        ScanOpts { severity: vec!["CRITICAL".to_string()], ignore_unfixed: false }
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
    let env = &ctx.env.trivy;
    let hiding = trivy::hiding_env(env);
    if !hiding.is_empty() {
        return Err(exit::usage(format!(
            "{} set: it would hide findings from the gate; unset it (waive findings in {} with a statement and expiry, skip unfixed ones with --ignore-unfixed)",
            hiding.join(", "),
            waivers::FILE
        )));
    }
    let waivers = read_waivers(ctx)?;
    docker::require(ctx)?;
    let runner = tools::trivy::find(ctx, cfg)?;

    let out = ctx.out_dir("scan")?;
    let stem = report::file_stem(image);
    let (json_path, sarif_path) = (out.join(format!("{stem}.json")), out.join(format!("{stem}.sarif")));
    let db_repo = trivy::db_repository(cfg, env.iter().any(|(k, _)| k == "TRIVY_DB_REPOSITORY"));
    let scan_cmd = tools::trivy::command(&runner, &trivy::scan_args(image, db_repo.as_deref()), env, &ctx.root, &[]);
    let sarif_cmd = sarif_command(ctx, &runner, &json_path);
    if ctx.dry_run {
        ctx.run.show(&scan_cmd);
        ctx.run.show(&sarif_cmd);
        return Ok(json!({ "image": image, "dry_run": true, "report": rel(ctx, &json_path), "sarif": rel(ctx, &sarif_path) }));
    }
    docker::require_image(ctx, image)?;
    for p in [&json_path, &sarif_path] {
        let _ = std::fs::remove_file(p); // never leave a stale report next to a failed scan
    }

    // Trivy's report goes straight to its file (Trivy's own bytes); its log is shown.
    let res = ctx.run.stream(&scan_cmd, true, Some(&json_path))?.context("the scan did not run")?;
    let report_bytes = std::fs::read(&json_path).unwrap_or_default();
    let (report_json, findings) = trivy::interpret(res.code, &report_bytes, &res.tail.join("\n")).map_err(|e| {
        let _ = std::fs::remove_file(&json_path);
        exit::env(e)
    })?;
    let conv = ctx.run.read(&sarif_cmd)?;
    let sarif: Option<Value> = serde_json::from_slice(&conv.stdout).ok();
    if !conv.ok() || sarif.as_ref().map(|s| &s["version"]) != Some(&json!("2.1.0")) {
        return Err(exit::env(format!(
            "`trivy convert` to SARIF failed (exit {:?}): {}; run it by hand to see why",
            conv.code,
            trivy::fatal(&conv.stderr)
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
fn sarif_command(ctx: &Ctx, runner: &Trivy, json: &Path) -> crate::runner::Cmd {
    // Every severity, as in the JSON (a TRIVY_SEVERITY setting must not thin the SARIF out).
    let convert: Vec<String> = ["convert", "--format", "sarif", "--severity", &trivy::all_severities()].map(String::from).to_vec();
    let env = &ctx.env.trivy;
    match runner {
        Trivy::Host(_) => tools::trivy::command(runner, &[convert, vec![json.display().to_string()]].concat(), env, &ctx.root, &[]),
        Trivy::Container { .. } => {
            let name = json.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let dir = json.parent().unwrap_or(Path::new("."));
            tools::trivy::command(runner, &[convert, vec![format!("/out/{name}")]].concat(), env, &ctx.root, &[(dir, "/out:ro")])
        }
    }
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
        let o = ScanOpts::new(None, false).unwrap();
        assert_eq!(
            o,
            ScanOpts {
                severity: vec!["CRITICAL".into()],
                ignore_unfixed: false
            }
        );
        let o = ScanOpts::new(Some("high, critical,HIGH"), true).unwrap();
        assert_eq!(o.severity, vec!["HIGH", "CRITICAL"]);
        assert!(o.ignore_unfixed);
        let e = ScanOpts::new(Some("CRITICAL,SEVERE"), false).unwrap_err();
        assert_eq!(exit::code_of(&e), 2);
        assert!(e.to_string().contains("`SEVERE`"), "{e}");
        assert!(ScanOpts::new(Some(""), false).is_err());
    }
}
