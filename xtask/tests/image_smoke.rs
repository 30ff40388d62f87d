//! `image` and `smoke` on the real Docker engine: the repo's real Dockerfile is built on a
//! busybox base with the stand-in tools (served from a loopback server), then checked.
//! A good image passes; a tampered download, a wrong tool version, a missing tool, a
//! missing or altered policy file and an image over budget each fail, naming what broke.
mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use support::image::{as_strs, build_args, xtask_args, ImageGuard, ToolServer};
use support::{docker, need_docker, Run, TempDir, TempRepo, PREFIX};

fn unique(what: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("{PREFIX}-{what}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst))
}

/// A temp copy of the repo whose image name is unique to this test, with a small policy
/// repo of the test's own (so the checks do not depend on what policies/ holds today).
fn repo_named(image: &str) -> TempRepo {
    let repo = TempRepo::new();
    set_config(&repo, "image", &format!("\"{image}\""));
    repo.write("policies/pp-test-fixture/policy.yaml", "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: fixture\n");
    repo.write("policies/pp-test-fixture/tests/with space.yaml", "# a nested file with a space in its name\n");
    repo.commit("test fixture");
    repo
}

/// Sets `key = value` in the root Cargo.toml's policy-platform table.
fn set_config(repo: &TempRepo, key: &str, value: &str) {
    let text = repo.read("Cargo.toml");
    let mut found = false;
    let mut out: Vec<String> = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with(&format!("{key} =")) {
                found = true;
                format!("{key} = {value}")
            } else {
                l.to_string()
            }
        })
        .collect();
    if !found {
        let at = out.iter().position(|l| l.trim() == "[workspace.metadata.policy-platform]").expect("config table") + 1;
        out.insert(at, format!("{key} = {value}"));
    }
    repo.write("Cargo.toml", &(out.join("\n") + "\n"));
}

fn tag_of(repo: &TempRepo) -> String {
    repo.read("VERSION").trim().to_string()
}

fn labels(image: &str) -> serde_json::Value {
    let r = docker(&["image", "inspect", "--format", "{{json .Config.Labels}}", image]);
    assert_eq!(r.code, 0, "{r:?}");
    serde_json::from_str(r.stdout.trim()).unwrap()
}

/// An image made FROM `base` by a small Dockerfile (and optional files), tagged `name`.
fn derive(name: &str, base: &str, steps: &str, files: &[(&str, &str)]) {
    let dir = TempDir::new("derive");
    std::fs::write(dir.path().join("Dockerfile"), format!("FROM {base}\n{steps}\n")).unwrap();
    for (f, text) in files {
        std::fs::write(dir.path().join(f), text).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path().join(f), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let r = docker(&["build", "-q", "-t", name, dir.path().to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
}

fn smoke(repo: &TempRepo, image: &str) -> Run {
    repo.xtask(&["smoke", "--image", image])
}

fn assert_smoke_fails(run: &Run, want: &[&str]) {
    assert_eq!(run.code, 1, "{run:?}");
    let line = run.error_line();
    for w in want {
        assert!(line.contains(w), "want `{w}` in: {line}");
    }
}

#[ignore = "needs Docker"]
#[test]
fn the_real_dockerfile_builds_and_smoke_checks_what_is_inside() {
    need_docker();
    let name = unique("img");
    let repo = repo_named(&name);
    let server = ToolServer::start();
    let version = tag_of(&repo);
    let commit = repo.git(&["rev-parse", "HEAD"]).trim().to_string();
    let reference = format!("{name}:{version}");
    let mut guard = ImageGuard::default();
    for t in [version.clone(), format!("sha-{}", &commit[..7]), "latest".into()] {
        guard.add(format!("{name}:{t}"));
    }

    // The build: tagged three ways, labelled with the pins, tools fetched from the server.
    let run = repo.xtask(&as_strs(&xtask_args("image", &server)));
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains(&format!("image {reference} id sha256:")), "{run:?}");
    assert!(run.stdout.contains("layers (newest first):") && run.stdout.contains("COPY"), "{run:?}");
    assert!(run.stderr.contains("fetching kyverno from"), "build output is streamed: {run:?}");
    let tags = docker(&["images", "--format", "{{.Tag}}", &name]).stdout;
    let mut tags: Vec<&str> = tags.lines().collect();
    tags.sort();
    assert_eq!(tags, vec!["latest", &format!("sha-{}", &commit[..7]), version.as_str()]);
    let l = labels(&reference);
    for t in &server.tools {
        assert_eq!(l[format!("io.policy-platform.tool.{}", t.name)], t.version.as_str(), "{l}");
        assert!(server.requests().contains(&format!("/{}", t.file)), "{:?}", server.requests());
    }
    assert_eq!(l["org.opencontainers.image.revision"], commit.as_str());
    assert_eq!(l["org.opencontainers.image.version"], version.as_str());
    assert_eq!(l["org.opencontainers.image.base.name"], support::busybox_base().as_str());
    assert_eq!(l["io.policy-platform.policy-hash"].as_str().unwrap().len(), 64);

    // Inside: a non-root user in /workspace, the three binaries, no tarball or checksum file.
    let r = docker(&[
        "run", "--rm", "--entrypoint", "sh", &reference, "-c",
        "id -u; pwd; ls /usr/local/bin; find / -xdev \\( -name '*.tar.gz' -o -name '*.sha256' -o -name download \\) -print",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout.lines().collect::<Vec<_>>(), vec!["10001", "/workspace", "helm", "kyverno", "pluto"], "{r:?}");

    // Smoke passes on the good image, each check listed.
    let run = repo.xtask(&["smoke"]);
    assert_eq!(run.code, 0, "{run:?}");
    for t in &server.tools {
        assert!(run.stdout.contains(&format!("ok    {:<9} {}", t.name, t.version)), "{run:?}");
    }
    assert!(run.stdout.contains("match /repos/"), "{run:?}");

    // The checkout changed after the build: an altered file, a file the image lacks.
    let policy = "policies/pp-test-fixture/policy.yaml";
    let original = repo.read(policy);
    repo.write(policy, &format!("{original}# edited\n"));
    repo.write("policies/pp-test-fixture/new.yaml", "kind: ClusterPolicy\n");
    assert_smoke_fails(
        &smoke(&repo, &reference),
        &[
            "2 check(s) failed",
            "/repos/pp-test-fixture/policy.yaml differs from policies/pp-test-fixture/policy.yaml",
            "/repos/pp-test-fixture/new.yaml is missing",
            "cargo xtask image",
        ],
    );
    repo.write(policy, &original);
    std::fs::remove_file(repo.path().join("policies/pp-test-fixture/new.yaml")).unwrap();
    // A file the checkout no longer has is "something else in /repos/".
    std::fs::remove_file(repo.path().join("policies/pp-test-fixture/tests/with space.yaml")).unwrap();
    assert_smoke_fails(&smoke(&repo, &reference), &["/repos/pp-test-fixture/tests/with space.yaml is not in policies/"]);
    repo.write("policies/pp-test-fixture/tests/with space.yaml", "# a nested file with a space in its name\n");
    assert_eq!(smoke(&repo, &reference).code, 0);

    // A missing tool.
    let no_pluto = format!("{name}:no-pluto");
    guard.add(&no_pluto);
    derive(&no_pluto, &reference, "USER root\nRUN rm /usr/local/bin/pluto\nUSER 10001", &[]);
    assert_smoke_fails(&smoke(&repo, &no_pluto), &["1 check(s) failed", "pluto: `pluto` is missing from the image"]);

    // A tool that reports another version than the one pinned: built for real, with a
    // pluto stand-in that says 5.0.1 while the Dockerfile pins (and labels) the real pin.
    let wrong = ToolServer::start_with(&[("pluto", "5.0.1")]);
    let run = repo.xtask(&as_strs(&xtask_args("image", &wrong)));
    assert_eq!(run.code, 0, "{run:?}");
    let pin = &wrong.tool("pluto").version;
    assert_smoke_fails(
        &repo.xtask(&["smoke"]),
        &[&format!("pluto: reports version 5.0.1, but the image pins {pin} (io.policy-platform.tool.pluto)")],
    );

    // Over the size budget (the busybox image is about 2 MB): exit 1 naming the largest
    // layers. Built through --tools-mirror, which fetches the upstream file names, and
    // --no-cache, so that the tools are fetched again.
    set_config(&repo, "size-budget-mb", "1");
    let mut args = vec!["image".to_string(), "--no-cache".into(), "--tools-mirror".into(), server.base_url()];
    let given = build_args(&server);
    for pair in given.chunks(2).filter(|p| !p[1].contains("_URL=")) {
        args.extend(pair.iter().cloned());
    }
    let before = server.requests().len();
    let run = repo.xtask(&as_strs(&args));
    assert_eq!(run.code, 1, "{run:?}");
    let line = run.error_line();
    assert!(line.contains("over its size budget of 1 MB") && line.contains("largest layers:"), "{line}");
    let fetched = server.requests()[before..].to_vec();
    for t in &server.tools {
        assert!(fetched.contains(&format!("/{}", t.file)), "mirror file names: {fetched:?}");
    }
}

#[ignore = "needs Docker"]
#[test]
fn a_tampered_download_fails_the_build_naming_the_tool() {
    need_docker();
    let name = unique("tamper");
    let repo = repo_named(&name);
    let server = ToolServer::start();
    server.tamper("helm");
    let reference = format!("{name}:{}", tag_of(&repo));
    let _guard = ImageGuard(vec![reference.clone(), format!("{name}:latest")]);
    let run = repo.xtask(&as_strs(&xtask_args("image", &server)));
    assert_eq!(run.code, 3, "{run:?}");
    let line = run.error_line();
    assert!(line.contains("the helm download does not match its pinned sha256 (HELM_SHA256)"), "{line}");
    assert!(run.stderr.contains("checksum mismatch for helm"), "{run:?}");
    assert_ne!(docker(&["image", "inspect", &reference]).code, 0, "no image may be tagged");
}

#[ignore = "needs Docker"]
#[test]
fn dry_run_prints_the_build_and_runs_nothing() {
    need_docker();
    let name = unique("dry");
    let repo = repo_named(&name);
    let server = ToolServer::start();
    let reference = format!("{name}:{}", tag_of(&repo));
    let mut args = xtask_args("image", &server);
    args.push("--dry-run".into());
    let run = repo.xtask(&as_strs(&args));
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("[dry-run] $ docker build"), "{run:?}");
    assert!(run.stderr.contains(&format!("--tag {reference}")), "{run:?}");
    assert!(run.stderr.contains("--network host"), "{run:?}");
    assert!(server.requests().is_empty(), "nothing downloaded: {:?}", server.requests());
    assert_ne!(docker(&["image", "inspect", &reference]).code, 0, "nothing built");

    let run = repo.xtask(&["smoke", "--dry-run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("[dry-run] $ docker run --rm"), "{run:?}");
}

#[ignore = "needs Docker"]
#[test]
fn smoke_without_the_image_says_how_to_build_it() {
    need_docker();
    let name = unique("absent");
    let repo = repo_named(&name);
    let run = repo.xtask(&["smoke"]);
    assert_eq!(run.code, 3, "{run:?}");
    let line = run.error_line();
    assert!(line.contains(&format!("image {name}:{} is not in the local Docker engine", tag_of(&repo))), "{line}");
    assert!(line.contains("cargo xtask image"), "{line}");
}

#[test]
fn bad_build_args_are_refused_before_docker_runs() {
    let repo = TempRepo::new();
    let run = repo.xtask(&["image", "--build-arg", "KYVERNO_VERSON=1.0.0"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.error_line().contains("no `ARG KYVERNO_VERSON`"), "{run:?}");
    let run = repo.xtask(&["image", "--dry-run", "--build-arg", "HELM_VERSION=3.0.0"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.error_line().contains("HELM_SHA256"), "{run:?}");
}
