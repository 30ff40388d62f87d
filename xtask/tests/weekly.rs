//! The weekly job follows a base line, and pushes carry only what changed (issue 9), on the
//! real engine, real registries (Debian's docker-registry on 127.0.0.1) and the real Trivy:
//! `base-image-track` names a tag in a registry; when the test moves that tag, `publish
//! --rebuild` rebuilds on its new digest; when it does not, nothing is pushed. What was
//! published is read with skopeo (manifests, labels) and from the registry's own storage
//! (bytes), never through the xtask.
mod support;

use support::bed::{ok, record};
use support::image::{layer_of, tool_args, ToolServer, PARTS};
use support::registry::{push_image, Registry, Skopeo, USER};
use support::trivy::{BinDir, Cache};
use support::{busybox_base, derive, docker, need_docker, remove_images_named, unique, Run, TempRepo};

fn password() -> String {
    format!("weekly{}pw", std::process::id())
}

/// A temp repo whose `base-image-track` is `<track registry>/<image>-base:track`, publishing
/// to `publish`; its base and its DOWNLOAD_IMAGE (pinned by digest) live in the track's
/// registry.
struct Bed {
    repo: TempRepo,
    tools: ToolServer,
    trivy: BinDir,
    cache: Cache,
    image: String,
    /// `<registry>/<image>-base`, the track's repository.
    base_repo: String,
    track: String,
    download: String,
}

impl Bed {
    fn new(what: &str, track_reg: &Registry, publish: &Registry, registries_key: bool) -> Bed {
        need_docker();
        let trivy = BinDir::real();
        let image = unique(what);
        let repo = TempRepo::named(&image);
        let base_repo = format!("{}/{image}-base", track_reg.addr());
        let track = format!("{base_repo}:track");
        let mut toml = repo.read("Cargo.toml");
        let line = toml
            .lines()
            .find(|l| l.starts_with("base-image-track"))
            .expect("Cargo.toml follows a base track")
            .to_string();
        toml = toml.replace(&line, &format!("base-image-track = \"{track}\""));
        if registries_key {
            toml = toml.replace("registries = []", &format!("registries = [\"{}\"]", publish.addr()));
        }
        repo.write("Cargo.toml", &toml);
        repo.commit("test base track");
        // The first base: the busybox base with an id of this test's own.
        derive(
            &format!("{image}-base:1"),
            &busybox_base(),
            &format!("LABEL io.policy-platform.test-bed={image}"),
        );
        push_image(track_reg, &format!("{image}-base:1"), &format!("{image}-base"), "track");
        push_image(track_reg, &format!("{image}-base:1"), &format!("{image}-dl"), "1");
        let dl = track_reg.digest(&format!("{image}-dl"), "1").unwrap();
        let download = format!("{}/{image}-dl@{dl}", track_reg.addr());
        Bed {
            repo,
            tools: ToolServer::start(),
            trivy,
            cache: Cache::with(&[]),
            image,
            base_repo,
            track,
            download,
        }
    }

    /// `cargo xtask <args>`; for publish with the stand-in tools (no BASE_IMAGE: given per
    /// call or by the track), the pinned DOWNLOAD_IMAGE and `--registry`. Always with the
    /// publish credentials.
    fn xtask(&self, args: &[&str], to: &Registry) -> Run {
        let mut argv: Vec<String> = vec![args[0].to_string()];
        if args[0] == "publish" {
            argv.extend(tool_args(&self.tools, true));
            argv.extend(["--network".to_string(), "host".to_string()]);
            argv.extend(["--build-arg".to_string(), format!("DOWNLOAD_IMAGE={}", self.download)]);
            argv.extend(["--registry".to_string(), to.addr()]);
        }
        // The call's own arguments last: a later --build-arg wins.
        argv.extend(args[1..].iter().map(|s| s.to_string()));
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        self.repo.xtask_cmd(&argv, |c| {
            c.env("PATH", self.trivy.path_var())
                .env("TRIVY_CACHE_DIR", self.cache.path())
                .env("TRIVY_SKIP_DB_UPDATE", "true")
                .env("TRIVY_NO_PROGRESS", "true")
                .env_remove("CI")
                .env_remove("REGISTRY_PASSWORD_FILE")
                .env("REGISTRY_USERNAME", USER)
                .env("REGISTRY_PASSWORD", &to.password);
        })
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        remove_images_named(&self.image);
    }
}

const BASE_DIGEST: &str = "org.opencontainers.image.base.digest";
const BASE_NAME: &str = "org.opencontainers.image.base.name";

/// The bytes the summary of `rec` gives for its first registry, and its summary line.
fn upload(rec: &serde_json::Value) -> (u64, u64, u64, String) {
    let u = &rec["registries"][0]["upload"];
    let n = |k: &str| u[k].as_u64().unwrap_or_else(|| panic!("{k} in {u}"));
    (
        n("layers_pushed"),
        n("layers_already_there"),
        n("bytes_pushed"),
        u["summary"].as_str().unwrap().to_string(),
    )
}

/// The storage a publish added holds its layer bytes plus its config, manifest and the
/// registry's small link files (a few hundred bytes); nothing else.
fn assert_growth_matches(growth: u64, layer_bytes: u64, config_and_manifest: u64) {
    let at_least = layer_bytes + config_and_manifest;
    assert!(
        (at_least..=at_least + 4096).contains(&growth),
        "the registry grew by {growth} bytes; the summary says {layer_bytes} layer bytes (+ {config_and_manifest} config and manifest)"
    );
}

/// A public base (a registry read anonymously) moves under the track's tag: the weekly
/// job rebuilds on the new digest and labels it, pushes only the new base layer, and says
/// so; before that it moved, nothing is pushed. `bump-base` reports the pin that lags.
#[ignore = "needs Docker"]
#[test]
fn the_weekly_job_follows_a_moved_base_and_pushes_only_that() {
    let (base_reg, reg) = (Registry::start_open(), Registry::start(&password()));
    let bed = Bed::new("wk", &base_reg, &reg, false);
    let img = bed.image.as_str();
    let sk = Skopeo::login(&reg);
    let base_name = format!("{img}-base");
    let d1 = base_reg.digest(&base_name, "track").unwrap();

    // The release, on the base pinned by digest (as the Dockerfile pins its default).
    let pinned = format!("BASE_IMAGE={}@{d1}", bed.base_repo);
    ok(&bed.xtask(&["publish", "--build-arg", &pinned], &reg));
    assert_eq!(
        sk.label(img, "v1.0.0", BASE_DIGEST).as_deref(),
        Some(d1.as_str()),
        "the release records its base digest"
    );
    let released = reg.state(img);

    // Nothing moved: unchanged, nothing stored.
    let (puts, bytes) = (reg.manifest_puts(), reg.storage_bytes());
    let same = bed.xtask(&["publish", "--rebuild"], &reg);
    ok(&same);
    assert!(
        same.stdout.contains(&format!("base {} did not move ({d1})", bed.track)),
        "{same:?}"
    );
    assert!(same.stdout.contains("unchanged"), "{same:?}");
    assert_eq!(
        (reg.manifest_puts(), reg.storage_bytes()),
        (puts, bytes),
        "an unchanged rebuild pushed: {same:?}"
    );
    assert_eq!(reg.state(img), released);
    assert_eq!(record(&bed.repo)["base"]["moved"], false);

    // The base moves: a patched base (a new 1 MB layer) under the same tag.
    derive(
        &format!("{img}-base:2"),
        &format!("{img}-base:1"),
        "RUN head -c 1000000 /dev/urandom > /etc/base-patch",
    );
    push_image(&base_reg, &format!("{img}-base:2"), &base_name, "track");
    let d2 = base_reg.digest(&base_name, "track").unwrap();
    assert_ne!(d1, d2);
    docker(&["rmi", &format!("{img}-base:2")]);
    let bytes = reg.storage_bytes();
    let moved = bed.xtask(&["publish", "--rebuild"], &reg);
    ok(&moved);
    let said = format!("base {} moved {d1} → {d2}", bed.track);
    assert!(moved.stdout.contains(&said), "{moved:?}");
    let rec = record(&bed.repo);
    assert_eq!(rec["base"]["summary"], said.as_str());
    assert_eq!(
        (rec["base"]["moved"].as_bool(), rec["base"]["now"].as_str()),
        (Some(true), Some(d2.as_str()))
    );

    // What the registry holds (read with skopeo): latest on the new base, labelled so; the
    // version tag untouched; a dated tag at latest.
    assert_eq!(sk.label(img, "latest", BASE_DIGEST).as_deref(), Some(d2.as_str()));
    assert_eq!(sk.label(img, "latest", BASE_NAME), Some(format!("{}@{d2}", bed.track)));
    assert_eq!(
        reg.digest(img, "v1.0.0"),
        released.iter().find(|(t, _)| t == "v1.0.0").map(|(_, d)| d.clone())
    );
    let dated: Vec<String> = reg
        .tags(img)
        .into_iter()
        .filter(|t| t.starts_with("rebuild-"))
        .collect();
    assert_eq!(dated.len(), 1, "{:?}", reg.tags(img));
    assert_eq!(reg.digest(img, &dated[0]), reg.digest(img, "latest"));

    // Only the base's new layer went up: every part's layer is the release's.
    let (old, new) = (sk.layers(img, "v1.0.0"), sk.layers(img, "latest"));
    assert_eq!(new.len(), old.len() + 1, "one more base layer: {new:?}");
    assert_eq!(
        new[new.len() - PARTS.len()..],
        old[old.len() - PARTS.len()..],
        "the parts' layers are the release's"
    );
    let base_layer = new[1].1;
    let (pushed, there, layer_bytes, summary) = upload(&rec);
    assert_eq!(
        (pushed, there, layer_bytes),
        (1, (new.len() - 1) as u64, base_layer),
        "{rec}"
    );
    assert!(moved.stderr.contains(&summary), "the summary is printed: {moved:?}");
    assert!(
        layer_bytes <= base_layer + 1_000_000,
        "goal: no more than the base layer + 1 MB"
    );
    assert_growth_matches(
        reg.storage_bytes() - bytes,
        layer_bytes,
        sk.config_and_manifest(img, "latest"),
    );

    // bump-base: the Dockerfile's pin (the next release's base) lags the track.
    let lags = bed.xtask(&["bump-base"], &reg);
    ok(&lags);
    let line = format!("ARG BASE_IMAGE={}@{d2}", bed.track);
    assert!(
        lags.stdout.contains("the pin lags the track") && lags.stdout.lines().any(|l| l == line),
        "{lags:?}"
    );
    assert!(
        lags.stderr.contains("--no-creds"),
        "a base outside the registries is read anonymously: {lags:?}"
    );
    let df = bed.repo.read("Dockerfile");
    let old_pin = df
        .lines()
        .find(|l| l.starts_with("ARG BASE_IMAGE="))
        .unwrap()
        .to_string();
    bed.repo.write("Dockerfile", &df.replace(&old_pin, &line));
    let current = bed.xtask(&["bump-base"], &reg);
    ok(&current);
    assert!(current.stdout.contains("the pin is current"), "{current:?}");
}

/// A release that upgrades one tool pushes exactly that tool's new layer (manifests read
/// with skopeo), and its summary's bytes are what the registry stored. The track lives in
/// the registry published to: read with the publish credentials, by the rebuild and by
/// `bump-base`.
#[ignore = "needs Docker"]
#[test]
fn a_one_tool_upgrade_pushes_one_layer_and_says_how_much() {
    let reg = Registry::start(&password());
    let bed = Bed::new("tool", &reg, &reg, true);
    let img = bed.image.as_str();
    let sk = Skopeo::login(&reg);
    let d1 = reg.digest(&format!("{img}-base"), "track").unwrap();
    let pinned = format!("BASE_IMAGE={}@{d1}", bed.base_repo);
    ok(&bed.xtask(&["publish", "--build-arg", &pinned], &reg));

    let kyverno = bed.tools.add_release("kyverno", "1.20.0");
    let upgrade: Vec<String> = bed.tools.release_args(&kyverno);
    bed.repo.set_version("v1.1.0");
    let bytes = reg.storage_bytes();
    let mut args = vec!["publish", "--build-arg", &pinned];
    args.extend(upgrade.iter().map(String::as_str));
    let run = bed.xtask(&args, &reg);
    ok(&run);

    let (old, new) = (sk.layers(img, "v1.0.0"), sk.layers(img, "v1.1.0"));
    assert_eq!(old.len(), new.len());
    let changed: Vec<usize> = (0..new.len()).filter(|&i| old[i] != new[i]).collect();
    let kyverno_at = layer_of("kyverno", new.len() - PARTS.len());
    assert_eq!(
        changed,
        vec![kyverno_at],
        "only kyverno's layer is new: {old:?} → {new:?}"
    );
    let rec = record(&bed.repo);
    let (pushed, there, layer_bytes, summary) = upload(&rec);
    assert_eq!(
        (pushed, there, layer_bytes),
        (1, (new.len() - 1) as u64, new[kyverno_at].1),
        "{rec}"
    );
    assert_eq!(
        summary,
        format!(
            "pushed 1 new layer, {}; {} layers already there",
            xtask::image::plan::mb(layer_bytes),
            new.len() - 1
        )
    );
    assert!(run.stderr.contains(&summary), "{run:?}");
    assert_growth_matches(
        reg.storage_bytes() - bytes,
        layer_bytes,
        sk.config_and_manifest(img, "v1.1.0"),
    );

    // The weekly job reads the track with the publish credentials; nothing moved.
    let puts = reg.manifest_puts();
    let mut weekly = vec!["publish", "--rebuild"];
    weekly.extend(upgrade.iter().map(String::as_str));
    let same = bed.xtask(&weekly, &reg);
    ok(&same);
    assert!(
        same.stdout.contains("did not move") && same.stdout.contains("unchanged"),
        "{same:?}"
    );
    assert_eq!(reg.manifest_puts(), puts, "{same:?}");
    // bump-base too (the registry refuses anonymous reads).
    let lags = bed.xtask(&["bump-base"], &reg);
    ok(&lags);
    assert!(
        lags.stdout
            .lines()
            .any(|l| l == format!("ARG BASE_IMAGE={}@{d1}", bed.track)),
        "{lags:?}"
    );
    assert!(!lags.all().contains(&reg.password), "{lags:?}");
}
