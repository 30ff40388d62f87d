//! Signed, attested releases and `cargo xtask verify`, on the real parts: Docker, registries
//! with htpasswd auth on 127.0.0.1, openssl, skopeo, Trivy. What the xtask pushes is judged
//! by an independent checker (`support/cosign_check.py`: Python's `cryptography`, written
//! from cosign's SIGNATURE_SPEC and ATTESTATION_SPEC, the DSSE protocol and in-toto
//! Statement v1, reading the registry over its HTTP API), never by the xtask's own code.
//! Keys come from the real openssl, in a temp folder outside the repo copy.
mod support;

use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use support::bed::{built, canary, ok, with_password, Bed};
use support::fakebin::FakeBin;
use support::image::{as_strs, base_args, pinned_versions};
use support::registry::{push_image, ArgvWatch, Registry};
use support::signing::{self, check, Keys};
use support::{xtask_bin, Run, TempDir, TempRepo};

const UNSIGNED: &str = "this release will be UNSIGNED";

fn tag_of(digest: &str, suffix: &str) -> String {
    format!("{}.{suffix}", digest.replacen(':', "-", 1))
}

/// `cargo xtask verify ARGS` in the bed's repo, with the registry credentials.
fn verify(bed: &Bed, args: &[&str]) -> Run {
    let mut a = vec!["verify"];
    a.extend_from_slice(args);
    bed.repo.xtask_cmd(&a, |c| {
        with_password(c, Some(canary()));
        c.env_remove("SIGNING_KEY_FILE")
            .env_remove("SIGNING_KEY_PASSWORD")
            .env_remove("SIGNING_KEY_PASSWORD_FILE");
    })
}

/// The resolved dependency `name` of a SLSA v1 provenance.
fn dep<'a>(prov: &'a Value, name: &str) -> &'a Value {
    prov["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .and_then(|a| a.iter().find(|d| d["name"] == name))
        .unwrap_or_else(|| panic!("no dependency {name} in {prov}"))
}

fn ok_check(reg: &Registry, img: &str, digest: &str, public: &Path) -> Value {
    check(reg, img, digest, public)
        .unwrap_or_else(|(c, e)| panic!("{}/{img}@{digest} does not verify (exit {c}): {e}", reg.addr()))
}

fn bad_check(reg: &Registry, img: &str, digest: &str, public: &Path) -> String {
    match check(reg, img, digest, public) {
        Ok(v) => panic!("{}/{img}@{digest} verifies, yet should not: {v}", reg.addr()),
        Err((1, why)) => why,
        Err((c, why)) => panic!("exit {c}: {why}"),
    }
}

/// A signed release in two registries, checked by the independent checker (signature,
/// both attestations, subjects, payload digest, and what the provenance says against what
/// the test built from); `verify` (default REF, a full reference, `--key`); the record and
/// the CI summary. Then what `verify` must refuse: a tag overwritten by another image, a
/// wrong key, a `.sig` copied from another digest, a missing `.att` (exit 1), bad input
/// (exit 2), a registry that is down (exit 3).
#[ignore = "needs Docker"]
#[test]
fn a_signed_release_verifies_independently_and_verify_refuses_tampering() {
    let bed = Bed::new("sign");
    signing::need_python();
    let (r1, r2) = (Registry::start(canary()), Registry::start(canary()));
    let img = bed.image.as_str();
    let keys = Keys::new();
    let pair = keys.pkcs8("release");
    let stranger = keys.pkcs8("stranger");
    signing::configure(&bed.repo, &pair.public, &[&r1, &r2]);
    let fp = signing::fingerprint(&pair.public);
    assert!(fp.starts_with("SHA256:") && fp.len() == 71, "{fp}");

    // The base comes from a registry, so it has a manifest digest to record, and holds a
    // Python package, so the SBOM has a component this test put there.
    let base_name = format!("{img}-base");
    let ctx = TempDir::new("pybase");
    let meta = ctx
        .path()
        .join("usr/lib/python3/site-packages/pp_test_pkg-1.2.3.dist-info");
    std::fs::create_dir_all(&meta).unwrap();
    std::fs::write(
        meta.join("METADATA"),
        "Metadata-Version: 2.1\nName: pp-test-pkg\nVersion: 1.2.3\n",
    )
    .unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {}\nCOPY usr /usr\n", bed.base),
    )
    .unwrap();
    let local_base = format!("{img}-pybase:1");
    let b = support::docker(&["build", "-q", "-t", &local_base, ctx.path().to_str().unwrap()]);
    assert_eq!(b.code, 0, "{b:?}");
    let base = push_image(&r1, &local_base, &base_name, "1");
    let base_digest = r1.digest(&base_name, "1").unwrap();
    let on_base = base_args(&base);
    let page = TempDir::new("step-summary");
    let summary = page.path().join("summary.md");
    let run = bed.publish_with(&[&r1, &r2], &as_strs(&on_base), |c| {
        with_password(c, Some(canary()));
        c.env("SIGNING_KEY_FILE", &pair.key)
            .env("CI", "true")
            .env("GITHUB_STEP_SUMMARY", &summary)
            .env("GITHUB_SERVER_URL", "https://github.example")
            .env(
                "GITHUB_WORKFLOW_REF",
                "org/pp/.github/workflows/release.yml@refs/heads/main",
            )
            .env("GITHUB_REPOSITORY", "org/pp")
            .env("GITHUB_RUN_ID", "77")
            .env("GITHUB_ACTIONS", "true");
    });
    ok(&run);
    assert!(!run.stderr.contains(UNSIGNED), "{run:?}");
    // The push to both registries, signing included, is one closed log group.
    let push: Vec<&str> = run
        .stderr
        .lines()
        .skip_while(|l| !l.starts_with("::group::push to"))
        .take_while(|l| !l.starts_with("::group::verify"))
        .filter(|l| l.starts_with("::"))
        .collect();
    assert_eq!(
        push,
        [
            format!("::group::push to {}, {}", r1.addr(), r2.addr()).as_str(),
            "::endgroup::"
        ],
        "{run:?}"
    );
    let head = bed.head();
    let rec = bed.record();
    let labels_policy_hash = rec["policy_hash"].as_str().unwrap().to_string();
    let sbom_rel = rec["signing"]["sbom"]["path"]
        .as_str()
        .unwrap_or_else(|| panic!("no SBOM path: {rec}"))
        .to_string();
    let sbom_file: Value = serde_json::from_str(&bed.repo.read(&sbom_rel)).unwrap();
    let pins = pinned_versions();
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.contains(&fp), "{md}");
    assert!(md.contains(&sbom_rel), "{md}");

    let mut digests = Vec::new();
    for (i, r) in [&r1, &r2].into_iter().enumerate() {
        let d = r.digest(img, "v1.0.0").unwrap();
        let (sig, att) = (tag_of(&d, "sig"), tag_of(&d, "att"));
        let sha = format!("sha-{}", &head[..7]);
        let mut want = vec![
            "latest".to_string(),
            sha,
            "v1.0.0".to_string(),
            sig.clone(),
            att.clone(),
        ];
        want.sort();
        assert_eq!(r.tags(img), want, "tags in {}", r.addr());

        let rep = ok_check(r, img, &d, &pair.public);
        assert_eq!(rep["fingerprint"], fp.as_str());
        assert_eq!(rep["attestations"]["foreign"], serde_json::json!([]), "{rep}");
        assert_eq!(
            (
                rep["signature"]["layers"].as_u64(),
                rep["attestations"]["layers"].as_u64()
            ),
            (Some(1), Some(2)),
            "{rep}"
        );
        assert_eq!(rep["signature"]["digest"].as_str(), r.digest(img, &sig).as_deref());
        assert_eq!(rep["attestations"]["digest"].as_str(), r.digest(img, &att).as_deref());

        // What the signed provenance says, against what this test built from.
        let prov = &rep["provenance"];
        let ext = &prov["buildDefinition"]["externalParameters"];
        assert_eq!(
            (ext["version"].as_str(), ext["commit"].as_str()),
            (Some("v1.0.0"), Some(head.as_str())),
            "{prov}"
        );
        assert_eq!(dep(prov, "source")["digest"]["gitCommit"], head.as_str());
        let b = dep(prov, "base-image");
        assert!(b["uri"].as_str().unwrap().contains(&base), "{b}");
        assert_eq!(
            b["digest"]["sha256"].as_str(),
            base_digest.strip_prefix("sha256:"),
            "the base image's digest: {b}"
        );
        for t in &bed.tools.tools {
            assert_eq!(
                pins[&t.name], t.version,
                "the build used the Dockerfile's pin of {}",
                t.name
            );
            let d = dep(prov, &format!("{}@{}", t.name, t.version));
            assert_eq!(d["uri"], bed.tools.url(&t.name).as_str(), "{d}");
            assert_eq!(d["digest"]["sha256"], t.sha256.as_str(), "{d}");
        }
        let policy = dep(prov, "policies");
        assert_eq!(
            policy["digest"]["sha256"], rep["labels"]["io.policy-platform.policy-hash"],
            "{policy}"
        );
        assert_eq!(policy["digest"]["sha256"], labels_policy_hash.as_str());
        assert_eq!(
            prov["runDetails"]["builder"]["id"],
            "https://github.example/org/pp/.github/workflows/release.yml@refs/heads/main"
        );
        assert_eq!(
            prov["runDetails"]["metadata"]["invocationId"],
            "https://github.example/org/pp/actions/runs/77/attempts/1"
        );
        assert_eq!(
            rep["sbom"], sbom_file,
            "the attested SBOM is the one saved under target/xtask"
        );
        let listed = rep["sbom"]["components"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["name"] == "pp-test-pkg" && c["version"] == "1.2.3");
        assert!(listed, "the base's package is not in the SBOM: {}", rep["sbom"]);

        // The record and the CI summary name the same tags and digests.
        let s = &rec["signing"]["registries"][i];
        assert_eq!(s["repository"], format!("{}/{img}", r.addr()).as_str(), "{rec}");
        assert_eq!(
            (s["signature"]["tag"].as_str(), s["signature"]["digest"].as_str()),
            (Some(sig.as_str()), rep["signature"]["digest"].as_str())
        );
        assert_eq!(
            (s["attestations"]["tag"].as_str(), s["attestations"]["digest"].as_str()),
            (Some(att.as_str()), rep["attestations"]["digest"].as_str())
        );
        for needle in [
            &sig,
            &att,
            rep["signature"]["digest"].as_str().unwrap(),
            rep["attestations"]["digest"].as_str().unwrap(),
        ] {
            assert!(md.contains(needle), "{needle} not in the summary: {md}");
        }
        digests.push((d, rep));
    }
    assert_eq!(rec["signing"]["fingerprint"], fp.as_str());
    assert_eq!(
        rec["signing"]["sbom"]["components"].as_u64(),
        digests[0].1["sbom_components"].as_u64()
    );

    // verify, default REF: latest in both configured registries.
    let v = verify(&bed, &[]);
    ok(&v);
    let base_line = format!("{base} {base_digest}");
    for (r, (d, rep)) in [&r1, &r2].into_iter().zip(&digests) {
        assert!(v.stdout.contains(&format!("verified {}/{img}@{d}", r.addr())), "{v:?}");
        let n = rep["sbom_components"].as_u64().unwrap();
        assert!(v.stdout.contains(&format!("SBOM           {n} components")), "{v:?}");
    }
    for want in [
        format!("signed by      {fp}"),
        "version        v1.0.0".into(),
        format!("commit         {head}"),
        base_line.clone(),
    ] {
        assert_eq!(v.stdout.matches(&want).count(), 2, "`{want}` once per registry: {v:?}");
    }
    for t in &bed.tools.tools {
        assert!(v.stdout.contains(&format!("{} {}", t.name, t.version)), "{v:?}");
    }
    // A full reference, and the key given with --key (from outside the repo).
    let full = format!("{}/{img}:v1.0.0", r2.addr());
    let v = verify(&bed, &["--key", pair.public.to_str().unwrap(), &full]);
    ok(&v);
    assert!(
        v.stdout
            .contains(&format!("verified {}/{img}@{}", r2.addr(), digests[1].0)),
        "{v:?}"
    );
    assert_eq!(v.stdout.matches("verified ").count(), 1, "{v:?}");

    // By digest.
    let by_digest = format!("{}/{img}@{}", r1.addr(), digests[0].0);
    let v = verify(&bed, &[&by_digest]);
    ok(&v);
    assert!(v.stdout.contains(&format!("verified {by_digest}")), "{v:?}");

    // A wrong public key: exit 1 (and the independent checker agrees).
    let wrong = verify(&bed, &["--key", stranger.public.to_str().unwrap(), &full]);
    assert_eq!(wrong.code, 1, "{wrong:?}");
    assert!(wrong.error_line().contains("does not verify"), "{wrong:?}");
    assert!(bad_check(&r2, img, &digests[1].0, &stranger.public).contains("does not verify"));

    // Another party's attestation appended to r2's `.att` (a security team's `cosign attest
    // --key`): ours still verify and theirs is skipped, as cosign skips it.
    let vuln = "https://cosign.sigstore.dev/attestation/vuln/v1";
    let att_digest = signing::append_attestation(&r2, img, &digests[1].0, &stranger.key, vuln);
    assert_eq!(
        r2.digest(img, &tag_of(&digests[1].0, "att")).as_deref(),
        Some(att_digest.as_str())
    );
    let rep = ok_check(&r2, img, &digests[1].0, &pair.public);
    assert_eq!(rep["attestations"]["foreign"], serde_json::json!([vuln]), "{rep}");
    let appended = verify(&bed, &[&full]);
    ok(&appended);
    assert!(appended.stdout.contains(&format!("({att_digest})")), "{appended:?}");

    // latest overwritten by another image (pushed by anyone holding the password): exit 1.
    push_image(&r1, &bed.base, img, "latest");
    let other = r1.digest(img, "latest").unwrap();
    assert_ne!(other, digests[0].0);
    let over = verify(&bed, &[]);
    assert_eq!(over.code, 1, "{over:?}");
    let line = over.error_line();
    assert!(line.contains(&other) && line.contains("no signature"), "{line}");
    assert!(bad_check(&r1, img, &other, &pair.public).contains(&tag_of(&other, "sig")));

    // The real release's .sig copied to the other image's .sig tag: a valid signature,
    // but for another digest: exit 1.
    signing::copy_tag(&r1, img, &tag_of(&digests[0].0, "sig"), &tag_of(&other, "sig"));
    let copied = verify(&bed, &[]);
    assert_eq!(copied.code, 1, "{copied:?}");
    let line = copied.error_line();
    assert!(line.contains(&other) && line.contains(&digests[0].0), "{line}");
    assert!(bad_check(&r1, img, &other, &pair.public).contains(&format!("names {}", digests[0].0)));

    // The attestations gone from r2: exit 1.
    signing::delete_manifest(&r2, img, &att_digest);
    let gone = verify(&bed, &[&full]);
    assert_eq!(gone.code, 1, "{gone:?}");
    assert!(gone.error_line().contains(&tag_of(&digests[1].0, "att")), "{gone:?}");
    assert!(bad_check(&r2, img, &digests[1].0, &pair.public).contains(".att"));

    // Bad input: exit 2.
    for bad in [
        format!("{}/{img}@sha256:zz", r1.addr()),
        "-x".to_string(),
        format!("{img}:v1.0.0"),
    ] {
        let r = verify(&bed, &[&bad]);
        assert_eq!(r.code, 2, "{bad}: {r:?}");
        r.error_line();
    }
    let missing = verify(&bed, &["--key", "/nonexistent/cosign.pub", &full]);
    assert_eq!(missing.code, 2, "{missing:?}");
    assert!(missing.error_line().contains("/nonexistent/cosign.pub"), "{missing:?}");
    let plain = TempRepo::new();
    let nokey = plain.xtask_cmd(&["verify", &full], |c| with_password(c, Some(canary())));
    assert_eq!(nokey.code, 2, "{nokey:?}");
    assert!(nokey.error_line().contains("--key"), "{nokey:?}");

    // The registry down: exit 3.
    r2.stop();
    let down = verify(&bed, &[&full]);
    assert_eq!(down.code, 3, "{down:?}");
    assert!(down.error_line().contains(&r2.addr()), "{down:?}");
    r2.restart();
    assert!(!format!("{v:?}{over:?}{copied:?}{gone:?}{down:?}").contains(canary()));
    let _ = support::docker(&["rmi", "-f", &base, &local_base]);
}

/// Preflight checks the key before anything is built: a key whose public half is not the
/// committed one (exit 2 naming both fingerprints), no key, an encrypted key without or
/// with a wrong password. With its password (from SIGNING_KEY_PASSWORD, then from
/// SIGNING_KEY_PASSWORD_FILE) it signs; and neither the key nor its password shows up in
/// any argv, output, file of the repo copy or child's environment.
#[ignore = "needs Docker"]
#[test]
fn preflight_checks_the_key_and_secrets_stay_secret() {
    let bed = Bed::new("signkey");
    signing::need_python();
    let reg = Registry::start(canary());
    let img = bed.image.as_str();
    let keys = Keys::new();
    let password = format!("keypw{}x-never-shown", std::process::id());
    let release = keys.encrypted("release", &password);
    let stranger = keys.pkcs8("stranger");
    signing::configure(&bed.repo, &release.public, &[]);
    let publish = |env: &[(&str, &Path)], pw: Option<&str>| {
        bed.publish_with(&[&reg], &[], |c| {
            with_password(c, Some(canary()));
            for (k, v) in env {
                c.env(k, v);
            }
            if let Some(p) = pw {
                c.env("SIGNING_KEY_PASSWORD", p);
            }
        })
    };
    let refused = |r: &Run, needles: &[&str]| {
        assert_eq!(r.code, 2, "{r:?}");
        let line = r.error_line();
        for n in needles {
            assert!(line.contains(n), "`{n}` not in {line}");
        }
        assert!(!built(r), "built before refusing: {r:?}");
        assert!(reg.catalog().is_empty(), "something was pushed");
    };

    // The wrong key: both fingerprints named (as the independent checker computes them).
    let r = publish(&[("SIGNING_KEY_FILE", &stranger.key)], None);
    refused(
        &r,
        &[
            &signing::fingerprint(&stranger.public),
            &signing::fingerprint(&release.public),
        ],
    );
    // Signing configured, no key.
    refused(&publish(&[], None), &["SIGNING_KEY_FILE"]);
    // The encrypted key without, then with a wrong password.
    refused(
        &publish(&[("SIGNING_KEY_FILE", &release.key)], None),
        &["SIGNING_KEY_PASSWORD"],
    );
    let wrong = "not-the-key-password";
    let r = publish(&[("SIGNING_KEY_FILE", &release.key)], Some(wrong));
    refused(&r, &["SIGNING_KEY_PASSWORD"]);
    assert!(!r.all().contains(wrong));
    // Not a usable P-256 private key: another curve, the public key file itself; and a
    // password file that is not there.
    let p384 = keys.p384("p384");
    refused(&publish(&[("SIGNING_KEY_FILE", &p384.key)], None), &["P-256"]);
    let public_as_key = publish(&[("SIGNING_KEY_FILE", &release.public)], None);
    refused(&public_as_key, &[release.public.to_str().unwrap()]);
    let no_file = Path::new("/nonexistent/pp-test-password");
    let r = publish(
        &[
            ("SIGNING_KEY_FILE", &release.key),
            ("SIGNING_KEY_PASSWORD_FILE", no_file),
        ],
        None,
    );
    refused(&r, &["SIGNING_KEY_PASSWORD_FILE"]);
    // A dry run with the key and its password: nothing pushed, no secret shown.
    let dry = bed.publish_with(&[&reg], &["--dry-run"], |c| {
        with_password(c, Some(canary()));
        c.env("SIGNING_KEY_FILE", &release.key)
            .env("SIGNING_KEY_PASSWORD", &password);
    });
    ok(&dry);
    assert!(reg.catalog().is_empty(), "a dry run pushed");
    assert!(!dry.all().contains(&password));

    // With its password: signed.
    let r = publish(&[("SIGNING_KEY_FILE", &release.key)], Some(&password));
    ok(&r);
    let d = reg.digest(img, "v1.0.0").unwrap();
    ok_check(&reg, img, &d, &release.public);
    assert!(!r.all().contains(&password));

    // From a password file, under watch: argv, output, files, children's environments.
    bed.set_version("v1.0.1");
    let pw_file = keys.dir.path().join("password");
    std::fs::write(&pw_file, format!("{password}\n")).unwrap();
    let fake = FakeBin::new();
    let wrapped = ["openssl", "skopeo", "docker", "git", "sha256sum"];
    for t in wrapped {
        fake.wrap_env(t);
    }
    fake.wrap_env_of("trivy", &support::trivy::binary());
    let pem = release.pem();
    let plain = keys.decrypted(&release);
    let mut secrets = vec![password.clone()];
    secrets.extend(support::signing::KeyPair::body(&pem));
    secrets.extend(support::signing::KeyPair::body(&plain));
    assert!(secrets.len() >= 3, "{secrets:?}");
    let watches: Vec<ArgvWatch> = secrets.iter().map(|s| ArgvWatch::start(s)).collect();
    let r = bed.publish_with(&[&reg], &[], |c| {
        with_password(c, Some(canary()));
        c.env("SIGNING_KEY_FILE", &release.key)
            .env("SIGNING_KEY_PASSWORD_FILE", &pw_file)
            .env("PATH", fake.path_before(&bed.trivy.path_var()));
    });
    let watched: Vec<(Vec<String>, usize)> = watches.into_iter().map(ArgvWatch::finish).collect();
    ok(&r);
    let d = reg.digest(img, "v1.0.1").unwrap();
    ok_check(&reg, img, &d, &release.public);
    for (hits, scans) in &watched {
        assert!(hits.is_empty(), "a key secret was in argv: {hits:?}");
        assert!(*scans > 10, "the argv watch barely ran ({scans} scans)");
    }
    for s in &secrets {
        assert!(!r.all().contains(s.as_str()), "a key secret is in the output");
        bed.assert_not_in_files(s, "a key secret");
    }
    let envs = fake.envs();
    assert!(
        envs.iter().any(|d| d.tool == "openssl" && d.argv.contains("-sign")),
        "openssl signed through its wrapper"
    );
    for d in &envs {
        for (k, v) in &d.vars {
            assert!(!k.starts_with("SIGNING_KEY"), "`{} {}` got {k}", d.tool, d.argv);
            assert!(
                secrets.iter().all(|s| !v.contains(s.as_str())),
                "`{} {}`: {k} holds a key secret",
                d.tool,
                d.argv
            );
        }
    }

    // The registry stops after the image's tags are pushed, before its signature: exit 3,
    // latest not moved; the rerun resumes from the pushed image (no build), signs it, and
    // only then moves latest.
    bed.set_version("v1.0.2");
    let latest = reg.digest(img, "latest").unwrap();
    reg.stop_after_pushes(2);
    let r = publish(&[("SIGNING_KEY_FILE", &release.key)], Some(&password));
    assert_eq!(r.code, 3, "{r:?}");
    let line = r.error_line();
    reg.restart();
    let d = reg.digest(img, "v1.0.2").expect("the image got its version tag");
    assert!(
        line.contains(&reg.addr()) && line.contains(&tag_of(&d, "sig")),
        "stopped at its signature: {line}"
    );
    assert_eq!(
        reg.digest(img, "latest").as_deref(),
        Some(latest.as_str()),
        "latest moved before the signature"
    );
    assert!(check(&reg, img, &d, &release.public).is_err());
    let again = publish(&[("SIGNING_KEY_FILE", &release.key)], Some(&password));
    ok(&again);
    assert!(again.stderr.contains("resuming") && !built(&again), "{again:?}");
    let rep = ok_check(&reg, img, &d, &release.public);
    assert_eq!(
        rep["provenance"]["buildDefinition"]["externalParameters"]["version"],
        "v1.0.2"
    );
    assert_eq!(reg.digest(img, "latest").as_deref(), Some(d.as_str()));
    assert!(!again.all().contains(&password));
    let rec = bed.record();
    assert_eq!(
        rec["signing"]["registries"][0]["signature"]["tag"],
        tag_of(&d, "sig").as_str(),
        "{rec}"
    );
    assert_eq!(
        rec["signing"]["registries"][0]["signature"]["digest"], rep["signature"]["digest"],
        "{rec}"
    );
}

/// Not configured: the release is unsigned, says so once, and has no `.sig`. A key given
/// anyway is refused. Once signing is configured (a SEC1 key), `--rollback` refuses the
/// unsigned version (exit 1, latest unchanged), and a version whose signature is gone from
/// one of two registries (exit 1, latest unchanged in both: nothing moves before every
/// registry's copy verifies); it goes back to a signed one.
#[ignore = "needs Docker"]
#[test]
fn unsigned_releases_warn_and_rollback_goes_back_only_to_a_signed_one() {
    let bed = Bed::new("signrb");
    signing::need_python();
    let (r1, r2) = (Registry::start(canary()), Registry::start(canary()));
    let regs = [&r1, &r2];
    let img = bed.image.as_str();
    let keys = Keys::new();
    let sec1 = keys.sec1("release");
    let state = || regs.map(|r| r.state(img));

    let stray = bed.publish_with(&regs, &[], |c| {
        with_password(c, Some(canary()));
        c.env("SIGNING_KEY_FILE", &sec1.key);
    });
    assert_eq!(stray.code, 2, "{stray:?}");
    assert!(stray.error_line().contains("signing-public-key"), "{stray:?}");
    assert!(!built(&stray));

    let page = TempDir::new("step-summary");
    let summary = page.path().join("summary.md");
    let unsigned = bed.publish_with(&regs, &[], |c| {
        with_password(c, Some(canary()));
        c.env("CI", "true").env("GITHUB_STEP_SUMMARY", &summary);
    });
    ok(&unsigned);
    assert_eq!(unsigned.stderr.matches(UNSIGNED).count(), 1, "{unsigned:?}");
    for r in regs {
        assert_eq!(r.tags(img).len(), 3, "{:?}", r.tags(img));
        assert!(
            r.tags(img).iter().all(|t| !t.ends_with(".sig") && !t.ends_with(".att")),
            "{:?}",
            r.tags(img)
        );
    }
    assert!(bed.record()["signing"].is_null());
    assert!(std::fs::read_to_string(&summary).unwrap().contains("Unsigned"));
    let v100 = r1.digest(img, "v1.0.0").unwrap();

    signing::configure(&bed.repo, &sec1.public, &[]);
    let signed = |v: &str| {
        bed.repo.set_version(v);
        let r = bed.publish_with(&regs, &[], |c| {
            with_password(c, Some(canary()));
            c.env("SIGNING_KEY_FILE", &sec1.key);
        });
        ok(&r);
        assert!(!r.stderr.contains(UNSIGNED), "{r:?}");
        let d = r1.digest(img, v).unwrap();
        for reg in regs {
            assert_eq!(reg.digest(img, v).as_deref(), Some(d.as_str()));
            ok_check(reg, img, &d, &sec1.public);
        }
        d
    };
    let rollback = |v: &str| bed.publish(&regs, &["--rollback", v], Some(canary()));
    let v110 = signed("v1.1.0");
    assert_ne!(v100, v110);
    assert_eq!(r1.digest(img, "latest").as_deref(), Some(v110.as_str()));

    let before = state();
    let rb = rollback("v1.0.0");
    assert_eq!(rb.code, 1, "{rb:?}");
    let line = rb.error_line();
    assert!(line.contains("v1.0.0") && line.contains("signature"), "{line}");
    assert_eq!(state(), before, "a refused rollback changed a registry");

    // v1.1.0's signature gone from the second registry only.
    let sig = r2.digest(img, &tag_of(&v110, "sig")).unwrap();
    signing::delete_manifest(&r2, img, &sig);
    bad_check(&r2, img, &v110, &sec1.public);
    let v120 = signed("v1.2.0");
    let before = state();
    let rb = rollback("v1.1.0");
    assert_eq!(rb.code, 1, "{rb:?}");
    assert!(rb.error_line().contains(&r2.addr()), "{rb:?}");
    assert_eq!(
        state(),
        before,
        "a rollback refused in one registry moved latest in another"
    );
    assert_eq!(r1.digest(img, "latest").as_deref(), Some(v120.as_str()));

    let v130 = signed("v1.3.0");
    let rb = rollback("v1.2.0");
    ok(&rb);
    assert!(!built(&rb));
    for r in regs {
        assert_eq!(r.digest(img, "latest").as_deref(), Some(v120.as_str()));
        assert_eq!(r.digest(img, "v1.3.0").as_deref(), Some(v130.as_str()));
    }
}

/// A registry started from `publish --local`'s kept storage, as its recipe says; killed
/// on drop.
struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `publish --local` signs and attests with a throwaway key pair; its printed verify
/// command, run with the registry started again from the kept storage as the printed
/// recipe says, exits 0; the independent checker agrees.
#[ignore = "needs Docker"]
#[test]
fn local_release_is_signed_and_its_printed_verify_command_passes() {
    let bed = Bed::new("signlocal");
    signing::need_python();
    let mirror = bed.tools.base_url();
    let run = bed.publish(&[], &["--local", "--tools-mirror", &mirror], None);
    ok(&run);
    let line = |needle: &str| {
        run.stdout
            .lines()
            .find(|l| l.contains(needle))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no `{needle}` line: {run:?}"))
            .to_string()
    };
    let serve = line("docker-registry serve ");
    let config = serve
        .trim_start_matches("docker-registry serve ")
        .trim_end_matches('&')
        .trim()
        .to_string();
    let command = line("cargo xtask verify");
    let pull = line("docker pull ");
    let (repo, digest) = pull.trim_start_matches("docker pull ").split_once('@').unwrap();
    let addr = repo.split('/').next().unwrap().to_string();
    assert!(std::net::TcpStream::connect(&addr).is_err(), "the registry still runs");

    // As the recipe says, from the repo root.
    let log = TempDir::new("served");
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(&config)
        .current_dir(bed.repo.path())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(log.path().join("log")).unwrap())
        .stderr(std::fs::File::create(log.path().join("err")).unwrap())
        .spawn()
        .unwrap();
    let _served = Served(child);
    let start = std::time::Instant::now();
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(start.elapsed().as_secs() < 10, "the kept registry did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    // `VAR=value ... cargo xtask verify ARGS`, run as printed.
    let words: Vec<&str> = command.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "cargo").unwrap();
    assert_eq!(words[at + 1..at + 3], ["xtask", "verify"], "{command}");
    let mut c = Command::new(xtask_bin());
    c.args(&words[at + 2..])
        .current_dir(bed.repo.path())
        .env("XTASK_ROOT", bed.repo.path());
    c.env_remove("REGISTRY_PASSWORD")
        .env_remove("REGISTRY_USERNAME")
        .env_remove("REGISTRY_PASSWORD_FILE");
    for w in &words[..at] {
        let (k, v) = w.split_once('=').unwrap();
        c.env(k, v);
    }
    let v = Run::from(c.output().unwrap());
    ok(&v);
    assert!(v.stdout.contains(&format!("verified {repo}@{digest}")), "{v:?}");

    // The independent checker, with the kept password and public key.
    let dir = bed.repo.path().join("target/xtask/local-registry");
    let password = std::fs::read_to_string(dir.join("password")).unwrap();
    let tmp = TempDir::new("local-netrc");
    let netrc = signing::netrc_in(tmp.path(), "publish", password.trim());
    let name = repo.split_once('/').unwrap().1;
    let rep =
        signing::check_at(&addr, &netrc, name, digest, &dir.join("cosign.pub")).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(bed.record()["signing"]["fingerprint"], rep["fingerprint"]);
    assert!(v.stdout.contains(rep["fingerprint"].as_str().unwrap()), "{v:?}");
}
