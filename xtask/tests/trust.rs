//! The promises of `publish` against concurrency, credentials and what a killed run leaves,
//! on the real parts: Docker, a registry with htpasswd auth on 127.0.0.1 (read back with
//! curl, not through the xtask), skopeo, Trivy. Two releases race from two checkouts of
//! one image: one is held at the start of its scan gate (a `trivy` wrapper first on its
//! PATH) while the other publishes, so the order is fixed, not left to timing.
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::bed::{built, canary, ok, with_password, Bed};
use support::fakebin::FakeBin;
use support::registry::{ArgvWatch, Registry, USER};
use support::{busybox_base, derive, docker, need_docker, unique, TempDir, TempRepo};

const LONG: Duration = Duration::from_secs(600);
const OWNER_LABEL: &str = "io.policy-platform.xtask";

/// `PATH` for a bed's run with `fake` first.
fn path_with(bed: &Bed, fake: &FakeBin) -> std::ffi::OsString {
    fake.path_before(&bed.trivy.path_var())
}

fn trivy() -> PathBuf {
    support::trivy::binary()
}

/// A publish of v1.0.1 that read the registry before v1.1.0 was released and pushes
/// after it: v1.0.1 and its commit tag land, `latest` stays at v1.1.0.
#[ignore = "needs Docker"]
#[test]
fn a_lower_release_pushing_after_a_higher_one_leaves_latest_alone() {
    let bed = Bed::new("race-low");
    let reg = Registry::start(canary());
    let img = bed.image.as_str();
    bed.set_version("v1.0.1");
    let other = bed.checkout();
    other.set_version("v1.1.0");

    let hold = FakeBin::new();
    hold.hold("trivy", &trivy());
    let mut slow = bed.start_in(&bed.repo, &[&reg], &[], |c| {
        with_password(c, Some(canary()));
        c.env("PATH", path_with(&bed, &hold));
    });
    // Preflight read an empty registry; the image is built; the gates have started.
    slow.wait_until("at its scan gate", LONG, || hold.held("trivy"));
    assert!(reg.tags(img).is_empty());

    ok(&bed.publish_in(&other, &[&reg], &[], |c| with_password(c, Some(canary()))));
    let v110 = reg.digest(img, "v1.1.0").expect("v1.1.0 published");
    assert_eq!(reg.digest(img, "latest").as_deref(), Some(v110.as_str()));

    hold.release("trivy");
    let slow = slow.finish(LONG);
    ok(&slow);
    assert_eq!(
        reg.digest(img, "latest").as_deref(),
        Some(v110.as_str()),
        "latest moved back to v1.0.1: {slow:?}"
    );
    let v101 = reg.digest(img, "v1.0.1").expect("v1.0.1 pushed");
    assert_ne!(v101, v110);
    let sha = format!("sha-{}", &bed.head()[..7]);
    assert_eq!(reg.digest(img, &sha).as_deref(), Some(v101.as_str()));
    assert!(
        slow.stderr.contains("latest stays where it is") && slow.stderr.contains("lower than v1.1.0"),
        "{slow:?}"
    );
    let rec = bed.record();
    assert_eq!(rec["status"], "published", "{rec}");
    assert!(rec["registries"][0]["tags"].get("latest").is_none(), "{rec}");
    assert!(
        rec["registries"][0]["latest_skipped"]
            .as_str()
            .is_some_and(|w| w.contains("lower than v1.1.0")),
        "{rec}"
    );
}

/// The same version from two commits, both past preflight and the gates' registry check
/// before either pushes: the first to push wins; the other stops right before its first
/// tag, exit 2 naming the tag, the digest there and its own image, and pushes nothing.
#[ignore = "needs Docker"]
#[test]
fn the_same_version_from_two_commits_one_wins_and_the_other_pushes_nothing() {
    let bed = Bed::new("race-same");
    let reg = Registry::start(canary());
    let img = bed.image.as_str();
    bed.set_version("v2.0.0");
    let other = bed.checkout();
    other.write("NOTES.md", "another commit of the same version\n");
    other.set_version("v2.0.0");
    assert_ne!(other.head(), bed.head());

    let hold = FakeBin::new();
    hold.hold("trivy", &trivy());
    let mut loser = bed.start_in(&bed.repo, &[&reg], &[], |c| {
        with_password(c, Some(canary()));
        c.env("PATH", path_with(&bed, &hold));
    });
    loser.wait_until("at its scan gate", LONG, || hold.held("trivy"));
    // Its own image, found by its commit label (the local name `:v2.0.0` moves to the
    // winner's build below).
    let own = docker(&[
        "images",
        "--no-trunc",
        "--filter",
        &format!("label=org.opencontainers.image.revision={}", bed.head()),
        "--format",
        "{{.ID}}",
    ]);
    let own_id = own
        .stdout
        .lines()
        .next()
        .unwrap_or_else(|| panic!("the loser's image: {own:?}"))
        .to_string();
    let _own = support::image::ImageGuard(vec![own_id.clone()]);

    ok(&bed.publish_in(&other, &[&reg], &[], |c| with_password(c, Some(canary()))));
    let winner = reg.state(img);
    let v200 = reg.digest(img, "v2.0.0").expect("the winner pushed v2.0.0");
    let puts = reg.manifest_puts();

    hold.release("trivy");
    let lost = loser.finish(LONG);
    assert_eq!(lost.code, 2, "{lost:?}");
    let line = lost.error_line();
    assert!(
        line.contains("v2.0.0") && line.contains(&v200) && line.contains(&own_id),
        "{line}\nwant v2.0.0, {v200}, {own_id}"
    );
    assert_eq!(reg.manifest_puts(), puts, "the loser pushed: {lost:?}");
    assert_eq!(reg.state(img), winner, "the registry is not the winner's");
    assert!(!lost.stderr.contains("$ docker push"), "{lost:?}");
    assert_eq!(bed.record()["status"], "failed");
}

/// With REGISTRY_* the login goes to the throwaway config only: a system credential store
/// on PATH (`pass` and `docker-credential-pass`, as on many desktops) is never asked. The
/// password reaches `docker login` on stdin and nothing else: no argv, no output, no file,
/// no child's environment (docker, skopeo, git, cargo, sha256sum and Trivy write theirs
/// down through wrappers); only docker gets DOCKER_CONFIG, and only to talk to a registry.
#[ignore = "needs Docker"]
#[test]
fn credentials_reach_docker_login_on_stdin_and_nothing_else() {
    let bed = Bed::new("creds");
    let reg = Registry::start(canary());
    let fake = FakeBin::new();
    fake.recorder("docker-credential-pass", "cat >/dev/null; exit 1");
    fake.recorder("pass", "exit 1");
    let wrapped = ["docker", "skopeo", "git", "cargo", "sha256sum"];
    for tool in wrapped {
        fake.wrap_env(tool);
    }
    fake.wrap_env_of("trivy", &trivy());
    let signing = format!("signing{}x-never-shown", std::process::id());

    let watch = ArgvWatch::start(canary());
    let run = bed.publish_with(&[&reg], &[], |c| {
        with_password(c, Some(canary()));
        c.env("PATH", path_with(&bed, &fake))
            .env("SIGNING_KEY_PASSWORD", &signing)
            .env_remove("DOCKER_CONFIG");
    });
    let (hits, scans) = watch.finish();
    ok(&run);
    assert_eq!(reg.tags(&bed.image).len(), 3, "{run:?}");
    assert!(
        fake.calls("docker-credential-pass").is_empty(),
        "the credential store got: {:?}",
        fake.calls("docker-credential-pass")
    );
    assert!(
        fake.calls("pass").is_empty(),
        "pass was called: {:?}",
        fake.calls("pass")
    );
    assert!(hits.is_empty(), "the password was in argv: {hits:?}");
    assert!(scans > 10, "the argv watch barely ran ({scans} scans)");
    assert!(
        !run.all().contains(canary()) && !run.all().contains(&signing),
        "a secret is in the output"
    );
    bed.assert_no_canary_in_files();
    let throwaway = run
        .stderr
        .split("DOCKER_CONFIG=")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .map(PathBuf::from);
    let throwaway = throwaway.unwrap_or_else(|| panic!("the throwaway config is named: {run:?}"));
    assert!(!throwaway.exists(), "{} is left", throwaway.display());

    let envs = fake.envs();
    for tool in wrapped.iter().chain(&["trivy"]) {
        assert!(
            envs.iter().any(|d| d.tool == *tool),
            "{tool} never ran through its wrapper"
        );
    }
    let taken = [
        "REGISTRY_USERNAME",
        "REGISTRY_PASSWORD",
        "REGISTRY_PASSWORD_FILE",
        "SIGNING_KEY_FILE",
        "SIGNING_KEY_PASSWORD",
    ];
    for d in &envs {
        for (k, v) in &d.vars {
            assert!(!taken.contains(&k.as_str()), "`{} {}` got {k}", d.tool, d.argv);
            assert!(
                !v.contains(canary()) && !v.contains(&signing),
                "`{} {}`: {k} holds a secret",
                d.tool,
                d.argv
            );
        }
        let sub = d.argv.split_whitespace().next().unwrap_or("");
        let registry_talk = d.tool == "docker" && ["login", "push", "pull", "build"].contains(&sub);
        assert!(
            registry_talk || d.var("DOCKER_CONFIG").is_none(),
            "`{} {}` got DOCKER_CONFIG",
            d.tool,
            d.argv
        );
    }
    let login = envs
        .iter()
        .find(|d| d.tool == "docker" && d.argv.starts_with("login"))
        .expect("docker login ran");
    assert_eq!(
        login.var("DOCKER_CONFIG").map(PathBuf::from),
        Some(throwaway),
        "{login:?}"
    );
}

/// A credential helper script answering `get` with `user`/`secret`, recording each call.
fn helper(fake: &FakeBin, user: &str, secret: &str) {
    fake.recorder(
        "docker-credential-pptest",
        &format!(
            "read -r host\ncase \"$1\" in\n  get) printf '{{\"ServerURL\":\"%s\",\"Username\":\"{user}\",\"Secret\":\"{secret}\"}}\\n' \"$host\" ;;\n  *) exit 1 ;;\nesac"
        ),
    );
}

/// `HOME`-relative folder of the test's own toolchain (a run with another HOME must
/// still find cargo's toolchain).
fn home_dir(var: &str, below_home: &str) -> std::ffi::OsString {
    std::env::var_os(var).unwrap_or_else(|| {
        Path::new(&std::env::var_os("HOME").unwrap())
            .join(below_home)
            .into_os_string()
    })
}

/// Without REGISTRY_*: the user's own Docker login (a credential helper in their config,
/// as `gcloud auth configure-docker` sets up) serves the reads and the push, is named in
/// one line, and their config is never written. A helper handing out wrong credentials:
/// exit 3 in preflight naming the registry and `docker login`, nothing built.
#[ignore = "needs Docker"]
#[test]
fn the_users_own_docker_login_through_a_credential_helper() {
    let bed = Bed::new("own");
    let reg = Registry::start(canary());
    let home = TempDir::new("home");
    let docker_dir = home.path().join(".docker");
    std::fs::create_dir_all(&docker_dir).unwrap();
    let config = format!(
        "{{\n  \"credHelpers\": {{\n    \"{}\": \"pptest\"\n  }}\n}}\n",
        reg.addr()
    );
    std::fs::write(docker_dir.join("config.json"), &config).unwrap();
    let listing = || {
        let mut v: Vec<String> = walk(&docker_dir)
            .iter()
            .map(|p| p.strip_prefix(&docker_dir).unwrap().display().to_string())
            .collect();
        v.sort();
        v
    };
    let before = listing();
    let fake = FakeBin::new();
    helper(&fake, USER, canary());
    let as_user = |c: &mut Command| {
        with_password(c, None);
        c.env("HOME", home.path())
            .env_remove("DOCKER_CONFIG")
            .env("RUSTUP_HOME", home_dir("RUSTUP_HOME", ".rustup"))
            .env("CARGO_HOME", home_dir("CARGO_HOME", ".cargo"))
            .env("PATH", path_with(&bed, &fake));
    };

    let run = bed.publish_with(&[&reg], &[], as_user);
    ok(&run);
    let said: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("your own Docker login"))
        .collect();
    assert_eq!(said.len(), 1, "{run:?}");
    assert!(said[0].contains(&docker_dir.display().to_string()), "{}", said[0]);
    let calls = fake.calls("docker-credential-pptest");
    assert!(calls.iter().any(|c| c == "get"), "the helper was not asked: {calls:?}");
    assert!(
        calls.iter().all(|c| c == "get"),
        "the helper was asked to store or erase: {calls:?}"
    );
    assert_eq!(
        std::fs::read_to_string(docker_dir.join("config.json")).unwrap(),
        config,
        "the user's config was written"
    );
    assert_eq!(listing(), before, "files appeared in the user's Docker folder");
    let sha = format!("sha-{}", &bed.head()[..7]);
    let mut want = vec!["latest".to_string(), sha, "v1.0.0".to_string()];
    want.sort();
    assert_eq!(reg.tags(&bed.image), want);
    assert!(!run.all().contains(canary()));

    // A helper with wrong credentials (an expired login): preflight names the fix.
    bed.set_version("v1.0.1");
    helper(&fake, USER, "not-the-password");
    let refused = bed.publish_with(&[&reg], &[], as_user);
    assert_eq!(refused.code, 3, "{refused:?}");
    let line = refused.error_line();
    assert!(line.contains(&reg.addr()) && line.contains("docker login"), "{line}");
    assert!(!built(&refused), "{refused:?}");
    assert_eq!(reg.tags(&bed.image), want);
    assert_eq!(std::fs::read_to_string(docker_dir.join("config.json")).unwrap(), config);
}

/// Every file and folder below `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        out.push(e.path());
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()));
        }
    }
    out
}

/// Containers (any state) of an image, and of an owner label value.
fn containers(filter: &str) -> Vec<String> {
    docker(&["ps", "-aq", "--filter", filter])
        .stdout
        .lines()
        .map(String::from)
        .collect()
}

/// Removes every container of a filter when dropped.
struct Containers(Vec<String>);

impl Drop for Containers {
    fn drop(&mut self) {
        for f in &self.0 {
            let ids = containers(f);
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f"];
                args.extend(ids.iter().map(String::as_str));
                docker(&args);
            }
        }
    }
}

/// Ctrl-C (SIGINT to the process group, as a terminal sends it) while `smoke` runs its
/// container, whose `kyverno` hangs: the xtask dies of the signal, and the container goes
/// (in whatever state: its PID 1 ignores SIGINT), found by its image, not only by label.
#[ignore = "needs Docker"]
#[test]
fn ctrl_c_during_a_gate_leaves_no_container_and_no_temp_folder() {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    need_docker();
    let repo = TempRepo::new();
    let image = format!("{}:sleepy", unique("sleepy"));
    derive(
        &image,
        &busybox_base(),
        "RUN printf '#!/bin/sh\\nexec sleep 300\\n' > /usr/local/bin/kyverno && chmod 755 /usr/local/bin/kyverno",
    );
    let _image = support::image::ImageGuard(vec![image.clone()]);
    let of_image = format!("ancestor={image}");
    let _left = Containers(vec![of_image.clone()]);
    let tmp = TempDir::new("tmpdir");

    let mut child = Command::new(support::xtask_bin())
        .args(["smoke", "--image", &image])
        .current_dir(repo.path())
        .env("XTASK_ROOT", repo.path())
        .env("TMPDIR", tmp.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let pid = child.id();
    let _ours = Containers(vec![format!("label={OWNER_LABEL}={pid}")]);
    let start = std::time::Instant::now();
    while docker(&["ps", "-q", "--filter", &of_image, "--filter", "status=running"])
        .stdout
        .trim()
        .is_empty()
    {
        assert!(
            child.try_wait().unwrap().is_none(),
            "smoke ended before its container ran"
        );
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no running container of {image}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(Command::new("kill")
        .args(["-INT", "--", &format!("-{pid}")])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(2), "the xtask died of SIGINT: {status:?}");

    let start = std::time::Instant::now();
    let left = || [containers(&of_image), containers(&format!("label={OWNER_LABEL}={pid}"))].concat();
    while !left().is_empty() && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        left().is_empty(),
        "containers left 20 s after Ctrl-C: {:?}",
        docker(&["ps", "-a", "--filter", &of_image]).stdout
    );
    let ours: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(ours.is_empty(), "left in TMPDIR: {ours:?}");
}

/// The process id of a process that has ended.
fn dead_pid() -> u32 {
    let mut c = Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    assert!(!Path::new("/proc").join(pid.to_string()).exists());
    pid
}

/// What a killed run left (a container in state Created, a temp folder) is swept by the
/// next run of a Docker task; what belongs to a live process is not, and a symlink named
/// like ours is neither followed nor removed through.
#[ignore = "needs Docker"]
#[test]
fn the_next_run_sweeps_what_a_killed_run_left_and_nothing_else() {
    need_docker();
    let repo = TempRepo::new();
    let (dead, live) = (dead_pid(), std::process::id());
    let stale = unique("stale");
    let alive = unique("alive");
    let _guard = Containers(vec![format!("name={stale}"), format!("name={alive}")]);
    for (name, pid) in [(&stale, dead), (&alive, live)] {
        let c = docker(&[
            "create",
            "--label",
            &format!("{OWNER_LABEL}={pid}"),
            "--name",
            name,
            &busybox_base(),
            "true",
        ]);
        assert_eq!(c.code, 0, "{c:?}");
    }
    assert_eq!(
        docker(&["inspect", "--format", "{{.State.Status}}", &stale])
            .stdout
            .trim(),
        "created"
    );

    let tmp = TempDir::new("sweep-tmp");
    let victim = TempDir::new("victim");
    std::fs::write(victim.path().join("keep"), "not yours\n").unwrap();
    let stale_dir = tmp.path().join(format!("pp-xtask-{dead}-auth-0a1b"));
    let live_dir = tmp.path().join(format!("pp-xtask-{live}-auth-2c3d"));
    let link = tmp.path().join(format!("pp-xtask-{dead}-local-4e5f"));
    for d in [&stale_dir, &live_dir] {
        std::fs::create_dir_all(d.join("inner")).unwrap();
        std::fs::write(d.join("inner/config.json"), "{}").unwrap();
    }
    std::os::unix::fs::symlink(victim.path(), &link).unwrap();

    let missing = format!("{}:none", unique("missing"));
    let run = repo.xtask_cmd(&["integration", "--image", &missing], |c| {
        c.env("TMPDIR", tmp.path());
    });
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.error_line().contains(&missing), "{run:?}");
    assert!(!stale_dir.exists(), "the stale folder is left: {run:?}");
    assert!(
        live_dir.join("inner/config.json").exists(),
        "a live run's folder was removed"
    );
    assert_eq!(
        std::fs::read_to_string(victim.path().join("keep")).unwrap(),
        "not yours\n",
        "removed through a symlink"
    );
    let gone = docker(&["inspect", &stale]);
    assert_ne!(gone.code, 0, "the stale container is left: {run:?}");
    assert_eq!(
        docker(&["inspect", "--format", "{{.State.Status}}", &alive])
            .stdout
            .trim(),
        "created",
        "a live run's container went"
    );
}

/// Symlinks planted in `target/xtask/local-registry/` (a checkout is anyone's to write):
/// `password` and `registry.log` are replaced, the files they pointed at stay as they
/// were. The folder itself, or its `data` folder, planted as a symlink: refused, nothing
/// made through it.
#[ignore = "needs Docker"]
#[test]
fn planted_symlinks_in_the_local_registry_folder_are_never_written_through() {
    let bed = Bed::new("plant");
    let victim = TempDir::new("victim");
    let target = victim.path().join("victim.txt");
    std::fs::write(&target, "someone else's file\n").unwrap();
    let log = victim.path().join("victim.log");
    std::fs::write(&log, "someone else's log\n").unwrap();
    let dir = bed.repo.path().join("target/xtask/local-registry");
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(&target, dir.join("password")).unwrap();
    std::os::unix::fs::symlink(&log, dir.join("registry.log")).unwrap();
    // A dirty tree: preflight refuses after the registry started, so the run is short.
    bed.repo
        .write("policies/pp-test-uncommitted.yaml", "kind: ClusterPolicy\n");

    let run = bed.publish(&[], &["--local"], None);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.error_line().contains("uncommitted"), "{run:?}");
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "someone else's file\n",
        "written through the symlink"
    );
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "someone else's log\n",
        "the registry logged through the symlink"
    );
    use std::os::unix::fs::PermissionsExt;
    for name in ["password", "registry.log"] {
        let m = std::fs::symlink_metadata(dir.join(name)).unwrap();
        assert!(m.is_file() && m.permissions().mode() & 0o077 == 0, "{name}: {m:?}");
    }

    let listing = || {
        let mut v: Vec<_> = std::fs::read_dir(victim.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        v.sort();
        v
    };
    let before = listing();
    for planted in [dir.join("data"), dir.clone()] {
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        if planted == dir {
            std::fs::remove_dir(&dir).unwrap();
        }
        std::os::unix::fs::symlink(victim.path(), &planted).unwrap();
        let run = bed.publish(&[], &["--local"], None);
        assert_eq!(run.code, 2, "{run:?}");
        let line = run.error_line();
        assert!(
            line.contains(&planted.display().to_string()) && line.contains("symlink"),
            "{line}"
        );
        assert_eq!(listing(), before, "made through the symlink {}", planted.display());
        std::fs::remove_file(&planted).unwrap();
    }
}

/// `publish --local --dry-run` keeps its throwaway registry in a new private folder with
/// a random name (mode 0700), and leaves nothing behind: not there, not in the checkout.
#[ignore = "needs Docker"]
#[test]
fn local_dry_run_uses_a_private_random_folder_and_leaves_nothing() {
    use std::io::BufRead;
    use std::os::unix::fs::PermissionsExt;
    let bed = Bed::new("localdry");
    let tmp = TempDir::new("localdry-tmp");
    let mut c = bed.command(&bed.repo, &[], &["--local", "--dry-run"], |c| {
        with_password(c, None);
        c.env("TMPDIR", tmp.path());
    });
    let mut child = c
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut seen = None;
    let mut all = String::new();
    for line in std::io::BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.split("docker-registry serve ").nth(1).filter(|_| seen.is_none()) {
            let dir = Path::new(rest.trim()).parent().unwrap().to_path_buf();
            let mode = std::fs::symlink_metadata(&dir).map(|m| (m.is_dir(), m.permissions().mode() & 0o777));
            seen = Some((dir, mode));
        }
        all.push_str(&line);
        all.push('\n');
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "{all}");
    let (dir, mode) = seen.unwrap_or_else(|| panic!("no docker-registry started:\n{all}"));
    assert_eq!(mode.ok(), Some((true, 0o700)), "{}", dir.display());
    assert_eq!(dir.parent(), Some(tmp.path()), "{}", dir.display());
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let random = name
        .strip_prefix(&format!("pp-xtask-{pid}-local-"))
        .unwrap_or_else(|| panic!("{name}"));
    assert!(
        random.len() >= 16 && random.bytes().all(|b| b.is_ascii_hexdigit()),
        "not a random name: {name}"
    );
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(!bed.repo.path().join("target/xtask/local-registry").exists());
}
