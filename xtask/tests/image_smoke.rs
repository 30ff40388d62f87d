//! `image` and `smoke` on the real Docker engine: the repo's real Dockerfile is built on a
//! busybox base with the stand-in tools (served from a loopback server), then checked.
//! A good image passes; a tampered download, a wrong tool version, a missing tool, a
//! missing or altered policy file and an image over budget each fail, naming what broke.
mod support;

use support::image::{as_strs, base_args, tool_args, xtask_args, ImageGuard, ToolServer};
use support::{busybox_base, docker, need_docker, unique, Run, TempDir, TempRepo};

/// A temp copy of the repo whose image name is unique to this test, with a small policy
/// repo of the test's own (so the checks do not depend on what policies/ holds today).
fn repo_named(image: &str) -> TempRepo {
    let repo = TempRepo::new();
    set_config(&repo, "image", &format!("\"{image}\""));
    repo.write(
        "policies/pp-test-fixture/policy.yaml",
        "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: fixture\n",
    );
    repo.write(
        "policies/pp-test-fixture/tests/with space.yaml",
        "# a nested file with a space in its name\n",
    );
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
        let at = out
            .iter()
            .position(|l| l.trim() == "[workspace.metadata.policy-platform]")
            .expect("config table")
            + 1;
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

/// The image the tests below share: the repo's real Dockerfile built once per test process
/// by `cargo xtask image` (tools from a loopback server), with what the build showed.
struct Shared {
    name: String,
    reference: String,
    version: String,
    commit: String,
    build: Run,
    /// `(tool, pinned version, upstream file)` of the stand-ins it was built with.
    tools: Vec<(String, String, String)>,
    /// The files the build fetched from the tool server.
    fetched: Vec<String>,
}

/// Built on first use. Its images keep the `pp-test` prefix: a test process cannot remove
/// them at exit, so `.ci/run` sweeps them.
fn shared() -> &'static Shared {
    static SHARED: std::sync::OnceLock<Shared> = std::sync::OnceLock::new();
    SHARED.get_or_init(|| {
        need_docker();
        let name = unique("img");
        let repo = repo_named(&name);
        let server = ToolServer::start();
        let build = repo.xtask(&as_strs(&xtask_args("image", &server)));
        let tools = server
            .tools
            .iter()
            .map(|t| (t.name.clone(), t.version.clone(), t.file.clone()))
            .collect();
        Shared {
            reference: format!("{name}:{}", tag_of(&repo)),
            version: tag_of(&repo),
            commit: repo.head(),
            name,
            build,
            tools,
            fetched: server.requests(),
        }
    })
}

/// A checkout like the one the shared image was built from (its own copy, free to change).
fn checkout_of_shared() -> TempRepo {
    repo_named(&shared().name)
}

#[ignore = "needs Docker"]
#[test]
fn the_real_dockerfile_builds_tags_and_labels_the_image() {
    let s = shared();
    let run = &s.build;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains(&format!("image {} id sha256:", s.reference)),
        "{run:?}"
    );
    assert!(
        run.stdout.contains("layers (newest first):") && run.stdout.contains("COPY"),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("fetching kyverno from"),
        "build output is streamed: {run:?}"
    );
    let tags = docker(&["images", "--format", "{{.Tag}}", &s.name]).stdout;
    let mut tags: Vec<&str> = tags.lines().collect();
    tags.sort();
    assert_eq!(
        tags,
        vec!["latest", &format!("sha-{}", &s.commit[..7]), s.version.as_str()]
    );
    let l = labels(&s.reference);
    for (tool, version, file) in &s.tools {
        assert_eq!(l[format!("io.policy-platform.tool.{tool}")], version.as_str(), "{l}");
        assert!(s.fetched.contains(&format!("/{file}")), "{:?}", s.fetched);
    }
    assert_eq!(l["org.opencontainers.image.revision"], s.commit.as_str());
    assert_eq!(l["org.opencontainers.image.version"], s.version.as_str());
    assert_eq!(
        l["org.opencontainers.image.base.name"],
        support::busybox_base().as_str()
    );
    assert_eq!(l["io.policy-platform.policy-hash"].as_str().unwrap().len(), 64);
}

#[ignore = "needs Docker"]
#[test]
fn the_image_holds_a_non_root_user_the_three_binaries_and_no_download_leftovers() {
    let s = shared();
    let r = docker(&[
        "run", "--rm", "--entrypoint", "sh", &s.reference, "-c",
        "id -u; pwd; ls /usr/local/bin; find / -xdev \\( -name '*.tar.gz' -o -name '*.sha256' -o -name download \\) -print",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.stdout.lines().collect::<Vec<_>>(),
        vec!["10001", "/workspace", "helm", "kyverno", "pluto"],
        "{r:?}"
    );
}

#[ignore = "needs Docker"]
#[test]
fn smoke_passes_on_the_built_image_listing_each_check() {
    let s = shared();
    let run = smoke(&checkout_of_shared(), &s.reference);
    assert_eq!(run.code, 0, "{run:?}");
    for (tool, version, _) in &s.tools {
        assert!(run.stdout.contains(&format!("ok    {tool:<9} {version}")), "{run:?}");
    }
    assert!(run.stdout.contains("match /repos/"), "{run:?}");
}

#[ignore = "needs Docker"]
#[test]
fn smoke_names_policies_the_checkout_changed_since_the_build() {
    let s = shared();
    let repo = checkout_of_shared();
    // An altered file, and a file the image lacks.
    let policy = "policies/pp-test-fixture/policy.yaml";
    let original = repo.read(policy);
    repo.write(policy, &format!("{original}# edited\n"));
    repo.write("policies/pp-test-fixture/new.yaml", "kind: ClusterPolicy\n");
    assert_smoke_fails(
        &smoke(&repo, &s.reference),
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
    assert_smoke_fails(
        &smoke(&repo, &s.reference),
        &["/repos/pp-test-fixture/tests/with space.yaml is not in policies/"],
    );
    repo.write(
        "policies/pp-test-fixture/tests/with space.yaml",
        "# a nested file with a space in its name\n",
    );
    assert_eq!(smoke(&repo, &s.reference).code, 0);
}

#[ignore = "needs Docker"]
#[test]
fn smoke_names_a_missing_tool() {
    let s = shared();
    let no_pluto = format!("{}:no-pluto", s.name);
    let _guard = ImageGuard(vec![no_pluto.clone()]);
    derive(
        &no_pluto,
        &s.reference,
        "USER root\nRUN rm /usr/local/bin/pluto\nUSER 10001",
        &[],
    );
    assert_smoke_fails(
        &smoke(&checkout_of_shared(), &no_pluto),
        &["1 check(s) failed", "pluto: `pluto` is missing from the image"],
    );
}

/// A tool that reports another version than the one pinned: built for real, with a pluto
/// stand-in that says 5.0.1 while the Dockerfile pins (and labels) the real pin.
#[ignore = "needs Docker"]
#[test]
fn smoke_names_a_tool_that_reports_another_version_than_its_pin() {
    need_docker();
    let name = unique("wrongver");
    let repo = repo_named(&name);
    let _guard = ImageGuard::release_tags(&name, &repo);
    let wrong = ToolServer::start_with(&[("pluto", "5.0.1")]);
    let run = repo.xtask(&as_strs(&xtask_args("image", &wrong)));
    assert_eq!(run.code, 0, "{run:?}");
    let pin = &wrong.tool("pluto").version;
    assert_smoke_fails(
        &repo.xtask(&["smoke"]),
        &[&format!(
            "pluto: reports version 5.0.1, but the image pins {pin} (io.policy-platform.tool.pluto)"
        )],
    );
}

/// Over the size budget (the busybox image is about 2 MB): exit 1 naming the largest
/// layers. Built through --tools-mirror, which fetches the upstream file names, and
/// --no-cache, so that the tools are fetched again.
#[ignore = "needs Docker"]
#[test]
fn an_image_over_its_size_budget_fails_naming_the_largest_layers() {
    need_docker();
    let name = unique("budget");
    let repo = repo_named(&name);
    set_config(&repo, "size-budget-mb", "1");
    repo.commit("a tiny budget");
    let server = ToolServer::start();
    let mut args = vec![
        "image".to_string(),
        "--no-cache".into(),
        "--tools-mirror".into(),
        server.base_url(),
    ];
    args.extend(base_args(&busybox_base()));
    args.extend(tool_args(&server, false));
    args.extend(["--network".to_string(), "host".to_string()]);
    let run = repo.xtask(&as_strs(&args));
    assert_eq!(run.code, 1, "{run:?}");
    let line = run.error_line();
    assert!(
        line.contains("over its size budget of 1 MB") && line.contains("largest layers:"),
        "{line}"
    );
    let fetched = server.requests();
    for t in &server.tools {
        assert!(
            fetched.contains(&format!("/{}", t.file)),
            "mirror file names: {fetched:?}"
        );
    }
    // Over budget, it is still built and tagged (the gate says what to shrink).
    let _guard = ImageGuard::release_tags(&name, &repo);
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
    let _guard = ImageGuard::release_tags(&name, &repo);
    let run = repo.xtask(&as_strs(&xtask_args("image", &server)));
    assert_eq!(run.code, 3, "{run:?}");
    let line = run.error_line();
    assert!(
        line.contains("the helm download does not match its pinned sha256 (HELM_SHA256)"),
        "{line}"
    );
    assert!(run.stderr.contains("checksum mismatch for helm"), "{run:?}");
    assert_ne!(
        docker(&["image", "inspect", &reference]).code,
        0,
        "no image may be tagged"
    );
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
    assert!(
        server.requests().is_empty(),
        "nothing downloaded: {:?}",
        server.requests()
    );
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
    assert!(
        line.contains(&format!(
            "image {name}:{} is not in the local Docker engine",
            tag_of(&repo)
        )),
        "{line}"
    );
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
