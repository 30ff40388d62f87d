//! The weekly job watches what is published (issue 8): an unchanged `publish --rebuild`
//! re-scans the published image with today's vulnerability DB and stops (exit 1, nothing
//! pushed) on a new finding at gate severity; a changed rebuild signs and attests its new
//! digest like a release. Real Docker, registry, Trivy (an offline DB of the test's own)
//! and openssl; signatures judged by the independent checker (`support/cosign_check.py`).
mod support;

use support::bed::{canary, ok, with_password, Bed};
use support::image::{as_strs, base_args};
use support::registry::{push_image, Registry};
use support::signing::{self, Keys};
use support::trivy::{alpine_files, Advisory, Cache};
use support::{docker, TempDir};

/// A base of the bed's own with Alpine's package metadata (busybox 1.37.0-r18), pushed to
/// `reg` as `<image>-base:1` (the weekly job pulls its base); its reference.
fn alpine_base(bed: &Bed, reg: &Registry, tag: &str, extra: &str) -> String {
    let dir = TempDir::new("alpine-base");
    let mut df = format!("FROM {}\n", bed.base);
    for (path, content) in alpine_files(&[("busybox", "1.37.0-r18")]) {
        let p = dir.path().join("ctx").join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    df.push_str("COPY ctx/ /\n");
    df.push_str(extra);
    std::fs::write(dir.path().join("Dockerfile"), df).unwrap();
    let local = format!("{}-alpine:{tag}", bed.image);
    let b = docker(&["build", "-q", "-t", &local, dir.path().to_str().unwrap()]);
    assert_eq!(b.code, 0, "{b:?}");
    let pushed = push_image(reg, &local, &format!("{}-base", bed.image), "1");
    docker(&["rmi", "-f", &local]);
    pushed
}

fn manifest_puts_and_state(reg: &Registry, img: &str) -> (usize, Vec<(String, String)>) {
    (reg.manifest_puts(), reg.state(img))
}

#[test]
#[ignore = "needs Docker"]
fn an_unchanged_rebuild_with_a_new_critical_in_the_db_fails_and_pushes_nothing() {
    let bed = Bed::new("rescan");
    let reg = Registry::start(canary());
    let img = bed.image.as_str();
    let base = alpine_base(&bed, &reg, "1", "");
    let args = base_args(&base);
    let build = as_strs(&args);
    ok(&bed.publish(&[&reg], &build, Some(canary())));
    let released = reg.digest(img, "latest").unwrap();

    // Today's DB knows nothing yet: unchanged, scanned, nothing pushed.
    let before = manifest_puts_and_state(&reg, img);
    let mut rebuild = vec!["--rebuild"];
    rebuild.extend_from_slice(&build);
    let same = bed.publish(&[&reg], &rebuild, Some(canary()));
    ok(&same);
    assert!(
        same.stdout.contains("unchanged") && same.stderr.contains("scanning it with today's DB"),
        "{same:?}"
    );
    assert_eq!(manifest_puts_and_state(&reg, img), before);
    assert_eq!(bed.record()["status"], "unchanged");
    assert!(
        bed.record()["scan"]["counts"]["CRITICAL"].is_object(),
        "{}",
        bed.record()
    );

    // A CRITICAL published against the image's busybox since: exit 1, the CVE and its fix
    // named, the report written, nothing pushed, latest where it was.
    let db = Cache::with(&[Advisory {
        id: "CVE-2099-4242",
        pkg: "busybox",
        fixed: "1.37.0-r19",
        severity: "CRITICAL",
    }]);
    let found = bed.publish_with(&[&reg], &rebuild, |c| {
        with_password(c, Some(canary()));
        c.env("TRIVY_CACHE_DIR", db.path());
    });
    assert_eq!(found.code, 1, "{found:?}");
    let line = found.error_line();
    assert!(
        line.contains("CVE-2099-4242 in busybox 1.37.0-r18 (fixed in 1.37.0-r19)"),
        "{line}"
    );
    assert!(line.contains(&released) && line.contains("new finding"), "{line}");
    assert!(
        !found.stderr.contains("$ docker push") && !found.stderr.contains(" copy "),
        "{found:?}"
    );
    assert_eq!(manifest_puts_and_state(&reg, img), before, "a failing rescan pushed");
    let rec = bed.record();
    assert_eq!(
        (rec["status"].as_str(), rec["exit_code"].as_i64()),
        (Some("failed"), Some(1)),
        "{rec}"
    );
    let report: serde_json::Value = serde_json::from_str(&bed.repo.read("target/xtask/scan/v1.0.0.json")).unwrap();
    assert!(
        report.to_string().contains("CVE-2099-4242"),
        "the report names the finding"
    );
}

#[test]
#[ignore = "needs Docker"]
fn a_changed_rebuild_is_signed_and_attested_like_a_release() {
    let bed = Bed::new("rebuild-sign");
    let reg = Registry::start(canary());
    let img = bed.image.as_str();
    let keys = Keys::new();
    let pair = keys.pkcs8("release");
    signing::configure(&bed.repo, &pair.public, &[]);
    let base = alpine_base(&bed, &reg, "1", "");
    let args = base_args(&base);
    let build = as_strs(&args);
    let key = |c: &mut std::process::Command| {
        with_password(c, Some(canary()));
        c.env("SIGNING_KEY_FILE", &pair.key);
    };
    ok(&bed.publish_with(&[&reg], &build, key));
    let released = reg.digest(img, "latest").unwrap();

    // The base moves (a patched base under the same tag): latest gets a new digest, and
    // that digest is signed and attested.
    alpine_base(&bed, &reg, "2", "RUN echo patched > /etc/base-patch\n");
    let mut rebuild = vec!["--rebuild"];
    rebuild.extend_from_slice(&build);
    // Its dry run shows the SBOM step on the image it would build (a name: no id yet).
    let mut dry = rebuild.clone();
    dry.push("--dry-run");
    let plan = bed.publish_with(&[&reg], &dry, key);
    ok(&plan);
    let sbom_step = plan
        .stderr
        .lines()
        .find(|l| l.contains("--format cyclonedx"))
        .unwrap_or_else(|| panic!("no SBOM step in the plan: {plan:?}"));
    assert!(sbom_step.contains(&format!("--image-src docker {img}:")), "{sbom_step}");
    assert_eq!(
        reg.digest(img, "latest").as_deref(),
        Some(released.as_str()),
        "a dry run pushed"
    );
    let moved = bed.publish_with(&[&reg], &rebuild, key);
    ok(&moved);
    let latest = reg.digest(img, "latest").unwrap();
    assert_ne!(latest, released, "{moved:?}");
    signing::need_python();
    {
        let v = signing::check(&reg, img, &latest, &pair.public).unwrap_or_else(|(c, e)| panic!("exit {c}: {e}"));
        assert_eq!(
            v["signature"]["payloads"][0]["critical"]["image"]["docker-manifest-digest"],
            latest.as_str(),
            "{v}"
        );
        assert_eq!(
            v["provenance"]["buildDefinition"]["externalParameters"]["version"], "v1.0.0",
            "{v}"
        );
        assert_eq!(v["sbom"]["bomFormat"], "CycloneDX", "{v}");
    }
    let verify = bed
        .repo
        .xtask_cmd(&["verify", &format!("{}/{img}:latest", reg.addr())], |c| {
            with_password(c, Some(canary()));
        });
    assert_eq!(verify.code, 0, "{verify:?}");
    assert!(verify.stdout.contains(&latest), "{verify:?}");
    assert!(bed.record()["signing"]["fingerprint"].is_string(), "{}", bed.record());
}
