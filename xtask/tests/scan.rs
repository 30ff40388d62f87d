//! `cargo xtask scan` against the real Trivy 0.59.1, real images built by the real Docker
//! engine from the busybox base, and a vulnerability DB written by the tests (offline).
mod support;

use serde_json::Value;
use support::trivy::{self, fake_github_token, Advisory, BinDir, Cache, Image};
use support::{Run, TempRepo};

/// The only `TRIVY_*` variables a scan may hand to Trivy (the xtask's allow list, written
/// out here on its own so a widened list fails these tests).
const ALLOWED_TRIVY_VARS: [&str; 5] = [
    "TRIVY_CACHE_DIR",
    "TRIVY_SKIP_DB_UPDATE",
    "TRIVY_SKIP_JAVA_DB_UPDATE",
    "TRIVY_OFFLINE_SCAN",
    "TRIVY_NO_PROGRESS",
];

const CRITICAL_BUSYBOX: Advisory = Advisory {
    id: "CVE-2099-0001",
    pkg: "busybox",
    fixed: "1.37.0-r20",
    severity: "CRITICAL",
};
const HIGH_ZLIB: Advisory = Advisory {
    id: "CVE-2099-0002",
    pkg: "zlib",
    fixed: "1.3.1-r9",
    severity: "HIGH",
};
const CRITICAL_UNFIXED: Advisory = Advisory {
    id: "CVE-2099-0003",
    pkg: "musl",
    fixed: "",
    severity: "CRITICAL",
};

/// The environment every scan gets: the real Trivy first on PATH, the test's own cache and
/// DB, and Trivy's offline switches, all as `TRIVY_*` variables (so they must reach Trivy).
fn scan(repo: &TempRepo, bin: &BinDir, cache: &Cache, args: &[&str]) -> Run {
    scan_env(repo, bin, cache, args, &[("TRIVY_SKIP_DB_UPDATE", "true")])
}

fn scan_env(repo: &TempRepo, bin: &BinDir, cache: &Cache, args: &[&str], env: &[(&str, &str)]) -> Run {
    scan_in(repo, repo.path(), bin, cache, args, env)
}

/// As `scan_env`, started from the folder `cwd`.
fn scan_in(
    repo: &TempRepo,
    cwd: &std::path::Path,
    bin: &BinDir,
    cache: &Cache,
    args: &[&str],
    env: &[(&str, &str)],
) -> Run {
    let mut all = vec!["scan"];
    all.extend_from_slice(args);
    let r = repo.xtask_cmd(&all, |c| {
        c.current_dir(cwd);
        // Only what the test sets: nothing from the caller's TRIVY_* settings.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("TRIVY_") {
                c.env_remove(k);
            }
        }
        c.env("PATH", bin.path_var())
            .env("TRIVY_CACHE_DIR", cache.path())
            .env("TRIVY_SKIP_JAVA_DB_UPDATE", "true")
            .env("TRIVY_OFFLINE_SCAN", "true")
            .env("TRIVY_NO_PROGRESS", "true");
        for (k, v) in env {
            c.env(k, v);
        }
    });
    eprintln!("{r:?}");
    r
}

/// The full JSON report the scan wrote for `image`.
fn json_report(repo: &TempRepo, image: &Image) -> Value {
    let tag = image.name.rsplit(':').next().unwrap();
    serde_json::from_str(&repo.read(&format!("target/xtask/scan/{tag}.json"))).unwrap()
}

fn ids_in(report: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for r in report["Results"].as_array().into_iter().flatten() {
        for v in r["Vulnerabilities"].as_array().into_iter().flatten() {
            out.push((
                v["VulnerabilityID"].as_str().unwrap().to_string(),
                v["Severity"].as_str().unwrap().to_string(),
            ));
        }
    }
    out
}

/// Docker and the real Trivy, or skip (CI: fail).
fn ready() -> BinDir {
    support::need_docker();
    BinDir::real()
}

#[ignore = "needs Docker"]
#[test]
fn planted_token_fails_naming_rule_and_file() {
    let bin = ready();
    let repo = TempRepo::new();
    let cache = Cache::with(&[]);
    let image = Image::build(
        "v1.0.0",
        &[(
            "workspace/deploy.env",
            format!("REGISTRY=ghcr.io\nGITHUB_TOKEN={}\n", fake_github_token()),
        )],
    );
    let r = scan(&repo, &bin, &cache, &["--image", &image.name]);
    assert_eq!(r.code, 1, "{r:?}");
    let err = r.error_line();
    assert!(err.contains("secret github-pat in /workspace/deploy.env"), "{err}");
    assert!(r.stdout.contains("github-pat in /workspace/deploy.env line 2"), "{r:?}");
    assert!(
        !r.all().contains(&fake_github_token()),
        "the secret itself is never printed"
    );
    // Reports: the full JSON, and SARIF converted from it.
    assert!(
        repo.read("target/xtask/scan/v1.0.0.json")
            .starts_with("{\n  \"SchemaVersion\": 2,"),
        "Trivy's own bytes"
    );
    let report = json_report(&repo, &image);
    assert_eq!(report["ArtifactName"], image.name.as_str());
    let sarif: Value = serde_json::from_str(&repo.read("target/xtask/scan/v1.0.0.sarif")).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    assert!(sarif.to_string().contains("github-pat"));
}

#[ignore = "needs Docker"]
#[test]
fn critical_cve_fails_and_the_fixed_version_passes() {
    let bin = ready();
    let repo = TempRepo::new();
    let cache = Cache::with(&[CRITICAL_BUSYBOX, HIGH_ZLIB]);
    let old = Image::alpine("v1.0.0", &[("busybox", "1.37.0-r18")], &[]);
    let r = scan(&repo, &bin, &cache, &["--image", &old.name]);
    assert_eq!(r.code, 1, "{r:?}");
    let err = r.error_line();
    assert!(err.contains("CVE-2099-0001 in busybox 1.37.0-r18"), "{err}");
    assert!(
        r.stdout
            .contains("CVE-2099-0001 in busybox 1.37.0-r18 (fixed in 1.37.0-r20)"),
        "{r:?}"
    );
    assert_eq!(
        ids_in(&json_report(&repo, &old)),
        vec![("CVE-2099-0001".into(), "CRITICAL".into())]
    );

    let fixed = Image::alpine("v1.0.1", &[("busybox", "1.37.0-r20")], &[]);
    let r = scan(&repo, &bin, &cache, &["--image", &fixed.name]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stderr.contains("detected no OS"), "{r:?}");
    assert!(ids_in(&json_report(&repo, &fixed)).is_empty());
    assert!(r.stdout.contains("scan passed"), "{r:?}");
}

#[ignore = "needs Docker"]
#[test]
fn high_finding_passes_a_critical_gate_but_is_reported() {
    let bin = ready();
    let repo = TempRepo::new();
    let cache = Cache::with(&[CRITICAL_BUSYBOX, HIGH_ZLIB]);
    let image = Image::alpine("v2.0.0", &[("busybox", "1.37.0-r20"), ("zlib", "1.3.1-r2")], &[]);
    let r = scan(&repo, &bin, &cache, &["--image", &image.name]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        ids_in(&json_report(&repo, &image)),
        vec![("CVE-2099-0002".into(), "HIGH".into())]
    );
    let high_row = r.stdout.lines().find(|l| l.starts_with("HIGH")).unwrap();
    assert_eq!(
        high_row.split_whitespace().collect::<Vec<_>>(),
        ["HIGH", "1", "0", "0", "-"],
        "{r:?}"
    );
    // The same finding fails a gate that includes HIGH.
    let r = scan(
        &repo,
        &bin,
        &cache,
        &["--image", &image.name, "--severity", "HIGH,CRITICAL"],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.error_line().contains("CVE-2099-0002 in zlib 1.3.1-r2"));
}

#[ignore = "needs Docker"]
#[test]
fn ignore_unfixed_skips_vulnerabilities_without_a_fix() {
    let bin = ready();
    let repo = TempRepo::new();
    let cache = Cache::with(&[CRITICAL_UNFIXED]);
    let image = Image::alpine("v3.0.0", &[("musl", "1.2.5-r10")], &[]);
    let r = scan(&repo, &bin, &cache, &["--image", &image.name]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.error_line().contains("CVE-2099-0003 in musl 1.2.5-r10"));
    let r = scan(&repo, &bin, &cache, &["--image", &image.name, "--ignore-unfixed"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("no fix yet (--ignore-unfixed) (1)"), "{r:?}");
    assert_eq!(
        ids_in(&json_report(&repo, &image)),
        vec![("CVE-2099-0003".into(), "CRITICAL".into())]
    );
}

#[ignore = "needs Docker"]
#[test]
fn waived_findings_pass_and_are_listed_until_the_waiver_expires() {
    let bin = ready();
    let repo = TempRepo::new();
    let cache = Cache::with(&[CRITICAL_BUSYBOX]);
    let image = Image::alpine(
        "v4.0.0",
        &[("busybox", "1.37.0-r18")],
        &[(
            "workspace/deploy.env",
            format!("GITHUB_TOKEN={}\n", fake_github_token()),
        )],
    );
    let waivers = |until: &str| {
        format!(
            "vulnerabilities:\n  - id: CVE-2099-0001\n    statement: \"busybox wget is never run; security team, ticket SEC-1\"\n    expired_at: {until}\n\
             secrets:\n  - id: github-pat\n    paths: [\"/workspace/*.env\"]\n    statement: a revoked token kept as a fixture\n    expired_at: 2999-12-31\n"
        )
    };
    repo.write(".trivyignore.yaml", &waivers("2999-12-31"));
    let r = scan(&repo, &bin, &cache, &["--image", &image.name]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("waived (2)"), "{r:?}");
    assert!(r.stdout.contains("CVE-2099-0001 in busybox 1.37.0-r18 (fixed in 1.37.0-r20) -- waived by `CVE-2099-0001` (.trivyignore.yaml:2), until 2999-12-31"), "{r:?}");
    assert!(r.stdout.contains("secret github-pat in /workspace/deploy.env"), "{r:?}");
    assert_eq!(
        ids_in(&json_report(&repo, &image)).len(),
        1,
        "waived is not hidden from the report"
    );
    let sarif = repo.read("target/xtask/scan/v4.0.0.sarif");
    assert!(
        sarif.contains("CVE-2099-0001") && sarif.contains("github-pat"),
        "nor from the SARIF: {sarif}"
    );

    // `paths` are Trivy's globs: a secret in an image is at `/workspace/...`, so a pattern
    // without the leading slash matches nothing and the token fails the gate.
    repo.write(
        ".trivyignore.yaml",
        &waivers("2999-12-31").replace("/workspace/*.env", "workspace/*.env"),
    );
    let r = scan(&repo, &bin, &cache, &["--image", &image.name]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.error_line()
            .contains("1 finding(s) at gate severity CRITICAL: secret github-pat in /workspace/deploy.env"),
        "{r:?}"
    );
    assert!(r.stdout.contains("waived (1)"), "{r:?}");

    // Expiring within 14 days: still waived, with a warning.
    let soon = support::trivy::days_from_today(5);
    repo.write(".trivyignore.yaml", &waivers(&soon));
    let r = scan(&repo, &bin, &cache, &["--image", &image.name]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "warning: waiver `CVE-2099-0001` (.trivyignore.yaml:2) expires on {soon} (in 5 days)"
        )),
        "{r:?}"
    );

    // Expired (today counts as expired, as in Trivy): the scan fails and names the waiver.
    let today = support::trivy::days_from_today(0);
    repo.write(".trivyignore.yaml", &waivers(&today));
    let r = scan(&repo, &bin, &cache, &["--image", &image.name]);
    assert_eq!(r.code, 1, "{r:?}");
    let err = r.error_line();
    assert!(
        err.contains(&format!(
            "expired waiver(s): `CVE-2099-0001` (.trivyignore.yaml:2) expired on {today}"
        )),
        "{err}"
    );
    assert!(
        err.contains("CVE-2099-0001 in busybox"),
        "the finding is no longer waived: {err}"
    );
}

#[test]
fn waiver_without_statement_is_an_input_error() {
    // Read before Trivy runs: no Docker or Trivy needed.
    let repo = TempRepo::new();
    repo.write(
        ".trivyignore.yaml",
        "vulnerabilities:\n  - id: CVE-2099-0001\n    expired_at: 2999-01-01\n",
    );
    let r = repo.xtask(&["scan", "--image", "pp-test-none:v0"]);
    assert_eq!(r.code, 2, "{r:?}");
    let err = r.error_line();
    assert!(
        err.contains(".trivyignore.yaml:2: waiver `CVE-2099-0001` has no `statement`"),
        "{err}"
    );
}

#[test]
fn waiver_without_expiry_is_an_input_error() {
    // A waiver that never expires is never looked at again: refused before Trivy runs.
    let repo = TempRepo::new();
    repo.write(
        ".trivyignore.yaml",
        "secrets:\n  - id: github-pat\n    statement: a revoked token kept as a fixture\n",
    );
    let r = repo.xtask(&["scan", "--image", "pp-test-none:v0"]);
    assert_eq!(r.code, 2, "{r:?}");
    let err = r.error_line();
    assert!(
        err.contains(".trivyignore.yaml:2: waiver `github-pat` has no `expired_at`"),
        "{err}"
    );
}

#[test]
fn waiver_file_errors_name_file_and_line() {
    // Rules Trivy does not have (it would accept both silently): read before Trivy runs.
    let repo = TempRepo::new();
    for (text, want) in [
        (
            "vulnerabilities:\n  - id: CVE-2099-0001\n    statement: accepted, SEC-1\n    expired-at: 2999-01-01\n",
            ".trivyignore.yaml:4: unknown key `expired-at`",
        ),
        (
            "secrets:\n  - id: github-pat\n    statement: fixture\n    expired_at: 2999-01-01\n    purls: [\"pkg:apk/alpine/busybox\"]\n",
            ".trivyignore.yaml:5: `purls` only applies to vulnerabilities",
        ),
        ("vulnerabilities:\n  - id: CVE-2099-0001\n    statement: \"open\n", ".trivyignore.yaml:3: not valid YAML"),
    ] {
        repo.write(".trivyignore.yaml", text);
        let r = repo.xtask(&["scan", "--image", "pp-test-none:v0"]);
        assert_eq!(r.code, 2, "{r:?}");
        assert!(r.error_line().contains(want), "{r:?}");
    }
}

#[ignore = "needs Docker"]
#[test]
fn a_waiver_file_trivy_refuses_is_an_input_error() {
    // Valid YAML with every rule of ours kept, but Trivy cannot use it: it says so before the scan.
    let bin = ready();
    let repo = TempRepo::new();
    let cache = Cache::with(&[CRITICAL_BUSYBOX]);
    for (entry, want) in [
        ("paths: [\"/workspace/[abc\"]", "invalid path pattern"),
        ("purls: [\"busybox\"]", "purl"),
    ] {
        repo.write(
            ".trivyignore.yaml",
            &format!("vulnerabilities:\n  - id: CVE-2099-0001\n    statement: accepted, SEC-1\n    expired_at: 2999-01-01\n    {entry}\n"),
        );
        let r = scan(&repo, &bin, &cache, &["--image", "pp-test-scan-none:v0"]);
        assert_eq!(r.code, 2, "{r:?}");
        let err = r.error_line();
        assert!(
            err.contains("Trivy refuses .trivyignore.yaml: ") && err.contains(want),
            "{err}"
        );
        assert!(!err.contains("trivy-in-"), "names the file, not our copy of it: {err}");
        assert!(!r.stderr.contains("image --config"), "no scan ran: {r:?}");
    }
}

#[test]
fn files_trivy_would_read_from_the_repo_root_are_refused() {
    // Trivy never sees them (it runs in an empty folder); refused so nobody thinks they apply.
    let repo = TempRepo::new();
    repo.write(".trivyignore", "CVE-2099-0001\n");
    let r = repo.xtask(&["scan", "--image", "pp-test-none:v0"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.error_line()
            .contains(".trivyignore is not used by the scan; move its entries to .trivyignore.yaml"),
        "{r:?}"
    );
    std::fs::remove_file(repo.path().join(".trivyignore")).unwrap();
    repo.write("trivy-secret.yaml", "disable-rules:\n  - github-pat\n");
    let r = repo.xtask(&["scan", "--image", "pp-test-none:v0"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.error_line().contains("trivy-secret.yaml is not used by the scan"),
        "{r:?}"
    );
}

#[ignore = "needs Docker"]
#[test]
fn a_committed_trivy_yaml_does_not_weaken_the_gate() {
    let bin = ready();
    let repo = TempRepo::new();
    let cache = Cache::with(&[CRITICAL_BUSYBOX]);
    let image = Image::alpine("v4.1.0", &[("busybox", "1.37.0-r18")], &[]);
    // Only language packages: the Alpine package with the CRITICAL would not be looked at.
    let only_libraries = "pkg:\n  types: [library]\nseverity: [LOW]\n";
    repo.write("trivy.yaml", only_libraries);
    repo.commit("a trivy.yaml");
    let r = scan(&repo, &bin, &cache, &["--image", &image.name]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.error_line().contains("CVE-2099-0001 in busybox 1.37.0-r18"), "{r:?}");
    // The same in the folder the xtask is started from.
    std::fs::remove_file(repo.path().join("trivy.yaml")).unwrap();
    repo.write("policies/trivy.yaml", only_libraries);
    let r = scan_in(
        &repo,
        &repo.path().join("policies"),
        &bin,
        &cache,
        &["--image", &image.name],
        &[("TRIVY_SKIP_DB_UPDATE", "true")],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.error_line().contains("CVE-2099-0001 in busybox 1.37.0-r18"), "{r:?}");
    // What such a file does to Trivy run in that folder, for comparison: the finding is gone.
    let direct = std::process::Command::new(trivy::binary())
        .args([
            "image",
            "--scanners",
            "vuln",
            "--format",
            "json",
            "--image-src",
            "docker",
            &image.name,
        ])
        .current_dir(repo.path().join("policies"))
        .env("TRIVY_CACHE_DIR", cache.path())
        .env("TRIVY_SKIP_DB_UPDATE", "true")
        .output()
        .unwrap();
    assert!(direct.status.success(), "{}", String::from_utf8_lossy(&direct.stderr));
    let direct: Value = serde_json::from_slice(&direct.stdout).unwrap();
    assert!(ids_in(&direct).is_empty(), "{direct}");
}

#[ignore = "needs Docker"]
#[test]
fn trivy_variables_off_the_allow_list_are_refused_by_name() {
    let bin = ready();
    let repo = TempRepo::new();
    let cache = Cache::with(&[CRITICAL_BUSYBOX]);
    let image = Image::alpine("v4.2.0", &[("busybox", "1.37.0-r18")], &[]);
    repo.write("target/only-libraries.yaml", "pkg:\n  types: [library]\n");
    let config = repo.path().join("target/only-libraries.yaml");
    for (name, value) in [
        ("TRIVY_CONFIG", config.to_str().unwrap()),
        ("TRIVY_PKG_TYPES", "library"),
        ("TRIVY_PKG_RELATIONSHIPS", "root"),
        ("TRIVY_SKIP_FILES", "/workspace/deploy.env"),
        ("TRIVY_PP_TEST_UNKNOWN", "1"),
    ] {
        let r = scan_env(
            &repo,
            &bin,
            &cache,
            &["--image", &image.name],
            &[("TRIVY_SKIP_DB_UPDATE", "true"), (name, value)],
        );
        assert_eq!(r.code, 2, "{name}: {r:?}");
        let err = r.error_line();
        assert!(
            err.contains(&format!("error: {name} set: the scan passes only TRIVY_CACHE_DIR, ")),
            "{err}"
        );
        assert!(!r.stderr.contains("/trivy "), "refused before Trivy runs: {r:?}");
    }
    // The allowed ones (the test's own) scan as usual.
    let r = scan(&repo, &bin, &cache, &["--image", &image.name]);
    assert_eq!(r.code, 1, "{r:?}");
}

#[ignore = "needs Docker"]
#[test]
fn trivy_runs_in_an_empty_private_folder_without_credentials() {
    let _ = ready();
    let log = support::TempDir::new("trivy-log");
    let bin = BinDir::recording(log.path());
    let repo = TempRepo::new();
    let cache = Cache::with(&[CRITICAL_BUSYBOX]);
    let image = Image::alpine("v4.3.0", &[("busybox", "1.37.0-r18")], &[]);
    let docker_config = support::TempDir::new("docker-config");
    std::fs::write(docker_config.path().join("config.json"), r#"{"auths":{}}"#).unwrap();
    let secrets = [
        ("REGISTRY_USERNAME", "pp-test-user"),
        ("REGISTRY_PASSWORD", "pp-test-registry-password"),
        ("SIGNING_KEY_PASSWORD", "pp-test-signing-password"),
        ("DOCKER_CONFIG", docker_config.path().to_str().unwrap()),
    ];
    let mut env = vec![("TRIVY_SKIP_DB_UPDATE", "true")];
    env.extend(secrets);
    let r = scan_env(&repo, &bin, &cache, &["--image", &image.name], &env);
    assert_eq!(r.code, 1, "the planted CRITICAL fails the gate: {r:?}");
    let runs: Vec<String> = std::fs::read_dir(log.path())
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_str()?.strip_prefix("env-").map(String::from))
        .collect();
    let mut folders = Vec::new();
    for pid in &runs {
        let read = |what: &str| std::fs::read_to_string(log.path().join(format!("{what}-{pid}"))).unwrap();
        let (env, args, cwd) = (read("env"), read("args"), read("cwd"));
        for (name, value) in &secrets {
            assert!(
                !env.contains(&format!("{name}=")) && !env.contains(value),
                "{name} reached Trivy ({args}): {env}"
            );
        }
        for var in env.lines().filter(|l| l.starts_with("TRIVY_")) {
            let name = var.split('=').next().unwrap();
            assert!(ALLOWED_TRIVY_VARS.contains(&name), "{var} ({args})");
        }
        if args != "--version\n" {
            assert!(
                env.contains(&format!("TRIVY_CACHE_DIR={}\n", cache.path().display())),
                "{env}"
            );
        }
        // An empty folder only we can enter: no trivy.yaml, trivy-secret.yaml or .trivyignore.
        let lines: Vec<&str> = cwd.lines().collect();
        assert_eq!(lines[1..], ["700"], "mode 0700 and empty ({args}): {cwd}");
        assert!(!lines[0].starts_with(repo.path().to_str().unwrap()), "{cwd}");
        folders.push(lines[0].to_string());
    }
    assert!(runs.len() >= 4, "version, waiver check, scan, SARIF, gate: {runs:?}");
    folders.dedup();
    assert_eq!(folders.len(), 1, "one folder per scan: {folders:?}");
    assert!(
        !std::path::Path::new(&folders[0]).exists(),
        "removed after the scan: {folders:?}"
    );
}

#[ignore = "needs Docker"]
#[test]
fn broken_db_is_an_environment_error_not_a_finding() {
    let bin = ready();
    let repo = TempRepo::new();
    let cache = Cache::with(&[CRITICAL_BUSYBOX]);
    std::fs::write(
        cache.db_dir().join("trivy.db"),
        b"this is not a bolt database, just text that fills a page ...".repeat(100),
    )
    .unwrap();
    let image = Image::alpine("v5.0.0", &[("busybox", "1.37.0-r18")], &[]);
    let r = scan(&repo, &bin, &cache, &["--image", &image.name]);
    assert_eq!(r.code, 3, "{r:?}");
    let err = r.error_line();
    assert!(err.contains("Trivy failed (exit 1)") && err.contains("DB"), "{err}");
    assert!(err.contains("TRIVY_CACHE_DIR"), "says how to fix it: {err}");
}

#[ignore = "needs Docker"]
#[test]
fn missing_db_with_skip_update_is_an_environment_error() {
    let bin = ready();
    let repo = TempRepo::new();
    let cache = Cache::with(&[]);
    std::fs::remove_dir_all(cache.db_dir()).unwrap();
    let image = Image::build("v5.1.0", &[]);
    let r = scan(&repo, &bin, &cache, &["--image", &image.name]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.error_line().contains("cannot be specified on the first run"), "{r:?}");
}

#[ignore = "needs Docker"]
#[test]
fn configured_db_repository_reaches_trivy() {
    let bin = ready();
    let repo = TempRepo::new();
    // A repository on a loopback port nobody listens on: Trivy must try exactly this one.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let db_repo = format!("127.0.0.1:{port}/pp-test/trivy-db:2");
    set_config(&repo, &format!("trivy-db-repository = [\"{db_repo}\"]"));
    let cache = Cache::with(&[]);
    std::fs::remove_dir_all(cache.db_dir()).unwrap();
    let image = Image::build("v5.2.0", &[]);
    let r = scan_env(&repo, &bin, &cache, &["--image", &image.name], &[]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.stderr.contains(&format!("--db-repository {db_repo}")),
        "the echoed command: {r:?}"
    );
    assert!(r.error_line().contains(&format!("127.0.0.1:{port}")), "{r:?}");
}

#[ignore = "needs Docker"]
#[test]
fn wrong_trivy_version_is_an_environment_error() {
    support::need_docker();
    let repo = TempRepo::new();
    let cache = Cache::with(&[]);
    // A stand-in that only answers the version question, as Trivy 0.58.0 would.
    let bin = BinDir::script("# stand-in for trivy 0.58.0 (version check only)\necho 'Version: 0.58.0'");
    let r = scan(&repo, &bin, &cache, &["--image", "pp-test-none:v0"]);
    assert_eq!(r.code, 3, "{r:?}");
    let err = r.error_line();
    assert!(
        err.contains("found Trivy 0.58.0 at") && err.contains("accepts exactly 0.59.1"),
        "{err}"
    );
}

#[ignore = "needs Docker"]
#[test]
fn pinned_sha256_accepts_the_real_trivy_and_refuses_another_build() {
    let bin = ready();
    let repo = TempRepo::new();
    let cache = Cache::with(&[]);
    let image = Image::build("v8.0.0", &[]);
    set_config(&repo, &format!("trivy-sha256 = \"{}\"", trivy::SHA256));
    let r = scan(&repo, &bin, &cache, &["--image", &image.name]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("warning: Trivy detected no OS"),
        "a plain busybox image: {r:?}"
    );
    // A build that prints the right version but is not the pinned binary.
    let fake = BinDir::script("# stand-in: claims the pinned version\necho 'Version: 0.59.1'");
    let r = scan(&repo, &fake, &cache, &["--image", &image.name]);
    assert_eq!(r.code, 3, "{r:?}");
    let err = r.error_line();
    assert!(
        err.contains(&format!("but config `trivy-sha256` pins {}", trivy::SHA256)),
        "{err}"
    );
}

#[ignore = "needs Docker"]
#[test]
fn no_trivy_and_no_fallback_image_says_how_to_install() {
    support::need_docker();
    let repo = TempRepo::new();
    set_trivy_image(&repo, "pp-test-no-such-trivy");
    let cache = Cache::with(&[]);
    let r = scan(&repo, &BinDir::none(), &cache, &["--image", "pp-test-none:v0"]);
    assert_eq!(r.code, 3, "{r:?}");
    let err = r.error_line();
    assert!(
        err.contains("`trivy` is not on PATH and the fallback image pp-test-no-such-trivy:0.59.1 is not present"),
        "{err}"
    );
    assert!(err.contains(trivy::INSTALL), "{err}");
}

#[ignore = "needs Docker"]
#[test]
fn fallback_runs_the_pinned_trivy_image_with_the_docker_socket() {
    let _ = ready();
    let repo = TempRepo::new();
    let name = format!("{}-trivy-{}", support::PREFIX, std::process::id());
    let trivy_image = TrivyImage::build(&name);
    set_trivy_image(&repo, &name);
    let cache = Cache::with(&[CRITICAL_BUSYBOX]);
    let image = Image::alpine("v6.0.0", &[("busybox", "1.37.0-r18")], &[]);
    let docker_config = support::TempDir::new("docker-config");
    std::fs::write(docker_config.path().join("config.json"), r#"{"auths":{}}"#).unwrap();
    let env = [
        ("TRIVY_SKIP_DB_UPDATE", "true"),
        ("REGISTRY_PASSWORD", "pp-test-registry-password"),
        ("DOCKER_CONFIG", docker_config.path().to_str().unwrap()),
    ];
    let r = scan_env(&repo, &BinDir::none(), &cache, &["--image", &image.name], &env);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("/var/run/docker.sock:/var/run/docker.sock"), "{r:?}");
    // The container's Trivy gets the allowed TRIVY_* variables only, in an empty folder.
    let seen: Vec<&str> = r
        .stderr
        .lines()
        .filter_map(|l| l.strip_prefix("pp-test-env: "))
        .collect();
    assert!(
        seen.contains(&"TRIVY_SKIP_DB_UPDATE=true") && seen.contains(&"TRIVY_CACHE_DIR=/trivy-cache"),
        "{r:?}"
    );
    for var in &seen {
        assert!(
            !var.starts_with("DOCKER_CONFIG=") && !var.contains("pp-test-registry-password"),
            "{var}"
        );
        if var.starts_with("TRIVY_") {
            let name = var.split('=').next().unwrap();
            assert!(ALLOWED_TRIVY_VARS.contains(&name), "{var}");
        }
    }
    assert!(r.stderr.contains("pp-test-cwd: /pp-cwd 0\n"), "{r:?}");
    assert!(r.error_line().contains("CVE-2099-0001 in busybox 1.37.0-r18"), "{r:?}");
    let sarif: Value = serde_json::from_str(&repo.read("target/xtask/scan/v6.0.0.sarif")).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    drop(trivy_image);
}

#[ignore = "needs Docker"]
#[test]
fn missing_image_is_an_environment_error_like_in_smoke_and_integration() {
    let bin = ready();
    let repo = TempRepo::new();
    let cache = Cache::with(&[]);
    let r = scan(&repo, &bin, &cache, &["--image", "pp-test-scan-none:v0"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.error_line()
            .contains("pp-test-scan-none:v0 is not in the local Docker engine"),
        "{r:?}"
    );
}

#[ignore = "needs Docker"]
#[test]
fn dry_run_prints_the_trivy_command_and_scans_nothing() {
    let bin = ready();
    let repo = TempRepo::new();
    let cache = Cache::with(&[]);
    let r = scan(&repo, &bin, &cache, &["--dry-run", "--image", "pp-test-scan-none:v9"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("[dry-run] $ ")
            && r.stderr
                .contains("--exit-code 10 --image-src docker pp-test-scan-none:v9"),
        "{r:?}"
    );
    assert!(
        r.stderr.contains("[dry-run] $ ") && r.stderr.contains("convert --config /dev/null --format sarif"),
        "{r:?}"
    );
    assert!(
        r.stderr.contains("--show-suppressed --exit-code 10"),
        "the waivers' step: {r:?}"
    );
    assert!(!repo.path().join("target/xtask/scan/v9.json").exists());
}

#[ignore = "needs Docker"]
#[test]
fn default_image_is_the_local_version_tag() {
    let bin = ready();
    let repo = TempRepo::new();
    let cache = Cache::with(&[]);
    let version = repo.read("VERSION").trim().to_string();
    let r = scan(&repo, &bin, &cache, &["--dry-run"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr
            .contains(&format!("--image-src docker policy-platform:{version}")),
        "{r:?}"
    );
}

/// The written DB is a valid bbolt file: a bucket larger than a page spills over, and
/// the real Trivy still reads the planted advisory behind it.
#[ignore = "needs Docker"]
#[test]
fn db_fixture_with_overflow_pages_is_read_by_trivy() {
    let bin = ready();
    let many: Vec<String> = (0..300).map(|i| format!("CVE-2098-{i:04}")).collect();
    let mut advisories: Vec<Advisory> = many
        .iter()
        .map(|id| Advisory {
            id,
            pkg: "zlib",
            fixed: "1.0.0-r0",
            severity: "LOW",
        })
        .collect();
    advisories.push(CRITICAL_BUSYBOX);
    let cache = Cache::with(&advisories);
    let size = std::fs::metadata(cache.db_dir().join("trivy.db")).unwrap().len();
    assert!(size > 8 * 4096, "the vulnerability bucket overflows: {size}");
    let repo = TempRepo::new();
    let image = Image::alpine("v7.0.0", &[("busybox", "1.37.0-r18"), ("zlib", "1.3.1-r2")], &[]);
    let r = scan(&repo, &bin, &cache, &["--image", &image.name]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(
        ids_in(&json_report(&repo, &image)),
        vec![("CVE-2099-0001".into(), "CRITICAL".into())]
    );
}

fn set_trivy_image(repo: &TempRepo, name: &str) {
    set_config(repo, &format!("trivy-image = \"{name}\""));
}

/// Adds one `key = value` line to the repo's `[workspace.metadata.policy-platform]`.
fn set_config(repo: &TempRepo, line: &str) {
    let manifest = repo.read("Cargo.toml").replace(
        "[workspace.metadata.policy-platform]\n",
        &format!("[workspace.metadata.policy-platform]\n{line}\n"),
    );
    repo.write("Cargo.toml", &manifest);
}

/// `<name>:0.59.1`: the real Trivy binary in an image (entrypoint `trivy`), like the
/// `aquasec/trivy` image the scan falls back to. Removed on drop.
struct TrivyImage(String);

impl TrivyImage {
    fn build(name: &str) -> TrivyImage {
        let tag = format!("{name}:{}", trivy::VERSION);
        let ctx = support::TempDir::new("trivy-image");
        std::fs::copy(trivy::binary(), ctx.path().join("trivy")).unwrap();
        // The entrypoint shows (on stderr) the environment and working folder Trivy gets.
        std::fs::write(
            ctx.path().join("entry"),
            "#!/bin/sh\nenv | sed 's/^/pp-test-env: /' >&2\necho \"pp-test-cwd: $(pwd) $(ls -A | wc -l)\" >&2\nexec /usr/local/bin/trivy \"$@\"\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(ctx.path().join("entry"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(
            ctx.path().join("Dockerfile"),
            "ARG BASE\nFROM ${BASE}\nCOPY trivy /usr/local/bin/trivy\nCOPY entry /usr/local/bin/entry\nENTRYPOINT [\"/usr/local/bin/entry\"]\n",
        )
        .unwrap();
        let base = format!("BASE={}", support::busybox_base());
        let r = support::docker(&[
            "build",
            "-q",
            "--build-arg",
            &base,
            "-t",
            &tag,
            ctx.path().to_str().unwrap(),
        ]);
        assert_eq!(r.code, 0, "{r:?}");
        TrivyImage(tag)
    }
}

impl Drop for TrivyImage {
    fn drop(&mut self) {
        let _ = support::docker(&["rmi", "-f", &self.0]);
    }
}
