//! `publish` against real registries (Debian's docker-registry with htpasswd auth on
//! 127.0.0.1), the real Docker engine building the repo's real Dockerfile (stand-in tools
//! from a loopback server), and the real Trivy. What was pushed is read from the
//! registry's HTTP API with curl, never through the xtask.
mod support;

use support::bed::{built, canary, ok, with_password, Bed};
use support::image::{as_strs, base_args};
use support::registry::{push_image, ArgvWatch, Registry};
use support::trivy::BinDir;
use support::{docker, TempDir};

/// The release path end to end, sharing one build cache: two registries, three tags at
/// one digest, the record, no secret anywhere; a rerun pushes nothing; the same version
/// from another commit is refused before building; a newer release moves latest; a
/// backport and a pre-release leave it alone; rollback moves it back.
#[ignore = "needs Docker"]
#[test]
fn release_two_registries_then_refusals_backport_prerelease_and_rollback() {
    let bed = Bed::new("pub");
    let (r1, r2) = (Registry::start(canary()), Registry::start(canary()));
    let img = bed.image.as_str();

    let watch = ArgvWatch::start(canary());
    let run = bed.publish(&[&r1, &r2], &[], Some(canary()));
    let (argv_hits, scans) = watch.finish();
    ok(&run);
    assert!(argv_hits.is_empty(), "the password was in argv: {argv_hits:?}");
    assert!(scans > 10, "the argv watch barely ran ({scans} scans)");
    assert!(!run.all().contains(canary()), "the password is in the output");
    bed.assert_no_canary_in_files();

    let sha = format!("sha-{}", &bed.head()[..7]);
    let mut want = vec!["latest".to_string(), sha.clone(), "v1.0.0".to_string()];
    want.sort();
    for r in [&r1, &r2] {
        assert_eq!(r.tags(img), want, "tags in {}", r.addr());
        let d = r.digest(img, "v1.0.0").unwrap();
        assert!(d.starts_with("sha256:"));
        for t in &want {
            assert_eq!(r.digest(img, t).as_deref(), Some(d.as_str()), "{t} in {}", r.addr());
        }
        assert!(
            run.stdout.contains(&format!("{}/{img}@{d}", r.addr())),
            "deploy reference printed: {run:?}"
        );
    }
    let v100 = r1.digest(img, "v1.0.0").unwrap();
    let rec = bed.record();
    assert_eq!(rec["version"], "v1.0.0");
    assert_eq!(rec["commit"], bed.head());
    assert_eq!(rec["registries"].as_array().unwrap().len(), 2);
    assert_eq!(rec["registries"][0]["digest"], v100.as_str());
    assert!(rec["tools"]["kyverno"].is_string(), "{rec}");
    assert!(!rec["scan"].is_null(), "{rec}");
    assert_eq!(
        r1.config_digest(img, "v1.0.0"),
        Some(rec["image_id"].as_str().unwrap().to_string()),
        "the registry holds the image that was built and tested"
    );

    // Rerun (as a CI job would): everything is there already, nothing is pushed, and the
    // summary for the CI's page names both registries and the digest.
    let puts = r1.manifest_puts() + r2.manifest_puts();
    let page = TempDir::new("step-summary");
    let summary = page.path().join("summary.md");
    let again = bed.publish_with(&[&r1, &r2], &[], |c| {
        c.env("REGISTRY_USERNAME", support::registry::USER)
            .env("REGISTRY_PASSWORD", canary())
            .env("CI", "true")
            .env("GITHUB_STEP_SUMMARY", &summary);
    });
    ok(&again);
    assert_eq!(
        r1.manifest_puts() + r2.manifest_puts(),
        puts,
        "a rerun pushed again: {again:?}"
    );
    let md = std::fs::read_to_string(&summary).unwrap();
    for r in [&r1, &r2] {
        assert!(md.contains(&format!("| `{}/{img}` | `{v100}` |", r.addr())), "{md}");
    }
    assert!(!md.contains(canary()));

    // A dirty tree: exit 2 naming the file, before any build.
    bed.repo.write("policies/notes.txt", "uncommitted\n");
    let dirty = bed.publish(&[&r1], &[], Some(canary()));
    assert_eq!(dirty.code, 2, "{dirty:?}");
    assert!(dirty.error_line().contains("policies/notes.txt"), "{dirty:?}");
    assert!(!built(&dirty), "{dirty:?}");

    // The same version from another commit: exit 2 before any build, nothing moved.
    bed.repo.commit("a change without a version bump");
    let same = bed.publish(&[&r1], &[], Some(canary()));
    assert_eq!(same.code, 2, "{same:?}");
    let line = same.error_line();
    assert!(
        line.contains("v1.0.0 is already published") && line.contains("bump-version"),
        "{line}"
    );
    assert!(!built(&same), "built before refusing: {same:?}");
    assert_eq!(r1.digest(img, "v1.0.0").as_deref(), Some(v100.as_str()));

    // v1.1.0 moves latest.
    bed.set_version("v1.1.0");
    ok(&bed.publish(&[&r1], &[], Some(canary())));
    let v110 = r1.digest(img, "v1.1.0").unwrap();
    assert_ne!(v110, v100);
    assert_eq!(r1.digest(img, "latest"), Some(v110.clone()));

    // A backport (v1.0.1 after v1.1.0) and a pre-release leave latest alone.
    bed.set_version("v1.0.1");
    let back = bed.publish(&[&r1], &[], Some(canary()));
    ok(&back);
    assert!(r1.digest(img, "v1.0.1").is_some());
    assert_eq!(
        r1.digest(img, "latest"),
        Some(v110.clone()),
        "a backport moved latest: {back:?}"
    );
    assert!(back.stderr.contains("lower than v1.1.0"), "{back:?}");
    bed.set_version("v1.2.0-rc.1");
    let rc = bed.publish(&[&r1], &[], Some(canary()));
    ok(&rc);
    assert!(r1.digest(img, "v1.2.0-rc.1").is_some());
    assert_eq!(
        r1.digest(img, "latest"),
        Some(v110.clone()),
        "a pre-release moved latest: {rc:?}"
    );

    // Rollback: latest back to v1.0.0's digest, without building.
    let rb = bed.publish(&[&r1], &["--rollback", "v1.0.0"], Some(canary()));
    ok(&rb);
    assert!(!built(&rb));
    assert_eq!(r1.digest(img, "latest"), Some(v100.clone()));
    assert_eq!(r1.digest(img, "v1.1.0"), Some(v110), "rollback touched a version tag");
    assert_eq!(bed.record()["mode"], "rollback");
    assert!(!rb.all().contains(canary()));
    bed.assert_no_canary_in_files();
}

/// Wrong password: exit 3 naming the registry, nothing built, nothing pushed.
#[ignore = "needs Docker"]
#[test]
fn wrong_password_is_refused_before_anything_is_pushed() {
    let bed = Bed::new("pw");
    let reg = Registry::start(canary());
    let run = bed.publish(&[&reg], &[], Some("not-the-password"));
    assert_eq!(run.code, 3, "{run:?}");
    let line = run.error_line();
    assert!(
        line.contains(&reg.addr()) && line.contains("REGISTRY_PASSWORD"),
        "{line}"
    );
    assert!(!built(&run), "{run:?}");
    assert!(reg.catalog().is_empty(), "something was pushed");
}

/// Every preflight problem in one run: Docker Hub without --allow-public (any spelling),
/// no credentials, a dirty tree, a malformed VERSION, no Trivy; exit 2, nothing built.
#[ignore = "needs Docker"]
#[test]
fn preflight_reports_every_problem_at_once() {
    let bed = Bed::new("pre");
    bed.repo.write("VERSION", "1.0\n");
    let mut args: Vec<String> = Vec::new();
    for hub in [
        "docker.io/team",
        "index.docker.io/team",
        "registry-1.docker.io/x",
        "registry.hub.docker.com/x",
        "someone",
    ] {
        args.push("--registry".into());
        args.push(hub.into());
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let no_trivy = BinDir::none();
    // A user name without a password: half-given credentials are a problem too.
    let run = bed.publish_with(&[], &argv, |c| {
        c.env("PATH", no_trivy.path_var()).env("REGISTRY_USERNAME", "ci-user");
    });
    assert_eq!(run.code, 2, "{run:?}");
    let line = run.error_line();
    for hub in [
        "`docker.io/team`",
        "`index.docker.io/team`",
        "`registry-1.docker.io/x`",
        "`registry.hub.docker.com/x`",
        "`someone`",
    ] {
        assert!(line.contains(hub), "{hub} not named: {line}");
    }
    assert!(line.contains("--allow-public"), "{line}");
    assert!(
        line.contains("no registry password") && line.contains("REGISTRY_PASSWORD_FILE"),
        "{line}"
    );
    assert!(line.contains("uncommitted") && line.contains("VERSION"), "{line}");
    assert!(!built(&run));
    // With VERSION fixed, a missing Trivy is named too (the scan's own checks run first).
    bed.repo.write("VERSION", "v1.0.0\n");
    let run = bed.publish_with(&[], &argv, |c| {
        c.env("PATH", no_trivy.path_var());
    });
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.error_line().contains("trivy"), "{run:?}");
    assert!(!built(&run));

    // No registry at all: exit 2 with the fix.
    let none = bed.publish(&[], &[], Some(canary()));
    assert_eq!(none.code, 2, "{none:?}");
    assert!(none.error_line().contains("--registry HOST[/PATH]"), "{none:?}");
}

/// The registry stops right after the first tag is pushed: exit 3 naming the tag and the
/// registry after retries; once it is back, the same command completes at the same digest.
#[ignore = "needs Docker"]
#[test]
fn a_registry_that_stops_mid_publish_then_a_rerun_completes() {
    let bed = Bed::new("stop");
    let reg = Registry::start(canary());
    let img = bed.image.as_str();
    reg.stop_after_pushes(1);
    let run = bed.publish(&[&reg], &[], Some(canary()));
    assert_eq!(run.code, 3, "{run:?}");
    let line = run.error_line();
    let sha = format!("sha-{}", &bed.head()[..7]);
    assert!(
        line.contains(&sha) && line.contains(&reg.addr()) && line.contains("rerun"),
        "{line}"
    );
    assert!(run.stderr.contains("retry 3 of 3"), "{run:?}");
    reg.restart();
    assert_eq!(
        reg.tags(img),
        vec!["v1.0.0".to_string()],
        "only the first tag got through"
    );
    let first = reg.digest(img, "v1.0.0").unwrap();
    // The rerun is on a fresh runner: the image built above is not in the engine.
    let id = reg.config_digest(img, "v1.0.0").unwrap();
    assert_eq!(docker(&["rmi", "-f", &id]).code, 0);
    assert_ne!(docker(&["image", "inspect", &format!("{img}:v1.0.0")]).code, 0);

    // The rerun reads the password from a key file (REGISTRY_PASSWORD_FILE) instead.
    let key = TempDir::new("key");
    std::fs::write(key.path().join("key.json"), format!("{}\n", canary())).unwrap();
    let again = bed.publish_with(&[&reg], &[], |c| {
        c.env("REGISTRY_USERNAME", support::registry::USER)
            .env_remove("REGISTRY_PASSWORD")
            .env("REGISTRY_PASSWORD_FILE", key.path().join("key.json"));
    });
    ok(&again);
    assert!(again.stderr.contains("already holds this image"), "{again:?}");
    // Resumed by identity (v1.0.0 there carries this commit's label): nothing rebuilt.
    assert!(
        again.stderr.contains("from this commit") && again.stderr.contains("resuming"),
        "{again:?}"
    );
    assert!(!built(&again), "the rerun built again: {again:?}");
    assert!(
        !again.stderr.contains("$ docker push"),
        "the rerun uploaded again: {again:?}"
    );
    for t in ["v1.0.0", sha.as_str(), "latest"] {
        assert_eq!(reg.digest(img, t).as_deref(), Some(first.as_str()), "{t}");
    }
}

/// The weekly rebuild, with the base image in the registry (so `--pull` works offline):
/// unchanged → nothing pushed; a new base → latest and a dated tag move, vX.Y.Z stays.
#[ignore = "needs Docker"]
#[test]
fn rebuild_pushes_nothing_when_unchanged_and_moves_latest_on_a_new_base() {
    let bed = Bed::new("rb");
    let reg = Registry::start(canary());
    let img = bed.image.as_str();
    let base_name = format!("{img}-base");
    let base = push_image(&reg, &bed.base, &base_name, "1");
    let on_base = base_args(&base);
    let on_base = as_strs(&on_base);
    let rebuild = [&["--rebuild"], &on_base[..]].concat();
    ok(&bed.publish(&[&reg], &on_base, Some(canary())));
    let released = reg.state(img);
    let v100 = reg.digest(img, "v1.0.0").unwrap();

    // A docs-only commit since the release does not count as an unreleased change.
    bed.repo.write("NOTES.md", "not in the image\n");
    bed.repo.commit("docs");
    let puts = reg.manifest_puts();
    let same = bed.publish(&[&reg], &rebuild, Some(canary()));
    ok(&same);
    assert!(same.stdout.contains("unchanged"), "{same:?}");
    assert_eq!(reg.manifest_puts(), puts, "an unchanged rebuild pushed: {same:?}");
    assert_eq!(reg.state(img), released);

    // A policy change without a release is refused.
    bed.repo.write(
        "policies/security-policy/pp-test-unreleased.yaml",
        "# not released yet\n",
    );
    bed.repo.commit("unreleased policy");
    let refused = bed.publish(&[&reg], &rebuild, Some(canary()));
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(
        refused
            .error_line()
            .contains("policies/security-policy/pp-test-unreleased.yaml"),
        "{refused:?}"
    );
    bed.repo
        .git(&["rm", "-q", "policies/security-policy/pp-test-unreleased.yaml"]);
    bed.repo.commit("drop it again");

    // A new base under the same tag: latest and a dated tag move, the version tag stays.
    let tmp = TempDir::new("newbase");
    std::fs::write(
        tmp.path().join("Dockerfile"),
        format!("FROM {}\nRUN echo patched > /etc/base-patch\n", bed.base),
    )
    .unwrap();
    let newbase = format!("{img}-newbase");
    let b = docker(&["build", "-q", "-t", &newbase, tmp.path().to_str().unwrap()]);
    assert_eq!(b.code, 0, "{b:?}");
    push_image(&reg, &newbase, &base_name, "1");
    docker(&["rmi", "-f", &newbase, &base]);
    let moved = bed.publish(&[&reg], &rebuild, Some(canary()));
    ok(&moved);
    let latest = reg.digest(img, "latest").unwrap();
    assert_ne!(latest, v100, "{moved:?}");
    assert_eq!(reg.digest(img, "v1.0.0"), Some(v100), "a rebuild moved the version tag");
    let dated: Vec<String> = reg
        .tags(img)
        .into_iter()
        .filter(|t| t.starts_with("rebuild-"))
        .collect();
    assert_eq!(dated.len(), 1, "{:?}", reg.tags(img));
    assert_eq!(reg.digest(img, &dated[0]), Some(latest));
    assert_eq!(bed.record()["mode"], "rebuild");
    let _ = docker(&["rmi", "-f", &base]);
}

/// `--dry-run` checks the registry and prints the plan per registry; builds and pushes nothing.
#[ignore = "needs Docker"]
#[test]
fn dry_run_prints_the_plan_and_pushes_nothing() {
    let bed = Bed::new("dry");
    let reg = Registry::start(canary());
    let run = bed.publish(&[&reg], &["--dry-run"], Some(canary()));
    ok(&run);
    let img = &bed.image;
    assert!(
        run.stderr
            .contains(&format!("[dry-run] $ docker push -- {}/{img}:v1.0.0", reg.addr())),
        "{run:?}"
    );
    let latest = run.stderr.lines().find(|l| {
        l.starts_with("[dry-run] $ skopeo") && l.contains(" copy ") && l.ends_with(&format!("/{img}:latest"))
    });
    assert!(latest.is_some(), "latest is pointed at the pushed manifest: {run:?}");
    assert!(reg.catalog().is_empty());
    assert!(!std::path::Path::new(&bed.repo.path().join("target/xtask/release.json")).exists());
}

/// `--local` (the README's main job), with the tools from `--tools-mirror`: a throwaway
/// registry started and stopped by the xtask; the printed recipe names a digest the
/// registry really holds.
#[ignore = "needs Docker"]
#[test]
fn local_publishes_to_a_throwaway_registry_and_stops_it() {
    let bed = Bed::new("local");
    let mirror = bed.tools.base_url();
    let run = bed.publish(&[], &["--local", "--tools-mirror", &mirror], None);
    ok(&run);
    let build = run
        .stderr
        .lines()
        .find(|l| l.starts_with("$ docker build --file"))
        .unwrap_or_default();
    assert!(
        build.contains(&format!("KYVERNO_URL={mirror}/kyverno-cli_v")),
        "the tools come from the mirror: {build}"
    );
    let pull = run
        .stdout
        .lines()
        .find(|l| l.contains("docker pull 127.0.0.1:"))
        .unwrap_or_else(|| panic!("{run:?}"));
    let reference = pull.trim().trim_start_matches("docker pull ");
    let (repo, digest) = reference.split_once('@').unwrap();
    let addr = repo.split('/').next().unwrap();
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "the registry still runs at {addr}"
    );
    let rec = bed.record();
    assert_eq!(rec["registries"][0]["digest"], digest);
    // Its storage holds the manifest under that digest.
    let blob = bed
        .repo
        .path()
        .join("target/xtask/local-registry/data/docker/registry/v2/blobs/sha256")
        .join(&digest[7..9])
        .join(&digest[7..]);
    assert!(blob.exists(), "{}", blob.display());
}

/// A fresh runner (the published image not in the engine): latest is pulled and offered as
/// `--cache-from`, and an unchanged rebuild still comes out as the same image.
#[ignore = "needs Docker"]
#[test]
fn unchanged_rebuild_on_a_fresh_runner_pushes_nothing() {
    let bed = Bed::new("fresh");
    let reg = Registry::start(canary());
    let img = bed.image.as_str();
    let base = push_image(&reg, &bed.base, &format!("{img}-base"), "1");
    let on_base = base_args(&base);
    let on_base = as_strs(&on_base);
    let rebuild = [&["--rebuild"], &on_base[..]].concat();
    ok(&bed.publish(&[&reg], &on_base, Some(canary())));
    let id = reg.config_digest(img, "latest").unwrap();
    assert_eq!(docker(&["rmi", "-f", &id]).code, 0);
    let puts = reg.manifest_puts();
    let fresh = bed.publish(&[&reg], &rebuild, Some(canary()));
    ok(&fresh);
    assert!(
        fresh.stdout.contains("unchanged") && fresh.stderr.contains("docker pull"),
        "{fresh:?}"
    );
    assert_eq!(
        reg.manifest_puts(),
        puts,
        "an unchanged rebuild on a fresh runner pushed: {fresh:?}"
    );
    let _ = docker(&["rmi", "-f", &base]);
}

/// A gate that fails (here the scan: a token committed in a policy repo) stops the publish
/// with exit 1 before anything is pushed.
#[ignore = "needs Docker"]
#[test]
fn a_failing_gate_pushes_nothing() {
    let bed = Bed::new("gate");
    let reg = Registry::start(canary());
    // The record of an earlier release: the failed run must not leave it as its own.
    let old = r#"{"status": "published", "version": "v0.9.0", "commit": "0000000000000000000000000000000000000000"}"#;
    bed.repo.write("target/xtask/release.json", old);
    bed.repo.write(
        "policies/security-policy/deploy.env",
        &format!("GITHUB_TOKEN={}\n", support::trivy::fake_github_token()),
    );
    bed.repo.commit("a leaked token");
    let run = bed.publish(&[&reg], &[], Some(canary()));
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.error_line().contains("scan gate"), "{run:?}");
    assert!(reg.catalog().is_empty(), "something was pushed: {:?}", reg.catalog());
    assert!(!run.stderr.contains("$ docker push"), "{run:?}");
    let rec = bed.record();
    assert_eq!(rec["status"], "failed", "{rec}");
    assert_eq!(
        (rec["version"].as_str(), rec["exit_code"].as_i64()),
        (Some("v1.0.0"), Some(1)),
        "{rec}"
    );
    assert_eq!(rec["commit"], bed.head(), "{rec}");
    assert!(rec["error"].as_str().is_some_and(|e| e.contains("scan gate")), "{rec}");
    let out = bed.repo.path().join("target/xtask");
    let names: Vec<String> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.contains("tmp")),
        "a temp file was left beside the record: {names:?}"
    );
}

/// Ctrl-C in the middle of `publish --local` (SIGINT to the whole process group, as a
/// terminal sends it): the process dies without unwinding, yet the credentials folder goes
/// (its watchdog removes it) and the throwaway registry stops (it gets the signal too).
#[ignore = "needs Docker"]
#[test]
fn ctrl_c_leaves_no_credentials_and_no_registry() {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    let bed = Bed::new("intr");
    let mut child = bed
        .command(&bed.repo, &[], &["--local", "--no-cache"], |c| with_password(c, None))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let (mut auth, mut addr) = (None, None);
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.split("DOCKER_CONFIG=").nth(1) {
            auth = rest.split(',').next().map(std::path::PathBuf::from);
        }
        if let Some(rest) = line.trim().strip_prefix("throwaway registry on ") {
            addr = rest.split_whitespace().next().map(String::from);
        }
        if line.starts_with("$ docker build") {
            break;
        }
    }
    let (auth, addr) = (
        auth.expect("the credentials folder is named"),
        addr.expect("the registry address is named"),
    );
    assert!(auth.join("config.json").exists(), "{}", auth.display());
    std::thread::sleep(std::time::Duration::from_millis(300));
    let kill = std::process::Command::new("kill")
        .args(["-INT", "--", &format!("-{pid}")])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(2),
        "the xtask died of SIGINT, without unwinding: {status:?}"
    );
    let start = std::time::Instant::now();
    while (auth.exists() || std::net::TcpStream::connect(&addr).is_ok()) && start.elapsed().as_secs() < 5 {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        !auth.exists(),
        "the credentials folder {} is still there",
        auth.display()
    );
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "the registry on {addr} still answers"
    );
    for _ in lines {}
}
