//! The pure half of publishing: which tags go to which registry from which image, what to
//! do with each tag given what the registry holds right now, when `latest` moves, and the
//! release record. No I/O: `push.rs` carries a [`PushPlan`] out against a registry.

pub use super::target::Target;
pub use super::transfer::{Transfer, Upload};
use crate::version;
use semver::Version;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// What the registry holds under a tag: the manifest digest and the image config digest
/// (which equals the local image id of the classic image store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    pub digest: String,
    pub config: String,
}

/// Where the tags of a plan come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The image built and gated here (`id` = its config digest): the first tag written
    /// uploads it; the others point at that manifest, registry-side.
    Built { id: String },
    /// A manifest already in a registry (`repo@digest`): a rollback, a resumed release. It
    /// is copied registry-side (also to another registry), byte for byte.
    Remote { repo: String, digest: String },
}

impl Source {
    /// Whether what a registry holds is this very image.
    pub fn is(&self, r: &Remote) -> bool {
        match self {
            Source::Built { id } => r.config == *id,
            Source::Remote { digest, .. } => r.digest == *digest,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Source::Built { id } => format!("the image built here ({id})"),
            Source::Remote { repo, digest } => format!("{repo}@{digest}"),
        }
    }
}

/// How a tag may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `vX.Y.Z`, `sha-…`, `rebuild-…`: written once, never moved.
    Fixed,
    /// `latest`: moves forward only, written last.
    Latest,
    /// `latest` pointed back at an older release on purpose (`--rollback`).
    Rollback,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagPlan {
    pub tag: String,
    pub kind: Kind,
}

impl TagPlan {
    pub fn fixed(tag: impl Into<String>) -> TagPlan {
        TagPlan {
            tag: tag.into(),
            kind: Kind::Fixed,
        }
    }

    pub fn latest() -> TagPlan {
        TagPlan {
            tag: "latest".into(),
            kind: Kind::Latest,
        }
    }

    pub fn rollback() -> TagPlan {
        TagPlan {
            tag: "latest".into(),
            kind: Kind::Rollback,
        }
    }
}

/// One registry's part of a plan: its tags in the order they are written (`latest` last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetPlan {
    pub target: Target,
    pub tags: Vec<TagPlan>,
}

/// Everything a publish writes: per registry, which tags from which image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushPlan {
    /// The version `latest` is judged by.
    pub version: Version,
    pub source: Source,
    pub targets: Vec<TargetPlan>,
}

impl PushPlan {
    /// `vX.Y.Z`, `sha-…` and `latest` (unless a pre-release) in every registry.
    pub fn release(version: &Version, sha_tag: &str, source: Source, targets: &[Target]) -> PushPlan {
        let mut tags = vec![TagPlan::fixed(version::tag(version)), TagPlan::fixed(sha_tag)];
        if version.pre.is_empty() {
            tags.push(TagPlan::latest());
        }
        PushPlan::with(version, source, targets, tags)
    }

    /// The weekly rebuild: a dated audit tag, then `latest`.
    pub fn rebuild(version: &Version, dated: &str, source: Source, targets: &[Target]) -> PushPlan {
        PushPlan::with(version, source, targets, vec![TagPlan::fixed(dated), TagPlan::latest()])
    }

    /// A rollback: `latest` only, to a published version's manifest.
    pub fn rollback(version: &Version, source: Source, targets: &[Target]) -> PushPlan {
        PushPlan::with(version, source, targets, vec![TagPlan::rollback()])
    }

    fn with(version: &Version, source: Source, targets: &[Target], tags: Vec<TagPlan>) -> PushPlan {
        let targets = targets
            .iter()
            .map(|t| TargetPlan {
                target: t.clone(),
                tags: tags.clone(),
            })
            .collect();
        PushPlan {
            version: version.clone(),
            source,
            targets,
        }
    }
}

/// What to do with one tag, given what its registry holds right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Write,
    /// It already holds this image (a rerun): nothing to do.
    Skip {
        digest: String,
    },
    /// A fixed tag holds another image: it never moves.
    Refuse {
        there: String,
    },
    /// `latest` stays where it is, and why.
    Stay {
        why: String,
    },
}

/// The rule for one tag: fixed tags are written once; `latest` only moves to a version not
/// lower than the highest release in that registry *now*, never to a pre-release.
pub fn decide(
    tag: &TagPlan,
    source: &Source,
    version: &Version,
    now: Option<&Remote>,
    tags_now: &[String],
) -> Decision {
    if tag.kind == Kind::Latest {
        if let Err(why) = latest_decision(version, tags_now) {
            if !now.is_some_and(|r| source.is(r)) {
                return Decision::Stay { why };
            }
        }
    }
    match now {
        None => Decision::Write,
        Some(r) if source.is(r) => Decision::Skip {
            digest: r.digest.clone(),
        },
        Some(_) if tag.kind != Kind::Fixed => Decision::Write,
        Some(r) => Decision::Refuse {
            there: r.digest.clone(),
        },
    }
}

/// Whether `latest` moves to `v` in a registry holding `published` tags, and why not.
pub fn latest_decision(v: &Version, published: &[String]) -> Result<(), String> {
    if !v.pre.is_empty() {
        return Err(format!("{} is a pre-release", version::tag(v)));
    }
    let highest = published
        .iter()
        .filter_map(|t| version::parse_tag(t).ok())
        .filter(|p| p.pre.is_empty())
        .max();
    match highest {
        Some(h) if &h > v => Err(format!(
            "{} is lower than {} already published there",
            version::tag(v),
            version::tag(&h)
        )),
        _ => Ok(()),
    }
}

/// The audit tag of a weekly rebuild: `rebuild-YYYYMMDD-HHMMSS` (UTC) from a Unix time.
pub fn dated_tag(unix_secs: u64) -> String {
    let crate::date::Date { y, m, d } = crate::date::day_of(unix_secs);
    let secs = unix_secs % 86_400;
    format!(
        "rebuild-{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// What happened to a tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Written by this run.
    Pushed,
    /// Already held this image.
    Unchanged,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pushed => "pushed",
            Outcome::Unchanged => "unchanged",
        }
    }
}

/// One registry's outcome, for the record and the summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Pushed {
    pub target: Target,
    pub repo: String,
    pub digest: String,
    pub tags: BTreeMap<String, Outcome>,
    /// Why `latest` was left alone, if it was.
    pub latest_skipped: Option<String>,
    /// What went over the wire to this registry.
    pub upload: Upload,
}

/// What the release record is made of.
pub struct Record<'a> {
    pub mode: &'a str,
    pub version: &'a Version,
    pub commit: &'a str,
    pub image_id: &'a str,
    pub pushed: &'a [Pushed],
    pub tools: &'a BTreeMap<String, String>,
    pub policy_hash: &'a str,
    pub scan: &'a Value,
    pub integration: &'a Value,
}

/// `target/xtask/release.json` of a publish that succeeded.
pub fn record(r: &Record<'_>) -> Value {
    let digests: Vec<&str> = r.pushed.iter().map(|p| p.digest.as_str()).collect();
    let one = digests.first().filter(|d| digests.iter().all(|x| x == *d));
    json!({
        "status": "published",
        "mode": r.mode,
        "version": version::tag(r.version),
        "commit": r.commit,
        "image_id": r.image_id,
        "digest": one,
        "tags": r.pushed.first().map(|p| p.tags.keys().collect::<Vec<_>>()),
        "registries": r.pushed.iter().map(|p| json!({
            "registry": p.target.spec,
            "repository": p.repo,
            "digest": p.digest,
            "reference": format!("{}@{}", p.repo, p.digest),
            "tags": p.tags.iter().map(|(t, o)| (t.clone(), json!(o.as_str()))).collect::<serde_json::Map<_, _>>(),
            "latest_skipped": p.latest_skipped,
            "upload": p.upload.json(),
        })).collect::<Vec<_>>(),
        "tools": r.tools,
        "policy_hash": r.policy_hash,
        "scan": r.scan,
        "integration": r.integration,
    })
}

/// The Markdown a CI shows on the run's page.
pub fn summary_markdown(record: &Value) -> String {
    let mut s = format!(
        "### policy-platform {} ({}, {})\n\ncommit `{}`\n\n",
        record["version"].as_str().unwrap_or("?"),
        record["mode"].as_str().unwrap_or("?"),
        record["status"].as_str().unwrap_or("?"),
        record["commit"].as_str().unwrap_or("?"),
    );
    if let Some(e) = record["error"].as_str() {
        s.push_str(&format!("**Failed:** {e}\n\n"));
    }
    let regs = record["registries"]
        .as_array()
        .into_iter()
        .flatten()
        .collect::<Vec<_>>();
    if !regs.is_empty() {
        s.push_str("| registry | digest | tags | upload |\n|---|---|---|---|\n");
    }
    for r in regs {
        let tags: Vec<String> = r["tags"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(t, how)| format!("`{t}` ({})", how.as_str().unwrap_or("")))
            .collect();
        s.push_str(&format!(
            "| `{}` | `{}` | {} | {} |\n",
            r["repository"].as_str().unwrap_or(""),
            r["digest"].as_str().unwrap_or(""),
            tags.join(", "),
            r["upload"]["summary"].as_str().unwrap_or("")
        ));
    }
    let signing = &record["signing"];
    if let Some(fp) = signing["fingerprint"].as_str() {
        s.push_str(&format!(
            "\nSigned by `{fp}` (`{}`):\n\n",
            signing["public_key"].as_str().unwrap_or("")
        ));
        for r in signing["registries"].as_array().into_iter().flatten() {
            s.push_str(&format!(
                "- `{}`: signature `{}` (`{}`), attestations `{}` (`{}`)\n",
                r["repository"].as_str().unwrap_or(""),
                r["signature"]["tag"].as_str().unwrap_or(""),
                r["signature"]["digest"].as_str().unwrap_or(""),
                r["attestations"]["tag"].as_str().unwrap_or(""),
                r["attestations"]["digest"].as_str().unwrap_or(""),
            ));
        }
        if let Some(sbom) = signing["sbom"]["path"].as_str() {
            s.push_str(&format!(
                "\nSBOM: `{sbom}` ({} components).\n",
                signing["sbom"]["components"]
            ));
        }
    } else if record["status"] == "published" && record["mode"] != "rollback" {
        s.push_str("\n**Unsigned:** no `signing-public-key` is configured.\n");
    }
    if let Some(tools) = record["tools"].as_object().filter(|t| !t.is_empty()) {
        let t: Vec<String> = tools
            .iter()
            .map(|(k, v)| format!("{k} {}", v.as_str().unwrap_or("")))
            .collect();
        s.push_str(&format!(
            "\nTools: {}. Policy hash `{}`.\n",
            t.join(", "),
            record["policy_hash"].as_str().unwrap_or("")
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        version::parse_tag(s).unwrap()
    }

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn latest_only_moves_forward_and_never_to_a_pre_release() {
        assert!(latest_decision(&v("v1.0.0"), &[]).is_ok());
        assert!(latest_decision(&v("v1.2.0"), &tags(&["v1.1.0", "latest", "sha-abc", "v1.2.0"])).is_ok());
        let back = latest_decision(&v("v1.9.5"), &tags(&["v1.9.4", "v2.0.0"])).unwrap_err();
        assert!(back.contains("lower than v2.0.0"), "{back}");
        let pre = latest_decision(&v("v2.1.0-rc.1"), &tags(&["v2.0.0"])).unwrap_err();
        assert!(pre.contains("pre-release"), "{pre}");
        // A published pre-release above does not hold a stable backport back.
        assert!(latest_decision(&v("v1.9.5"), &tags(&["v1.9.4", "v2.0.0-rc.1", "vjunk"])).is_ok());
    }

    #[test]
    fn decisions_skip_the_same_image_and_refuse_to_move_fixed_tags() {
        let src = Source::Built {
            id: "sha256:aaa".into(),
        };
        let same = Remote {
            digest: "sha256:d1".into(),
            config: "sha256:aaa".into(),
        };
        let other = Remote {
            digest: "sha256:d2".into(),
            config: "sha256:bbb".into(),
        };
        let ver = v("v1.0.0");
        let fixed = TagPlan::fixed("v1.0.0");
        assert_eq!(decide(&fixed, &src, &ver, None, &[]), Decision::Write);
        assert_eq!(
            decide(&fixed, &src, &ver, Some(&same), &[]),
            Decision::Skip {
                digest: "sha256:d1".into()
            }
        );
        assert_eq!(
            decide(&fixed, &src, &ver, Some(&other), &[]),
            Decision::Refuse {
                there: "sha256:d2".into()
            }
        );
        let latest = TagPlan::latest();
        assert_eq!(
            decide(&latest, &src, &ver, Some(&other), &tags(&["v0.9.0"])),
            Decision::Write
        );
        // A higher release appeared since the plan: latest stays.
        let stay = decide(&latest, &src, &ver, Some(&other), &tags(&["v1.1.0"]));
        assert!(
            matches!(&stay, Decision::Stay { why } if why.contains("lower than v1.1.0")),
            "{stay:?}"
        );
        // ...unless it already holds this very image (then there is nothing to do).
        assert_eq!(
            decide(&latest, &src, &ver, Some(&same), &tags(&["v1.1.0"])),
            Decision::Skip {
                digest: "sha256:d1".into()
            }
        );
        // A remote source compares by manifest digest.
        let remote = Source::Remote {
            repo: "r/pp".into(),
            digest: "sha256:d2".into(),
        };
        assert_eq!(
            decide(&fixed, &remote, &ver, Some(&other), &[]),
            Decision::Skip {
                digest: "sha256:d2".into()
            }
        );
    }

    #[test]
    fn plans_per_mode() {
        let t = Target::parse("127.0.0.1:5000").unwrap();
        let src = Source::Built { id: "sha256:a".into() };
        let p = PushPlan::release(&v("v1.0.0"), "sha-1234567", src.clone(), std::slice::from_ref(&t));
        let names: Vec<&str> = p.targets[0].tags.iter().map(|t| t.tag.as_str()).collect();
        assert_eq!(names, ["v1.0.0", "sha-1234567", "latest"]);
        let p = PushPlan::release(&v("v1.0.0-rc.1"), "sha-1234567", src.clone(), std::slice::from_ref(&t));
        assert_eq!(p.targets[0].tags.len(), 2, "no latest for a pre-release");
        let p = PushPlan::rebuild(
            &v("v1.0.0"),
            "rebuild-20261129-120000",
            src.clone(),
            std::slice::from_ref(&t),
        );
        assert_eq!(
            p.targets[0].tags,
            vec![TagPlan::fixed("rebuild-20261129-120000"), TagPlan::latest()]
        );
        let p = PushPlan::rollback(&v("v1.0.0"), src, &[t]);
        assert_eq!(p.targets[0].tags, vec![TagPlan::rollback()]);
        let older = decide(
            &TagPlan::rollback(),
            &Source::Remote {
                repo: "r".into(),
                digest: "sha256:old".into(),
            },
            &v("v1.0.0"),
            None,
            &tags(&["v2.0.0"]),
        );
        assert_eq!(older, Decision::Write, "a rollback moves latest back on purpose");
    }

    #[test]
    fn dated_tags() {
        assert_eq!(dated_tag(0), "rebuild-19700101-000000");
        // 2026-11-28T23:05:09Z
        assert_eq!(dated_tag(1_795_907_109), "rebuild-20261128-230509");
        // 2024-02-29T12:00:00Z, a leap day
        assert_eq!(dated_tag(1_709_208_000), "rebuild-20240229-120000");
        crate::tags::check_tag(&dated_tag(4_102_444_799)).unwrap();
    }

    #[test]
    fn record_and_summary() {
        let target = Target::parse("127.0.0.1:5000/team").unwrap();
        let pushed = vec![Pushed {
            repo: target.repo("pp"),
            target,
            digest: "sha256:d1".into(),
            tags: BTreeMap::from([
                ("v1.0.0".into(), Outcome::Pushed),
                ("latest".into(), Outcome::Unchanged),
            ]),
            latest_skipped: None,
            upload: Upload::Layers(Transfer {
                new_layers: vec![118_400_000],
                existing_layers: 4,
                config_bytes: 1500,
                manifest_bytes: 1300,
            }),
        }];
        let tools = BTreeMap::from([("kyverno".to_string(), "1.19.0".to_string())]);
        let ver = v("v1.0.0");
        let rec = record(&Record {
            mode: "release",
            version: &ver,
            commit: "abc",
            image_id: "sha256:aaa",
            pushed: &pushed,
            tools: &tools,
            policy_hash: "sha256:ph",
            scan: &json!({"counts": {}}),
            integration: &json!(null),
        });
        assert_eq!(rec["status"], "published");
        assert_eq!(rec["version"], "v1.0.0");
        assert_eq!(rec["digest"], "sha256:d1");
        assert_eq!(rec["registries"][0]["reference"], "127.0.0.1:5000/team/pp@sha256:d1");
        assert_eq!(rec["registries"][0]["tags"]["latest"], "unchanged");
        assert_eq!(rec["tools"]["kyverno"], "1.19.0");
        assert_eq!(rec["registries"][0]["upload"]["bytes_pushed"], 118_400_000);
        let md = summary_markdown(&rec);
        assert!(md.contains("| `127.0.0.1:5000/team/pp` | `sha256:d1` |"), "{md}");
        assert!(
            md.contains("| pushed 1 new layer, 118.4 MB; 4 layers already there |"),
            "{md}"
        );
        assert!(md.contains("`v1.0.0` (pushed)"), "{md}");
        assert!(md.contains("**Unsigned:**"), "{md}");
        let mut signed = rec.clone();
        signed["signing"] = json!({"fingerprint": "SHA256:ab", "public_key": "cosign.pub", "registries": [{"repository": "r/pp", "signature": {"tag": "sha256-d1.sig", "digest": "sha256:s"}, "attestations": {"tag": "sha256-d1.att", "digest": "sha256:a"}}], "sbom": {"path": "target/xtask/sbom/v1.0.0.cdx.json", "components": 3}});
        let md = summary_markdown(&signed);
        assert!(
            md.contains("Signed by `SHA256:ab`")
                && md.contains("signature `sha256-d1.sig` (`sha256:s`)")
                && md.contains("(3 components)"),
            "{md}"
        );
        let failed = json!({"status": "failed", "mode": "release", "version": "v1.0.0", "error": "scan gate: CVE-1"});
        assert!(summary_markdown(&failed).contains("**Failed:** scan gate: CVE-1"));
    }
}
