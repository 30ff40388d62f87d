//! `scan`: the Trivy gate on the image. Needs docker and the pinned Trivy (on PATH, or its
//! image `aquasec/trivy:<trivy-version>` present locally as the fallback).
//!
//! One Trivy run reports every severity of vulnerabilities and secrets as JSON, with a
//! distinct exit code for findings (never Trivy's exit 1, which also means "Trivy crashed").
//! That full report goes to `target/xtask/scan/<tag>.json`, a SARIF copy (converted from it)
//! next to it. Then Trivy applies the waivers of `.trivyignore.yaml` to it (`trivy convert
//! --ignorefile`), and the gate reads what is left and what was waived. Trivy runs in an
//! empty private folder with `--config /dev/null` and only the allowed `TRIVY_*` variables,
//! so nothing in the repo or the environment changes what it scans or reports.

mod gate;
mod report;
pub mod sbom;
mod trivy;
mod waivers;

use crate::files::TempDir;
use crate::runner::Cmd;
use crate::tools::{self, docker};
use crate::{ctx::Ctx, exit};
use anyhow::{Context, Result};
use report::Finding;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

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
        Ok(ScanOpts {
            severity,
            ignore_unfixed,
        })
    }
}

impl Default for ScanOpts {
    fn default() -> ScanOpts {
        ScanOpts {
            severity: vec!["CRITICAL".to_string()],
            ignore_unfixed: false,
        }
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
    scan_as(ctx, image, image, opts)
}

/// [`scan`] of `image` (publish gives the built image's id, so that no other build's tag can
/// slip in between) under the name `shown` (messages and report file names).
pub fn scan_as(ctx: &Ctx, image: &str, shown: &str, opts: &ScanOpts) -> Result<Value> {
    ctx.step(&format!("scan {shown}"));
    let r = scan_inner(ctx, image, shown, opts);
    ctx.end_step();
    r
}

fn scan_inner(ctx: &Ctx, image: &str, shown: &str, opts: &ScanOpts) -> Result<Value> {
    let cfg = ctx.config()?;
    let refused = trivy::refused_env(&ctx.env.trivy);
    if !refused.is_empty() {
        return Err(exit::usage(format!(
            "{} set: the scan passes only {} to Trivy, as anything else could change what it scans or reports; unset it (waive findings in {} with a statement and expiry, skip unfixed ones with --ignore-unfixed)",
            refused.join(", "),
            trivy::ALLOWED_ENV.join(", "),
            waivers::FILE
        )));
    }
    let env = trivy::passed_env(&ctx.env.trivy);
    let file = read_waivers(ctx)?;
    docker::require(ctx)?;
    let work = Work::new(ctx, &file.text)?;
    let runner = tools::trivy::find(ctx, cfg, work.cwd.path())?;

    let out = ctx.out_dir("scan")?;
    let stem = report::file_stem(shown);
    let (json_path, sarif_path) = (out.join(format!("{stem}.json")), out.join(format!("{stem}.sarif")));
    // Each command mounts only what it reads (a dry run has no report folder yet).
    let (to_out, to_in) = ([(out.as_path(), "/pp-out")], [(work.inputs.path(), "/pp-in")]);
    let both = [to_out[0], to_in[0]];
    let see = |p: &Path, m: &[(&Path, &str)]| tools::trivy::path(&runner, p, m);
    let cmd = |args: Vec<String>, m: &[(&Path, &str)]| tools::trivy::command(&runner, &args, &env, work.cwd.path(), m);
    let ignorefile = see(&work.ignorefile, &both);
    let db_repo = trivy::db_repository(cfg, env.iter().any(|(k, _)| k == "TRIVY_DB_REPOSITORY"));
    let scan_cmd = cmd(trivy::scan_args(image, db_repo.as_deref()), &[]);
    let sarif_cmd = cmd(trivy::sarif_args(&see(&json_path, &to_out)), &to_out);
    let gate_cmd = cmd(trivy::gate_args(&ignorefile, &see(&json_path, &both)), &both);
    if file.present {
        let check = trivy::validate_args(&ignorefile, &see(&work.empty_report, &to_in));
        validate(ctx, &cmd(check, &to_in), &ignorefile)?;
    }
    if ctx.dry_run() {
        ctx.run.show(&scan_cmd);
        ctx.run.show(&sarif_cmd);
        ctx.run.show(&gate_cmd);
        return Ok(
            json!({ "image": shown, "dry_run": true, "report": rel(ctx, &json_path), "sarif": rel(ctx, &sarif_path) }),
        );
    }
    docker::require_image(ctx, image)?;
    for p in [&json_path, &sarif_path] {
        let _ = std::fs::remove_file(p); // never leave a stale report next to a failed scan
    }

    // Trivy's report goes straight to its file (Trivy's own bytes); its log is shown.
    let res = ctx
        .run
        .stream(&scan_cmd, true, Some(&json_path))?
        .context("the scan did not run")?;
    let report_bytes = std::fs::read(&json_path).unwrap_or_default();
    let (report_json, raw) = trivy::interpret(res.code, &report_bytes, &res.tail.join("\n")).map_err(|e| {
        let _ = std::fs::remove_file(&json_path);
        exit::env(e)
    })?;
    write_sarif(ctx, &sarif_cmd, &sarif_path)?;
    let today = crate::date::day_of(crate::date::now());
    let (live, waived) = apply_waivers(ctx, &gate_cmd, &raw, &file.waivers, &ignorefile, today)?;

    let os = report::os(&report_json);
    if os.is_none() {
        eprintln!("warning: Trivy detected no OS in {shown}; only language packages and secrets were checked");
    }
    let verdict = gate::decide(live, waived, opts, &file.waivers, today);
    println!("{}", gate::table(&verdict, opts));
    for w in gate::warnings(&verdict, today) {
        eprintln!("{w}");
    }
    println!("reports: {} {}", rel(ctx, &json_path), rel(ctx, &sarif_path));
    if !verdict.passed() {
        return Err(exit::gate(format!(
            "scan of {shown}: {}",
            gate::failure(&verdict, opts)
        )));
    }
    let mut summary = gate::summary(&verdict, opts);
    summary["image"] = json!(shown);
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

/// The SARIF copy of the raw report, converted by Trivy (waived findings stay in it; the
/// xtask writes the file, so a container never writes into the work tree).
fn write_sarif(ctx: &Ctx, convert: &Cmd, to: &Path) -> Result<()> {
    let conv = ctx.run.read(convert)?;
    let sarif: Option<Value> = serde_json::from_slice(&conv.stdout).ok();
    if !conv.ok() || sarif.as_ref().map(|s| &s["version"]) != Some(&json!("2.1.0")) {
        return Err(exit::env(format!(
            "`trivy convert` to SARIF failed (exit {:?}): {}; run it by hand to see why",
            conv.code,
            trivy::fatal(&conv.stderr)
        )));
    }
    std::fs::write(to, &conv.stdout).with_context(|| format!("cannot write {}", to.display()))
}

/// Trivy applies the waivers to the raw report (`gate`); the gate takes what it left (live)
/// and what it took out (waived, with our entry). Anything that does not add up is exit 3.
fn apply_waivers(
    ctx: &Ctx,
    gate: &Cmd,
    raw: &[Finding],
    waivers: &[waivers::Waiver],
    ignorefile: &str,
    today: waivers::Date,
) -> Result<(Vec<Finding>, trivy::Waived)> {
    let out = ctx.run.read(gate)?;
    let fail = |e: String| exit::env(format!("applying {} with `trivy convert`: {e}", waivers::FILE));
    let (report, live) = trivy::interpret(out.code, &out.stdout, &out.stderr).map_err(fail)?;
    let suppressed = report::suppressed(&report).map_err(fail)?;
    let waived = trivy::waived(raw, &live, suppressed, waivers, ignorefile, today).map_err(fail)?;
    Ok((live, waived))
}

/// Where Trivy runs: an empty private folder as its working folder (so no `trivy.yaml`,
/// `trivy-secret.yaml` or `.trivyignore` of the repo, or of wherever the xtask was started,
/// applies), and a second one with its inputs: the waiver file as the gate read it (Trivy
/// matches the bytes that were checked) and an empty report to validate it against. Both
/// are removed when the scan ends.
struct Work {
    cwd: TempDir,
    inputs: TempDir,
    ignorefile: PathBuf,
    empty_report: PathBuf,
}

impl Work {
    fn new(ctx: &Ctx, waivers: &str) -> Result<Work> {
        // Named like every temp folder of a run (`pp-xtask-<pid>-…`), so a killed run's are
        // found; under a clean absolute path: Trivy reports the ignore file by its cleaned name.
        let tmp = &ctx.env.tmp;
        let parent =
            std::fs::canonicalize(tmp).with_context(|| format!("cannot use the temp folder {}", tmp.display()))?;
        let cwd = crate::cleanup::temp_dir_in(&parent, "trivy-cwd")?;
        let inputs = crate::cleanup::temp_dir_in(&parent, "trivy-in")?;
        let ignorefile = inputs.write_private(waivers::FILE, waivers.as_bytes())?;
        let empty_report = inputs.write_private("empty-report.json", trivy::EMPTY_REPORT.as_bytes())?;
        Ok(Work {
            cwd,
            inputs,
            ignorefile,
            empty_report,
        })
    }
}

/// Trivy's own check of the waiver file (quoted dates, globs, purls, types), before the
/// scan: a file it refuses is an input error naming the file; anything else, exit 3.
fn validate(ctx: &Ctx, check: &Cmd, ignorefile: &str) -> Result<()> {
    let out = ctx.run.read(check)?;
    if out.ok() {
        return Ok(());
    }
    let msg = trivy::fatal(&out.stderr);
    if msg.contains(ignorefile) {
        return Err(exit::usage(format!(
            "Trivy refuses {}: {}",
            waivers::FILE,
            msg.replace(ignorefile, waivers::FILE)
        )));
    }
    Err(exit::env(format!(
        "Trivy failed (exit {:?}) while checking {}: {msg}",
        out.code,
        waivers::FILE
    )))
}

/// The waiver file at the repo root as read (empty if there is none), and its waivers.
struct WaiverFile {
    present: bool,
    text: String,
    waivers: Vec<waivers::Waiver>,
}

/// The waivers at the repo root; a malformed file is exit 2.
fn read_waivers(ctx: &Ctx) -> Result<WaiverFile> {
    // Trivy never sees these (it runs in an empty folder), so they would do nothing: say so.
    if ctx.path(".trivyignore").exists() {
        return Err(exit::usage(format!(
            ".trivyignore is not used by the scan; move its entries to {} with a statement and expired_at",
            waivers::FILE
        )));
    }
    if ctx.path("trivy-secret.yaml").exists() {
        return Err(exit::usage(format!(
            "trivy-secret.yaml is not used by the scan (Trivy's built-in secret rules apply); remove it and waive findings in {}",
            waivers::FILE
        )));
    }
    let path = ctx.path(waivers::FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(WaiverFile {
                present: false,
                text: String::new(),
                waivers: vec![],
            })
        }
        Err(e) => return Err(exit::usage(format!("cannot read {} ({e})", path.display()))),
    };
    let waivers = waivers::parse(&text).map_err(|e| exit::usage(format!("{e}")))?;
    Ok(WaiverFile {
        present: true,
        text,
        waivers,
    })
}

fn rel(ctx: &Ctx, p: &Path) -> String {
    p.strip_prefix(&ctx.root).unwrap_or(p).display().to_string()
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
