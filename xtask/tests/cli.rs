//! The command line as users meet it: help, unknown tasks and flags, bump-version in all
//! its forms and its errors, bump-version auto on a real git history, doctor.
mod support;

use support::TempRepo;

fn repo_at(version: &str) -> TempRepo {
    let r = TempRepo::new();
    r.write("VERSION", version);
    r.write("policies/test-repo/policy.yaml", "kind: ClusterPolicy\n");
    r.commit("set version");
    r
}

#[test]
fn help_lists_every_task_and_exits_zero() {
    let r = TempRepo::new();
    let run = r.xtask(&["--help"]);
    assert_eq!(run.code, 0, "{run:?}");
    for task in ["bump-version", "image", "smoke", "integration", "scan", "publish", "doctor"] {
        assert!(run.stdout.contains(task), "{task} missing from:\n{}", run.stdout);
        let h = r.xtask(&[task, "--help"]);
        assert_eq!(h.code, 0, "{task} --help: {h:?}");
        assert!(h.stdout.contains("Usage: cargo xtask"), "{task}: {}", h.stdout);
    }
    let h = r.xtask(&["publish", "--help"]).stdout;
    for flag in ["--dry-run", "--registry", "--allow-public", "--rebuild", "--local", "--tools-mirror", "--severity"] {
        assert!(h.contains(flag), "publish --help lacks {flag}:\n{h}");
    }
}

#[test]
fn unknown_task_and_flag_are_usage_errors() {
    let r = TempRepo::new();
    let run = r.xtask(&["deploy"]);
    assert_eq!(run.code, 2, "{run:?}");
    let line = run.error_line();
    assert!(line.contains("unknown task `deploy`") && line.contains("cargo xtask <task>"), "{line}");

    let run = r.xtask(&["image", "--colour"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.error_line().contains("unknown flag `--colour`"));

    let run = r.xtask(&[]);
    assert_eq!(run.code, 2, "{run:?}");
    run.error_line();
}

#[test]
fn bump_levels_rewrite_version() {
    for (from, how, to) in [
        ("v1.0.2\n", "patch", "v1.0.3"),
        ("v1.0.2\n", "minor", "v1.1.0"),
        ("v1.0.2\n", "major", "v2.0.0"),
        ("v1.0.2\n", "rc", "v1.0.3-rc.1"),
        ("v1.0.3-rc.1\n", "rc", "v1.0.3-rc.2"),
        ("v1.0.2\n", "alpha", "v1.0.3-alpha.1"),
        ("v1.0.3-alpha.2\n", "beta", "v1.0.3-beta.1"),
        ("v1.0.3-rc.2\n", "release", "v1.0.3"),
        ("v1.0.2\n", "1.4.0", "v1.4.0"),
        ("v1.0.2\n", "v2.0.0", "v2.0.0"),
    ] {
        let r = repo_at(from);
        let run = r.xtask(&["bump-version", how]);
        assert_eq!(run.code, 0, "{from} {how}: {run:?}");
        assert_eq!(r.read("VERSION"), format!("{to}\n"));
        assert_eq!(run.stdout.trim(), format!("{} -> {to}", from.trim()));
        // The write is atomic: no temp file is left beside VERSION.
        let leftovers: Vec<_> = std::fs::read_dir(r.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains("VERSION.tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }
}

#[test]
fn bump_refusals_leave_version_untouched() {
    for (from, how, says) in [
        ("v1.0.3-beta.1\n", "alpha", "never goes back"),
        ("v1.0.3-rc.1\n", "beta", "never goes back"),
        ("v1.0.2\n", "1.0.1", "never go backwards"),
        ("v1.0.2\n", "v1.0.2", "never go backwards"),
        ("v1.0.2\n", "release", "not a pre-release"),
        ("v1.0.2\n", "1.0", "not a bump level or version"),
        ("v1.0.2\n", "sideways", "not a bump level or version"),
    ] {
        let r = repo_at(from);
        let run = r.xtask(&["bump-version", how]);
        assert_eq!(run.code, 2, "{from} {how}: {run:?}");
        assert!(run.error_line().contains(says), "{from} {how}: {}", run.stderr);
        assert_eq!(r.read("VERSION"), from, "VERSION changed by a refused bump");
    }
    let r = repo_at("v1.0.2\n");
    let run = r.xtask(&["bump-version"]);
    assert_eq!(run.code, 2, "{run:?}");
    let run = r.xtask(&["bump-version", "patch", "minor"]);
    assert_eq!(run.code, 2, "{run:?}");
}

#[test]
fn malformed_version_files_exit_2_and_stay_byte_for_byte() {
    let cases: &[&[u8]] = &[
        b"",
        b"\n",
        b"1.0.2\n",
        b"v1.0\n",
        b"v1.0.2.3\n",
        b"vX\n",
        b"v01.0.2\n",
        b"v1.0.2+build.5\n",
        b"v1.0.2 trailing\n",
        b"v1.0.2\nv1.0.3\n",
        b" v1.0.2\n",
        b"v1.0.2-pre\n",
        b"v1.0.2\r\n",
        b"\xff\xfe",
    ];
    for content in cases {
        let r = TempRepo::new();
        std::fs::write(r.path().join("VERSION"), content).unwrap();
        let run = r.xtask(&["bump-version", "patch"]);
        assert_eq!(run.code, 2, "{:?}: {run:?}", String::from_utf8_lossy(content));
        let line = run.error_line();
        assert!(line.contains("VERSION"), "{line}");
        assert!(line.contains("vMAJOR.MINOR.PATCH") || line.contains("cannot read"), "{line}");
        assert_eq!(std::fs::read(r.path().join("VERSION")).unwrap(), *content, "VERSION changed");
    }
}

#[test]
fn missing_version_file_is_named() {
    let r = TempRepo::new();
    std::fs::remove_file(r.path().join("VERSION")).unwrap();
    let run = r.xtask(&["bump-version", "patch"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.error_line().contains("VERSION"));
    assert!(!r.path().join("VERSION").exists());
}

#[test]
fn dry_run_prints_and_writes_nothing() {
    let r = repo_at("v1.0.2\n");
    let run = r.xtask(&["bump-version", "minor", "--dry-run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("v1.0.2 -> v1.1.0"), "{run:?}");
    assert_eq!(r.read("VERSION"), "v1.0.2\n");
}

fn auto(r: &TempRepo) -> support::Run {
    r.xtask(&["bump-version", "auto"])
}

#[test]
fn auto_refuses_when_nothing_changed_and_ignores_tooling() {
    let r = repo_at("v1.0.2\n");
    let run = auto(&r);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.error_line().contains("nothing to release since v1.0.2"), "{}", run.stderr);
    r.write("README.md", "docs only\n");
    r.write("xtask/src/extra.rs", "// tooling only\n");
    r.commit("tooling");
    assert_eq!(auto(&r).code, 2);
    assert_eq!(r.read("VERSION"), "v1.0.2\n");
}

#[test]
fn auto_patch_for_a_policy_edit_and_names_uncommitted_files() {
    let r = repo_at("v1.0.2\n");
    r.write("policies/test-repo/extra-note.yaml", "# a policy tweak\n");
    r.commit("tweak");
    let run = auto(&r);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(r.read("VERSION"), "v1.0.3\n");
    assert!(run.stderr.contains("patch: policies/test-repo/extra-note.yaml changed"), "{}", run.stderr);

    // Changes not committed yet count, and are named as such.
    r.commit("release v1.0.3");
    r.write("policies/test-repo/extra-note.yaml", "# edited, not committed\n");
    let run = auto(&r);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("extra-note.yaml changed (uncommitted)"), "{}", run.stderr);
    assert_eq!(r.read("VERSION"), "v1.0.4\n");
}

#[test]
fn auto_minor_for_a_new_policy_repo_even_untracked() {
    let r = repo_at("v1.0.2\n");
    r.write("policies/network-policy/deny-all.yaml", "kind: ClusterPolicy\n");
    let run = auto(&r);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("minor: new policy repo `network-policy`"), "{}", run.stderr);
    assert!(run.stderr.contains("(untracked)"), "{}", run.stderr);
    assert_eq!(r.read("VERSION"), "v1.1.0\n");
}

#[test]
fn auto_major_for_a_removed_repo_or_a_changed_tool_pin() {
    let r = repo_at("v1.0.2\n");
    r.write("policies/old-repo/p.yaml", "kind: ClusterPolicy\n");
    r.write("Dockerfile", "ARG KYVERNO_VERSION=1.19.0\nFROM scratch\n");
    r.write("VERSION", "v1.1.0\n");
    r.commit("release v1.1.0");

    r.git(&["rm", "-rq", "policies/old-repo"]);
    r.commit("drop repo");
    let run = auto(&r);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("major: policy repo `old-repo` removed or renamed"), "{}", run.stderr);
    assert_eq!(r.read("VERSION"), "v2.0.0\n");
    r.commit("release v2.0.0");

    r.write("Dockerfile", "ARG KYVERNO_VERSION=1.20.0\nFROM scratch\n");
    r.commit("upgrade kyverno");
    let run = auto(&r);
    assert!(run.stderr.contains("major: tool pin kyverno 1.19.0 -> 1.20.0"), "{}", run.stderr);
    assert_eq!(r.read("VERSION"), "v3.0.0\n");
    r.commit("release v3.0.0");

    r.write("Dockerfile", "ARG KYVERNO_VERSION=1.20.0\nARG TRIVY_VERSION=0.59.1\nFROM scratch\n");
    r.commit("add trivy");
    let run = auto(&r);
    assert!(run.stderr.contains("minor: new tool `trivy`"), "{}", run.stderr);
    assert_eq!(r.read("VERSION"), "v3.1.0\n");
}

#[test]
fn bad_config_is_named() {
    let r = TempRepo::new();
    let manifest = r.read("Cargo.toml").replace("sha-length = 7", "sha-length = \"seven\"");
    r.write("Cargo.toml", &manifest);
    let run = r.xtask(&["smoke", "--dry-run"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.error_line().contains("`sha-length`"), "{}", run.stderr);
}

#[test]
fn doctor_reports_every_missing_tool_at_once() {
    let r = TempRepo::new();
    let empty = support::TempDir::new("emptypath");
    let run = r.xtask_cmd(&["doctor"], |c| {
        c.env("PATH", empty.path());
    });
    assert_eq!(run.code, 3, "{run:?}");
    let line = run.error_line();
    for tool in ["docker", "git", "trivy"] {
        assert!(line.contains(&format!("`{tool}` missing")), "{line}");
    }
    assert!(run.stdout.contains("missing"), "{}", run.stdout);
}
