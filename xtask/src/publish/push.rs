//! The one executor of a [`PushPlan`]: per registry, each tag decided against what the
//! registry holds right before it is written (compare-and-push), then every tag read back.
//! Release, rebuild and rollback all end here.

use super::plan::{decide, Decision, Kind, Outcome, PushPlan, Pushed, Remote, Source, Target, Upload};
use crate::exit;
use anyhow::Result;
use std::collections::BTreeMap;

/// What the executor needs of a registry (the real one is skopeo and docker through
/// `registry::Session`; tests use a recording fake).
pub trait Registry: Sync {
    fn tags(&self, t: &Target) -> Result<Vec<String>>;
    fn remote(&self, t: &Target, tag: &str) -> Result<Option<Remote>>;
    /// Uploads the local image `id` as `tag`: the manifest digest it got, and what went
    /// over the wire.
    fn upload(&self, t: &Target, id: &str, tag: &str) -> Result<Uploaded>;
    /// Points `tag` at `src` (`repo@digest`, in this or another registry), registry-side.
    fn point(&self, t: &Target, src: &str, tag: &str) -> Result<()>;
}

/// Runs once per registry with the digest `latest` is about to get, before it moves (or
/// after the last tag when the plan has no `latest`): signing and attesting a release,
/// checking the signature of a rollback's target. An error stops the publish there.
pub type BeforeLatest<'a> = &'a dyn Fn(&Target, &str) -> Result<()>;

/// What [`Registry::upload`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    pub digest: String,
    pub upload: Upload,
}

/// Writes the plan. In a dry run nothing is read again and every tag reads as "write".
pub fn execute(
    reg: &dyn Registry,
    image: &str,
    plan: &PushPlan,
    dry_run: bool,
    log: &dyn Fn(&str),
    before_latest: BeforeLatest<'_>,
) -> Result<Vec<Pushed>> {
    let mut pushed = Vec::new();
    for tp in &plan.targets {
        let t = &tp.target;
        let repo = t.repo(image);
        let mut digest: Option<String> = match &plan.source {
            Source::Remote { repo: src, digest } if *src == repo => Some(digest.clone()),
            _ => None,
        };
        let mut tags = BTreeMap::new();
        let mut latest_skipped = None;
        let mut hooked = false;
        let mut upload = Upload::Nothing;
        for tag in &tp.tags {
            if tag.kind != Kind::Fixed && !hooked {
                if let Some(d) = &digest {
                    before_latest(t, d)?;
                    hooked = true;
                }
            }
            let decision = if dry_run {
                Decision::Write
            } else {
                let now = reg.remote(t, &tag.tag)?;
                let list = if tag.kind == Kind::Latest {
                    reg.tags(t)?
                } else {
                    Vec::new()
                };
                decide(tag, &plan.source, &plan.version, now.as_ref(), &list)
            };
            match decision {
                Decision::Refuse { there } => {
                    return Err(exit::usage(format!(
                        "{} in {} already holds {there}, not {}; a version, commit or dated tag never moves \
                         (another publish wrote it?): bump VERSION (cargo xtask bump-version patch) and publish again",
                        tag.tag,
                        t.spec,
                        plan.source.describe()
                    )))
                }
                Decision::Stay { why } => {
                    log(&format!("latest stays where it is in {}: {why}", t.spec));
                    latest_skipped = Some(why);
                }
                Decision::Skip { digest: d } => {
                    log(&format!(
                        "{} already holds this image in {} ({d}): skipped",
                        tag.tag, t.spec
                    ));
                    same_digest(t, &tag.tag, &digest, &d)?;
                    digest = Some(d);
                    tags.insert(tag.tag.clone(), Outcome::Unchanged);
                }
                Decision::Write => {
                    let d = match (&digest, &plan.source) {
                        // Once the registry holds the image, the other tags point at that very
                        // manifest: one digest per registry, even on a rerun from another machine.
                        (Some(d), _) => {
                            reg.point(t, &format!("{repo}@{d}"), &tag.tag)?;
                            d.clone()
                        }
                        (None, Source::Built { id }) => {
                            let u = reg.upload(t, id, &tag.tag)?;
                            upload = u.upload;
                            u.digest
                        }
                        // Another repository (the same one starts with `digest` set).
                        (None, Source::Remote { repo: src, digest: d }) => {
                            reg.point(t, &format!("{src}@{d}"), &tag.tag)?;
                            upload = Upload::Copied {
                                from: format!("{src}@{d}"),
                            };
                            d.clone()
                        }
                    };
                    same_digest(t, &tag.tag, &digest, &d)?;
                    digest = Some(d);
                    tags.insert(tag.tag.clone(), Outcome::Pushed);
                }
            }
        }
        if let Some(d) = digest.as_ref().filter(|_| !hooked) {
            before_latest(t, d)?;
        }
        pushed.push(Pushed {
            target: t.clone(),
            repo,
            digest: digest.unwrap_or_default(),
            tags,
            latest_skipped,
            upload,
        });
    }
    Ok(pushed)
}

fn same_digest(t: &Target, tag: &str, first: &Option<String>, now: &str) -> Result<()> {
    match first {
        Some(f) if f != now => Err(exit::env(format!(
            "{tag} in {} came out as {now}, but the tags before it as {f}; the registry holds two manifests of one image: check it, then rerun",
            t.spec
        ))),
        _ => Ok(()),
    }
}

/// Reads every tag written or kept back from its registry (all at once: each read is a
/// round trip of its own); a tag that holds anything else was changed by someone else
/// since it was written: exit 3 naming it.
pub fn verify(reg: &dyn Registry, pushed: &[Pushed]) -> Result<()> {
    let checks: Vec<(&Pushed, &String)> = pushed.iter().flat_map(|p| p.tags.keys().map(move |t| (p, t))).collect();
    let found: Vec<Result<Option<Remote>>> = std::thread::scope(|s| {
        let handles: Vec<_> = checks
            .iter()
            .map(|&(p, tag)| s.spawn(move || reg.remote(&p.target, tag)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a registry read panicked")))
            })
            .collect()
    });
    for ((p, tag), there) in checks.iter().zip(found) {
        let there = there?.map(|r| r.digest);
        if there.as_deref() != Some(p.digest.as_str()) {
            return Err(exit::env(format!(
                "verify: {}:{tag} holds {}, but {} was written; something else wrote to the registry since: check it and rerun",
                p.repo,
                there.as_deref().unwrap_or("nothing"),
                p.digest
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
pub mod fake {
    //! A registry in memory that records every call, for plan tests without Docker.
    use super::*;
    use crate::publish::plan::Transfer;
    use std::sync::Mutex;

    #[derive(Default)]
    pub struct Fake {
        /// (registry spec, tag) → what it holds.
        pub state: Mutex<BTreeMap<(String, String), Remote>>,
        /// Every call, in order: `tags R`, `remote R:T`, `upload R:T`, `point R:T<-SRC`.
        pub log: Mutex<Vec<String>>,
        /// Runs after each read of `latest`, to let "another publish" land meanwhile.
        #[allow(clippy::type_complexity)]
        pub meanwhile: Mutex<Option<Box<dyn FnMut(&mut BTreeMap<(String, String), Remote>) + Send>>>,
    }

    impl Fake {
        pub fn put(&self, reg: &str, tag: &str, digest: &str, config: &str) {
            self.state.lock().unwrap().insert(
                (reg.into(), tag.into()),
                Remote {
                    digest: digest.into(),
                    config: config.into(),
                },
            );
        }

        pub fn get(&self, reg: &str, tag: &str) -> Option<String> {
            self.state
                .lock()
                .unwrap()
                .get(&(reg.to_string(), tag.to_string()))
                .map(|r| r.digest.clone())
        }

        pub fn writes(&self) -> Vec<String> {
            self.log
                .lock()
                .unwrap()
                .iter()
                .filter(|l| l.starts_with("upload") || l.starts_with("point"))
                .cloned()
                .collect()
        }
    }

    impl Registry for Fake {
        fn tags(&self, t: &Target) -> Result<Vec<String>> {
            self.log.lock().unwrap().push(format!("tags {}", t.spec));
            if let Some(f) = self.meanwhile.lock().unwrap().as_mut() {
                f(&mut self.state.lock().unwrap());
            }
            Ok(self
                .state
                .lock()
                .unwrap()
                .keys()
                .filter(|(r, _)| *r == t.spec)
                .map(|(_, tag)| tag.clone())
                .collect())
        }

        fn remote(&self, t: &Target, tag: &str) -> Result<Option<Remote>> {
            self.log.lock().unwrap().push(format!("remote {}:{tag}", t.spec));
            Ok(self
                .state
                .lock()
                .unwrap()
                .get(&(t.spec.clone(), tag.to_string()))
                .cloned())
        }

        fn upload(&self, t: &Target, id: &str, tag: &str) -> Result<Uploaded> {
            self.log.lock().unwrap().push(format!("upload {}:{tag}", t.spec));
            let digest = format!("sha256:manifest-of-{id}");
            self.put(&t.spec, tag, &digest, id);
            let transfer = Transfer {
                new_layers: vec![1000],
                existing_layers: 4,
                config_bytes: 10,
                manifest_bytes: 10,
            };
            Ok(Uploaded {
                digest,
                upload: Upload::Layers(transfer),
            })
        }

        fn point(&self, t: &Target, src: &str, tag: &str) -> Result<()> {
            self.log.lock().unwrap().push(format!("point {}:{tag}<-{src}", t.spec));
            let digest = src.rsplit_once('@').map(|(_, d)| d.to_string()).unwrap_or_default();
            let config = self
                .state
                .lock()
                .unwrap()
                .values()
                .find(|r| r.digest == digest)
                .map(|r| r.config.clone())
                .unwrap_or_default();
            self.put(&t.spec, tag, &digest, &config);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::Fake;
    use super::*;
    use crate::version;

    const R1: &str = "127.0.0.1:5001";
    const R2: &str = "127.0.0.1:5002";

    fn targets(specs: &[&str]) -> Vec<Target> {
        specs.iter().map(|s| Target::parse(s).unwrap()).collect()
    }

    fn release(v: &str, id: &str, specs: &[&str]) -> PushPlan {
        PushPlan::release(
            &version::parse_tag(v).unwrap(),
            "sha-1234567",
            Source::Built { id: id.into() },
            &targets(specs),
        )
    }

    fn run(fake: &Fake, plan: &PushPlan) -> Result<Vec<Pushed>> {
        execute(fake, "pp", plan, false, &|_| {}, &|_, _| Ok(()))
    }

    #[test]
    fn a_release_uploads_once_per_registry_and_points_the_rest() {
        let fake = Fake::default();
        let pushed = run(&fake, &release("v1.0.0", "sha256:img", &[R1, R2])).unwrap();
        assert_eq!(
            fake.writes(),
            [
                "upload 127.0.0.1:5001:v1.0.0",
                "point 127.0.0.1:5001:sha-1234567<-127.0.0.1:5001/pp@sha256:manifest-of-sha256:img",
                "point 127.0.0.1:5001:latest<-127.0.0.1:5001/pp@sha256:manifest-of-sha256:img",
                "upload 127.0.0.1:5002:v1.0.0",
                "point 127.0.0.1:5002:sha-1234567<-127.0.0.1:5002/pp@sha256:manifest-of-sha256:img",
                "point 127.0.0.1:5002:latest<-127.0.0.1:5002/pp@sha256:manifest-of-sha256:img",
            ]
        );
        assert!(pushed.iter().all(|p| p.tags.values().all(|o| *o == Outcome::Pushed)));
        assert!(
            pushed
                .iter()
                .all(|p| matches!(&p.upload, Upload::Layers(t) if t.bytes() == 1000)),
            "one upload per registry: {pushed:?}"
        );
        verify(&fake, &pushed).unwrap();
        // Latest is written last, after its registry's tag list was read again.
        let log = fake.log.lock().unwrap().clone();
        let list = log.iter().position(|l| l == "tags 127.0.0.1:5001").unwrap();
        let latest = log
            .iter()
            .position(|l| l.starts_with("point 127.0.0.1:5001:latest"))
            .unwrap();
        assert!(list < latest, "{log:?}");
    }

    #[test]
    fn a_rerun_skips_what_is_there_and_resumes_the_rest() {
        let fake = Fake::default();
        fake.put(R1, "v1.0.0", "sha256:m1", "sha256:img");
        let pushed = run(&fake, &release("v1.0.0", "sha256:img", &[R1])).unwrap();
        assert_eq!(
            fake.writes(),
            [
                "point 127.0.0.1:5001:sha-1234567<-127.0.0.1:5001/pp@sha256:m1",
                "point 127.0.0.1:5001:latest<-127.0.0.1:5001/pp@sha256:m1"
            ]
        );
        assert_eq!(pushed[0].tags["v1.0.0"], Outcome::Unchanged);
        assert_eq!(pushed[0].digest, "sha256:m1");
        assert_eq!(
            pushed[0].upload,
            Upload::Nothing,
            "pointing tags at a manifest already there uploads nothing"
        );
        // Everything there: nothing written at all.
        let fake2 = Fake::default();
        for t in ["v1.0.0", "sha-1234567", "latest"] {
            fake2.put(R1, t, "sha256:m1", "sha256:img");
        }
        run(&fake2, &release("v1.0.0", "sha256:img", &[R1])).unwrap();
        assert!(fake2.writes().is_empty());
    }

    #[test]
    fn a_fixed_tag_holding_another_image_is_refused_and_nothing_more_is_written() {
        let fake = Fake::default();
        fake.put(R1, "sha-1234567", "sha256:other", "sha256:another-build");
        let e = run(&fake, &release("v1.0.0", "sha256:img", &[R1, R2])).unwrap_err();
        assert_eq!(exit::code_of(&e), 2);
        let msg = e.to_string();
        assert!(
            msg.contains("sha-1234567 in 127.0.0.1:5001 already holds sha256:other"),
            "{msg}"
        );
        // v1.0.0 went first; nothing after the refusal, and nothing to the second registry.
        assert_eq!(fake.writes(), ["upload 127.0.0.1:5001:v1.0.0"]);
    }

    #[test]
    fn latest_only_moves_forward_even_when_a_higher_release_lands_mid_publish() {
        let fake = Fake::default();
        fake.put(R1, "v1.0.0", "sha256:m100", "sha256:c100");
        fake.put(R1, "latest", "sha256:m100", "sha256:c100");
        // v1.1.0 is published by someone else while this v1.0.1 publish runs.
        *fake.meanwhile.lock().unwrap() = Some(Box::new(|s| {
            s.insert(
                (R1.into(), "v1.1.0".into()),
                Remote {
                    digest: "sha256:m110".into(),
                    config: "sha256:c110".into(),
                },
            );
            s.insert(
                (R1.into(), "latest".into()),
                Remote {
                    digest: "sha256:m110".into(),
                    config: "sha256:c110".into(),
                },
            );
        }));
        let pushed = run(&fake, &release("v1.0.1", "sha256:img", &[R1])).unwrap();
        assert_eq!(
            fake.get(R1, "latest").as_deref(),
            Some("sha256:m110"),
            "latest moved back"
        );
        assert!(pushed[0]
            .latest_skipped
            .as_deref()
            .is_some_and(|w| w.contains("lower than v1.1.0")));
        assert!(!pushed[0].tags.contains_key("latest"));
        assert!(fake.get(R1, "v1.0.1").is_some());
    }

    #[test]
    fn a_rollback_points_latest_at_a_published_digest() {
        let fake = Fake::default();
        fake.put(R1, "v1.0.0", "sha256:m100", "sha256:c100");
        fake.put(R1, "v1.1.0", "sha256:m110", "sha256:c110");
        fake.put(R1, "latest", "sha256:m110", "sha256:c110");
        let plan = PushPlan::rollback(
            &version::parse_tag("v1.0.0").unwrap(),
            Source::Remote {
                repo: format!("{R1}/pp"),
                digest: "sha256:m100".into(),
            },
            &targets(&[R1]),
        );
        let pushed = run(&fake, &plan).unwrap();
        assert_eq!(
            fake.writes(),
            ["point 127.0.0.1:5001:latest<-127.0.0.1:5001/pp@sha256:m100"]
        );
        assert_eq!(fake.get(R1, "latest").as_deref(), Some("sha256:m100"));
        assert_eq!(fake.get(R1, "v1.1.0").as_deref(), Some("sha256:m110"));
        verify(&fake, &pushed).unwrap();
    }

    #[test]
    fn a_resumed_release_copies_from_where_the_image_is() {
        let fake = Fake::default();
        fake.put(R1, "v1.0.0", "sha256:m1", "sha256:img");
        let plan = PushPlan::release(
            &version::parse_tag("v1.0.0").unwrap(),
            "sha-1234567",
            Source::Remote {
                repo: format!("{R1}/pp"),
                digest: "sha256:m1".into(),
            },
            &targets(&[R1, R2]),
        );
        let pushed = run(&fake, &plan).unwrap();
        assert_eq!(pushed[0].upload, Upload::Nothing);
        assert_eq!(
            pushed[1].upload,
            Upload::Copied {
                from: format!("{R1}/pp@sha256:m1")
            }
        );
        let w = fake.writes();
        assert!(w.iter().all(|l| l.starts_with("point")), "no upload: {w:?}");
        assert!(
            w.contains(&"point 127.0.0.1:5002:v1.0.0<-127.0.0.1:5001/pp@sha256:m1".to_string()),
            "{w:?}"
        );
        assert!(
            w.contains(&"point 127.0.0.1:5002:sha-1234567<-127.0.0.1:5002/pp@sha256:m1".to_string()),
            "{w:?}"
        );
    }

    #[test]
    fn signing_happens_before_latest_moves_and_a_failure_stops_it() {
        let fake = Fake::default();
        let seen = std::sync::Mutex::new(Vec::new());
        let hook = |t: &Target, d: &str| {
            seen.lock()
                .unwrap()
                .push(format!("{} {d} after {} writes", t.spec, fake.writes().len()));
            Ok(())
        };
        execute(
            &fake,
            "pp",
            &release("v1.0.0", "sha256:img", &[R1]),
            false,
            &|_| {},
            &hook,
        )
        .unwrap();
        // v1.0.0 and sha-… were written, latest not yet.
        assert_eq!(
            *seen.lock().unwrap(),
            ["127.0.0.1:5001 sha256:manifest-of-sha256:img after 2 writes"]
        );
        let fake = Fake::default();
        let e = execute(
            &fake,
            "pp",
            &release("v1.0.0", "sha256:img", &[R1]),
            false,
            &|_| {},
            &|_, _| Err(exit::gate("bad key")),
        )
        .unwrap_err();
        assert_eq!(exit::code_of(&e), 1);
        assert!(fake.get(R1, "latest").is_none(), "latest moved although signing failed");
        // A pre-release has no latest: the hook runs after its last tag.
        let fake = Fake::default();
        let n = std::sync::Mutex::new(0);
        execute(
            &fake,
            "pp",
            &release("v1.0.0-rc.1", "sha256:img", &[R1]),
            false,
            &|_| {},
            &|_, _| {
                *n.lock().unwrap() += 1;
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(*n.lock().unwrap(), 1);
    }

    #[test]
    fn verify_names_a_tag_changed_since_it_was_written() {
        let fake = Fake::default();
        let pushed = run(&fake, &release("v1.0.0", "sha256:img", &[R1])).unwrap();
        fake.put(R1, "latest", "sha256:someone-else", "sha256:x");
        let e = verify(&fake, &pushed).unwrap_err();
        assert_eq!(exit::code_of(&e), 3);
        assert!(
            e.to_string()
                .contains("127.0.0.1:5001/pp:latest holds sha256:someone-else"),
            "{e}"
        );
    }

    #[test]
    fn a_dry_run_reads_nothing_and_writes_through_the_registry_only() {
        let fake = Fake::default();
        fake.put(R1, "v1.0.0", "sha256:other", "sha256:x");
        execute(
            &fake,
            "pp",
            &release("v1.0.0", "", &[R1]),
            true,
            &|_| {},
            &|_, _| Ok(()),
        )
        .unwrap();
        assert!(fake
            .log
            .lock()
            .unwrap()
            .iter()
            .all(|l| !l.starts_with("remote") && !l.starts_with("tags")));
    }
}
