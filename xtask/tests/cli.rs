//! The command line as users meet it: help, unknown tasks and flags, bump-version in all
//! its forms and its errors, bump-version auto on a real git history, doctor.
mod support;

use support::bed::{record, Started};
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
    for task in [
        "bump-version",
        "image",
        "smoke",
        "integration",
        "scan",
        "publish",
        "doctor",
    ] {
        assert!(run.stdout.contains(task), "{task} missing from:\n{}", run.stdout);
        let h = r.xtask(&[task, "--help"]);
        assert_eq!(h.code, 0, "{task} --help: {h:?}");
        assert!(h.stdout.contains("Usage: cargo xtask"), "{task}: {}", h.stdout);
    }
    let h = r.xtask(&["publish", "--help"]).stdout;
    for flag in [
        "--dry-run",
        "--registry",
        "--allow-public",
        "--rebuild",
        "--local",
        "--tools-mirror",
        "--severity",
    ] {
        assert!(h.contains(flag), "publish --help lacks {flag}:\n{h}");
    }
}

#[test]
fn unknown_task_and_flag_are_usage_errors() {
    let r = TempRepo::new();
    let run = r.xtask(&["deploy"]);
    assert_eq!(run.code, 2, "{run:?}");
    let line = run.error_line();
    assert!(
        line.contains("unknown task `deploy`") && line.contains("cargo xtask <task>"),
        "{line}"
    );

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
        assert!(
            line.contains("vMAJOR.MINOR.PATCH") || line.contains("cannot read"),
            "{line}"
        );
        assert_eq!(
            std::fs::read(r.path().join("VERSION")).unwrap(),
            *content,
            "VERSION changed"
        );
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
    assert!(
        run.error_line().contains("nothing to release since v1.0.2"),
        "{}",
        run.stderr
    );
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
    assert!(
        run.stderr.contains("patch: policies/test-repo/extra-note.yaml changed"),
        "{}",
        run.stderr
    );

    // Changes not committed yet count, and are named as such.
    r.commit("release v1.0.3");
    r.write("policies/test-repo/extra-note.yaml", "# edited, not committed\n");
    let run = auto(&r);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("extra-note.yaml changed (uncommitted)"),
        "{}",
        run.stderr
    );
    assert_eq!(r.read("VERSION"), "v1.0.4\n");
}

#[test]
fn auto_minor_for_a_new_policy_repo_even_untracked() {
    let r = repo_at("v1.0.2\n");
    r.write("policies/network-policy/deny-all.yaml", "kind: ClusterPolicy\n");
    let run = auto(&r);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("minor: new policy repo `network-policy`"),
        "{}",
        run.stderr
    );
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
    assert!(
        run.stderr.contains("major: policy repo `old-repo` removed or renamed"),
        "{}",
        run.stderr
    );
    assert_eq!(r.read("VERSION"), "v2.0.0\n");
    r.commit("release v2.0.0");

    r.write("Dockerfile", "ARG KYVERNO_VERSION=1.20.0\nFROM scratch\n");
    r.commit("upgrade kyverno");
    let run = auto(&r);
    assert!(
        run.stderr.contains("major: tool pin kyverno 1.19.0 -> 1.20.0"),
        "{}",
        run.stderr
    );
    assert_eq!(r.read("VERSION"), "v3.0.0\n");
    r.commit("release v3.0.0");

    r.write(
        "Dockerfile",
        "ARG KYVERNO_VERSION=1.20.0\nARG TRIVY_VERSION=0.59.1\nFROM scratch\n",
    );
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

/// Runs the xtask binary with `args` (any bytes) in `dir`, without `XTASK_ROOT`.
fn xtask_in(
    dir: &std::path::Path,
    args: &[&std::ffi::OsStr],
    f: impl FnOnce(&mut std::process::Command),
) -> support::Run {
    let mut c = std::process::Command::new(support::xtask_bin());
    c.args(args)
        .current_dir(dir)
        .env_remove("XTASK_ROOT")
        .env_remove("CARGO_MANIFEST_DIR");
    f(&mut c);
    support::Run::from(c.output().unwrap())
}

fn os(args: &[&str]) -> Vec<std::ffi::OsString> {
    args.iter().map(std::ffi::OsString::from).collect()
}

fn refs(v: &[std::ffi::OsString]) -> Vec<&std::ffi::OsStr> {
    v.iter().map(|a| a.as_os_str()).collect()
}

/// Puts a file back as it was when dropped (a test that fails midway included).
struct Restore(std::path::PathBuf, Vec<u8>);

impl Restore {
    fn new(p: std::path::PathBuf) -> Restore {
        let b = std::fs::read(&p).unwrap();
        Restore(p, b)
    }
    fn changed(&self) -> bool {
        std::fs::read(&self.0).unwrap() != self.1
    }
}

impl Drop for Restore {
    fn drop(&mut self) {
        if self.changed() {
            std::fs::write(&self.0, &self.1).unwrap();
        }
    }
}

/// Two checkouts and one xtask binary built from a third (what a shared target dir or a
/// git worktree gives): the task works on the checkout you stand in, found from the
/// `CARGO_MANIFEST_DIR` that `cargo run` sets, else by walking up from the current folder.
#[test]
fn the_checkout_is_where_you_stand_not_where_the_binary_was_built() {
    // The binary's own checkout must stay as it is (and is put back if a bug rewrote it).
    let own = Restore::new(support::repo_root().join("VERSION"));
    let (a, b) = (repo_at("v1.0.2\n"), repo_at("v1.0.2\n"));
    let bump = os(&["bump-version", "minor"]);

    let run = xtask_in(b.path(), &refs(&bump), |c| {
        c.env("CARGO_MANIFEST_DIR", b.path().join("xtask"));
    });
    assert!(
        !own.changed(),
        "bump-version rewrote the VERSION of the binary's own checkout {}",
        own.0.display()
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(b.read("VERSION"), "v1.1.0\n", "{run:?}");
    assert_eq!(a.read("VERSION"), "v1.0.2\n");

    // Neither variable: from a folder deep inside B.
    let deep = b.path().join("policies/test-repo");
    let run = xtask_in(&deep, &refs(&bump), |_| {});
    assert!(
        !own.changed(),
        "bump-version rewrote the VERSION of the binary's own checkout {}",
        own.0.display()
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(b.read("VERSION"), "v1.2.0\n", "{run:?}");
    assert_eq!(a.read("VERSION"), "v1.0.2\n");

    // Outside any checkout: exit 2 saying so, nothing written anywhere.
    let outside = support::TempDir::new("outside");
    let run = xtask_in(outside.path(), &refs(&bump), |_| {});
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.error_line().contains("not inside a policy-platform checkout"),
        "{run:?}"
    );
    assert!(!own.changed());
}

/// A registry string that is not `HOST[:PORT][/PATH]` is refused at the edge (exit 2, one
/// line naming it) before any command runs, even with credentials set; a valid one reaches
/// `docker login` as the last argument after `--`, the user before it.
#[test]
fn hostile_registry_strings_are_refused_before_any_command_runs() {
    let r = TempRepo::new();
    let fake = support::fakebin::FakeBin::new();
    fake.recorder(
        "docker",
        r#"case "$1" in
  version) echo 28.0.0 ;;
  ps) ;;
  login) cat >/dev/null; echo "Error response from daemon: login attempt failed with status: 401 Unauthorized" >&2; exit 1 ;;
  *) echo "fake docker: $1 is not faked" >&2; exit 1 ;;
esac"#,
    );
    let path = fake.path_before(&std::env::var_os("PATH").unwrap());
    let secret = format!("pw{}-never-in-argv", std::process::id());
    let long_host = format!("{}io", "a.".repeat(150));
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--registry=-u.x".into()], "-u.x"),
        (vec!["--registry".into(), "-u.x".into()], "-u.x"),
        (vec!["--registry".into(), "ghcr.io;rm".into()], "ghcr.io;rm"),
        (vec!["--registry".into(), "gh\"cr.io".into()], "gh\"cr.io"),
        (vec!["--registry".into(), "ghcr.io:notaport".into()], "ghcr.io:notaport"),
        (vec!["--registry".into(), "-u".into()], "-u"),
        (vec!["--registry".into(), "--x.io".into()], "--x.io"),
        (vec!["--registry=--password=x.io".into()], "--password=x.io"),
        (vec!["--registry".into(), "ghcr.io/Org".into()], "ghcr.io/Org"),
        (vec!["--registry".into(), "..".into()], ".."),
        (vec!["--registry".into(), "ghcr.io/../x".into()], "ghcr.io/../x"),
        (vec!["--registry".into(), long_host.clone()], long_host.as_str()),
        (vec!["--registry".into(), "ghcr.io/$(id)".into()], "ghcr.io/$(id)"),
        (vec!["--registry".into(), "ghcr.io:0".into()], "ghcr.io:0"),
        (vec!["--registry".into(), "ghcr.io:65536".into()], "ghcr.io:65536"),
        (vec!["--registry".into(), "ghcr.io/org:v1".into()], "ghcr.io/org:v1"),
        (
            vec!["--registry".into(), "https://ghcr.io/org".into()],
            "https://ghcr.io/org",
        ),
        (vec!["--registry".into(), "g\u{4bb}cr.io".into()], "g\u{4bb}cr.io"),
        (vec!["--registry".into(), "[::1".into()], "[::1"),
        (
            vec![
                "--registry".into(),
                "ghcr.io/org".into(),
                "--registry".into(),
                "-u".into(),
            ],
            "-u",
        ),
    ];
    for (args, shown) in &cases {
        let mut argv = vec!["publish".to_string()];
        argv.extend(args.iter().cloned());
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let run = r.xtask_cmd(&argv, |c| {
            c.env("PATH", &path)
                .env("REGISTRY_USERNAME", "ci-user")
                .env("REGISTRY_PASSWORD", &secret);
        });
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(
            run.error_line().contains(&format!("`{shown}`")),
            "{args:?} not named: {run:?}"
        );
        assert!(
            !run.stderr.lines().any(|l| l.contains("$ ")),
            "{args:?}: a command ran: {run:?}"
        );
        assert!(
            fake.calls("docker").is_empty(),
            "{args:?}: docker ran: {:?}",
            fake.calls("docker")
        );
    }
    assert!(
        !r.path().join("target/xtask/release.json").exists(),
        "a refused command line wrote a record"
    );

    // A valid registry with a path: the host alone, after `--`; the password on stdin only.
    let run = r.xtask_cmd(&["publish", "--registry", "127.0.0.1:5999/team"], |c| {
        c.env("PATH", &path)
            .env("REGISTRY_USERNAME", "ci-user")
            .env("REGISTRY_PASSWORD", &secret);
    });
    assert_ne!(run.code, 0, "{run:?}");
    let calls = fake.calls("docker");
    let login = calls
        .iter()
        .find(|l| l.starts_with("login"))
        .unwrap_or_else(|| panic!("no docker login: {calls:?}\n{run:?}"));
    let (flags, host) = login
        .split_once(" -- ")
        .unwrap_or_else(|| panic!("no `--` in `docker {login}`"));
    assert_eq!(host, "127.0.0.1:5999", "docker {login}");
    assert!(
        flags.contains("-u ci-user") && flags.contains("--password-stdin"),
        "docker {login}"
    );
    assert!(
        calls.iter().all(|l| !l.contains(&secret)),
        "the password was in docker's argv: {calls:?}"
    );
    assert!(run.error_line().contains("login to 127.0.0.1:5999"), "{run:?}");
    assert!(!run.all().contains(&secret));
}

/// Numbers at u64::MAX cannot be bumped, and beyond it VERSION is malformed: exit 2 with
/// one error line and VERSION untouched, never a panic (exit 101).
#[test]
fn versions_at_the_limit_of_u64_exit_2_not_a_panic() {
    let max = u64::MAX;
    let over = "18446744073709551616";
    let cases = [
        (format!("v{max}.0.0\n"), "major"),
        (format!("v1.{max}.0\n"), "minor"),
        (format!("v1.0.{max}\n"), "patch"),
        (format!("v1.0.{max}\n"), "rc"),
        (format!("v1.0.{max}\n"), "alpha"),
        (format!("v1.0.0-rc.{max}\n"), "rc"),
        (format!("v1.0.0-beta.{max}\n"), "beta"),
        (format!("v1.0.0-alpha.{max}\n"), "alpha"),
        (format!("v{max}.{max}.{max}\n"), "patch"),
        (format!("v{over}.0.0\n"), "patch"),
        (format!("v1.0.0-rc.{over}\n"), "release"),
        ("v1.0.0\n".to_string(), over),
        ("v1.0.0\n".to_string(), "99999999999999999999.0.0"),
    ];
    for (version, how) in &cases {
        let r = repo_at(version);
        let run = r.xtask(&["bump-version", how]);
        assert_eq!(run.code, 2, "{version:?} {how}: {run:?}");
        let line = run.error_line();
        assert!(line.contains("VERSION") || line.contains(how), "{line}");
        assert_eq!(r.read("VERSION"), *version, "VERSION changed");
    }
}

/// A non-UTF-8 argument as the task, a flag, a flag's value or a positional: exit 2 with
/// one error line, never a panic.
#[test]
fn non_utf8_arguments_exit_2_not_a_panic() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let r = repo_at("v1.0.2\n");
    let bad = OsStr::from_bytes(b"v\xff1");
    let cases: Vec<Vec<&OsStr>> = vec![
        vec![bad],
        vec![OsStr::new("bump-version"), bad],
        vec![OsStr::new("smoke"), OsStr::new("--image"), bad],
        vec![OsStr::new("publish"), OsStr::new("--registry"), bad],
        vec![OsStr::new("publish"), OsStr::from_bytes(b"--registry=\xff")],
        vec![OsStr::new("image"), OsStr::from_bytes(b"--\xff")],
        vec![
            OsStr::new("image"),
            OsStr::new("--build-arg"),
            OsStr::from_bytes(b"A=\xff"),
        ],
    ];
    for args in cases {
        let run = xtask_in(r.path(), &args, |c| {
            c.env("XTASK_ROOT", r.path());
        });
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        run.error_line();
        assert_eq!(r.read("VERSION"), "v1.0.2\n");
    }
}

/// `REGISTRY_PASSWORD_FILE` naming what is not a key file (an endless device, a FIFO
/// nobody writes to, 1 MiB of text): exit 2 at once naming it, without reading it all.
/// Run under a 4 GiB address-space limit, so that a reader without a size cap fails fast
/// instead of taking the machine's memory.
#[test]
fn a_password_file_that_is_no_key_file_exits_2_at_once() {
    let r = repo_at("v1.0.2\n");
    let dir = support::TempDir::new("pwfile");
    let fifo = dir.path().join("fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let big = dir.path().join("big.json");
    std::fs::write(&big, vec![b'a'; 1 << 20]).unwrap();
    for (file, says) in [
        (std::path::PathBuf::from("/dev/zero"), "not a regular file"),
        (fifo, "not a regular file"),
        (big, "over 64 KiB"),
    ] {
        let mut c = std::process::Command::new("sh");
        c.args(["-c", "ulimit -v 4194304; exec \"$0\" \"$@\""])
            .arg(support::xtask_bin())
            .args(["publish", "--dry-run", "--registry", "127.0.0.1:1"])
            .current_dir(r.path())
            .env("XTASK_ROOT", r.path())
            .env("REGISTRY_USERNAME", "ci-user")
            .env("REGISTRY_PASSWORD_FILE", &file)
            .env_remove("REGISTRY_PASSWORD");
        let run = Started::spawn(c).finish(std::time::Duration::from_secs(60));
        assert_eq!(run.code, 2, "{}: {run:?}", file.display());
        let line = run.error_line();
        assert!(
            line.contains("REGISTRY_PASSWORD_FILE")
                && line.contains(&file.display().to_string())
                && line.contains(says),
            "{line}"
        );
    }
}

/// A publish refused in preflight leaves `target/xtask/release.json` saying so (status
/// failed, the error), never the previous release's record, and no temp file beside it.
#[test]
fn a_refused_publish_records_the_failure_not_the_last_release() {
    let r = repo_at("v1.0.2\n");
    let old = r#"{"status": "published", "version": "v0.9.0", "commit": "0000000000000000000000000000000000000000"}"#;
    r.write("target/xtask/release.json", old);
    r.write("policies/test-repo/uncommitted.yaml", "kind: ClusterPolicy\n");
    let run = r.xtask_cmd(&["publish", "--registry", "127.0.0.1:1"], |c| {
        c.env("REGISTRY_USERNAME", "ci-user")
            .env_remove("REGISTRY_PASSWORD")
            .env_remove("REGISTRY_PASSWORD_FILE");
    });
    assert_eq!(run.code, 2, "{run:?}");
    let rec = record(&r);
    assert_eq!(rec["status"], "failed", "{rec}");
    assert_eq!(rec["version"], "v1.0.2", "{rec}");
    assert_eq!(rec["commit"], r.head(), "{rec}");
    assert_eq!(rec["exit_code"], 2, "{rec}");
    let error = rec["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("uncommitted.yaml") && error.contains("REGISTRY_PASSWORD"),
        "{rec}"
    );
    assert!(
        run.error_line().contains(error),
        "the record's error is the one printed: {run:?}"
    );
    let names: Vec<String> = std::fs::read_dir(r.path().join("target/xtask"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.contains("tmp")),
        "a temp file was left: {names:?}"
    );
}
