//! The base line `publish --rebuild` follows (`base-image-track`, e.g. `alpine:3.22`): the
//! digest the released image was built on (its `base.digest` label) against the digest the
//! track's tag names now. Moved: the rebuild runs on `<track>@<new digest>`. Not moved: on
//! exactly the base the released image names, so that an unchanged rebuild comes out as the
//! very image already published (same base, same labels).

use super::plan::Target;
use super::preflight::{self, Problems};
use super::registry::{Credentials, Session};
use crate::reference::ImageRef;
use crate::tools::skopeo;
use crate::{config, ctx::Ctx, exit, tags};
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Where the base line stands for one rebuild.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// `base-image-track` as configured.
    pub track: String,
    /// The base digest the released image records (`None`: it records none).
    pub released: Option<String>,
    /// The digest the track's tag names now.
    pub now: String,
    /// The BASE_IMAGE the rebuild runs on.
    pub base_image: String,
}

impl Line {
    /// Pure: the line from the track, the released image's labels and the digest now.
    pub fn new(track: &ImageRef, released: &BTreeMap<String, String>, now: &str) -> Line {
        let digest = released.get(tags::LABEL_BASE_DIGEST).cloned();
        // Not moved: the released image's own base name, when it surely names `now` (its
        // pin, or the track's very tag). Anything else is pinned to what the track names.
        let same_base = released.get(tags::LABEL_BASE).filter(|name| {
            ImageRef::parse(name).is_ok_and(|r| match &r.digest {
                Some(d) => d == now,
                None => r.same_repo(track) && r.tag == track.tag,
            })
        });
        let base_image = match same_base {
            Some(name) if digest.as_deref() == Some(now) => name.clone(),
            _ => track.pinned(now),
        };
        Line {
            track: track.to_string(),
            released: digest,
            now: now.to_string(),
            base_image,
        }
    }

    pub fn moved(&self) -> bool {
        self.released.as_deref() != Some(self.now.as_str())
    }

    /// What the output and the record say.
    pub fn message(&self) -> String {
        match &self.released {
            Some(r) if *r == self.now => format!("base {} did not move ({})", self.track, self.now),
            Some(r) => format!("base {} moved {r} → {}", self.track, self.now),
            None => format!(
                "base {}: the released image records no base digest; rebuilding on what the track names now ({})",
                self.track, self.now
            ),
        }
    }

    /// For the release record.
    pub fn json(&self) -> Value {
        json!({
            "track": self.track,
            "released": self.released,
            "now": self.now,
            "moved": self.moved(),
            "base_image": self.base_image,
            "summary": self.message(),
        })
    }
}

/// The line of `track` for the release `vtag` as the first registry holds it.
pub fn line(ctx: &Ctx, s: &Session<'_>, targets: &[Target], image: &str, vtag: &str, track: &str) -> Result<Line> {
    let track = config::track(track).map_err(|why| exit::usage(format!("Cargo.toml `base-image-track`: {why}")))?;
    let Some(first) = targets.first() else {
        return Err(exit::usage("no registry to read the released image from"));
    };
    let released = released_labels(s, first, image, vtag)?;
    let now = resolve(ctx, &access(&track, targets, Some(s)), &track)?;
    Ok(Line::new(&track, &released, &now))
}

/// The labels of the image a rebuild refreshes in `t`: `latest` when it holds this version
/// (the release, or an earlier rebuild of it), else `vX.Y.Z`; empty when neither exists.
fn released_labels(s: &Session<'_>, t: &Target, image: &str, vtag: &str) -> Result<BTreeMap<String, String>> {
    if let Some(latest) = s.inspect(t, image, "latest")? {
        if latest.labels.get(tags::LABEL_VERSION).map(String::as_str) == Some(vtag) {
            return Ok(latest.labels);
        }
    }
    Ok(s.inspect(t, image, vtag)?.map(|i| i.labels).unwrap_or_default())
}

/// With the run's credentials when the track lives in a registry the run publishes to (the
/// same host) and the run is logged in there, anonymously otherwise.
pub fn access(track: &ImageRef, targets: &[Target], s: Option<&Session<'_>>) -> skopeo::Access {
    match (targets.iter().find(|t| same_host(t, track)), s) {
        (Some(t), Some(s)) => s.access(t),
        _ => skopeo::Access::anonymous(!super::target::is_loopback_host(&track.host)),
    }
}

/// The digest the track's tag names now (a registry read; it runs in a dry run too).
pub fn resolve(ctx: &Ctx, access: &skopeo::Access, track: &ImageRef) -> Result<String> {
    let digest = skopeo::digest_of(ctx, access, &track.to_string()).context("base-image-track")?;
    digest.ok_or_else(|| {
        exit::usage(format!(
            "base-image-track {track}: {} has no such tag; fix `base-image-track` in Cargo.toml",
            track.host
        ))
    })
}

/// `bump-base`: whether the Dockerfile's BASE_IMAGE pin (the base of the next release)
/// lags the track, and the line to commit when it does. Changes nothing. The track is read
/// with the publish credentials when it lives in a configured registry, else anonymously.
pub fn bump(ctx: &Ctx, creds: Credentials) -> Result<()> {
    let config = ctx.config()?.clone();
    let Some(spec) = config.base_image_track.clone() else {
        return Err(exit::usage(
            "no base-image-track in Cargo.toml [workspace.metadata.policy-platform]: set it to the tag the base follows, \
             e.g. base-image-track = \"alpine:3.22\"",
        ));
    };
    let track = config::track(&spec).map_err(|why| exit::usage(format!("Cargo.toml `base-image-track`: {why}")))?;
    let path = ctx.path("Dockerfile");
    let dockerfile = std::fs::read_to_string(&path).map_err(|e| {
        exit::usage(format!(
            "cannot read {} ({e}); run bump-base in the repo",
            path.display()
        ))
    })?;
    let Some(pin) = tags::dockerfile_args(&dockerfile, &[]).get("BASE_IMAGE").cloned() else {
        return Err(exit::usage(
            "the Dockerfile has no `ARG BASE_IMAGE=<image>@sha256:<digest>`; add the pinned base",
        ));
    };
    crate::tools::require(&["skopeo"])?;
    let mut p = Problems::default();
    let targets: Vec<Target> = config
        .registries
        .iter()
        .filter_map(|r| Target::parse(r).ok())
        .filter(|t| same_host(t, &track))
        .take(1)
        .collect();
    let session = match (targets.is_empty(), creds) {
        (true, _) => None,
        (false, Credentials::Broken(list)) => {
            list.into_iter().for_each(|m| p.usage(m));
            None
        }
        (false, c) => preflight::login(ctx, &mut p, &targets, Some(&c), &config.image),
    };
    p.finish("bump-base")?;
    let now = resolve(ctx, &access(&track, &targets, session.as_ref()), &track)?;
    for line in pin_report(&pin, &track, &now) {
        println!("{line}");
    }
    Ok(())
}

/// Pure: what `bump-base` says about `pin` when the track names `now`.
pub fn pin_report(pin: &str, track: &ImageRef, now: &str) -> Vec<String> {
    let mut out = vec![
        format!("base-image-track {track} names {now}"),
        format!("Dockerfile pins BASE_IMAGE={pin}"),
    ];
    let pinned = ImageRef::parse(pin).ok().and_then(|r| r.digest);
    match pinned {
        Some(d) if d == now => out.push("the pin is current".to_string()),
        Some(d) => {
            out.push(format!(
                "the pin lags the track ({d} → {now}); for the next release, set in the Dockerfile and commit:"
            ));
            out.push(format!("ARG BASE_IMAGE={}", track.pinned(now)));
        }
        None => {
            out.push("the pin names no digest; pin it in the Dockerfile and commit:".to_string());
            out.push(format!("ARG BASE_IMAGE={}", track.pinned(now)));
        }
    }
    out
}

fn same_host(t: &Target, track: &ImageRef) -> bool {
    t.host.eq_ignore_ascii_case(&track.host) || (t.public && track.host == "docker.io")
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn labels(name: &str, digest: Option<&str>) -> BTreeMap<String, String> {
        let mut l = BTreeMap::from([(tags::LABEL_BASE.to_string(), name.to_string())]);
        if let Some(d) = digest {
            l.insert(tags::LABEL_BASE_DIGEST.to_string(), d.to_string());
        }
        l
    }

    fn track() -> ImageRef {
        ImageRef::parse("alpine:3.22").unwrap()
    }

    #[test]
    fn a_moved_base_is_rebuilt_on_the_track_pinned_to_its_new_digest() {
        let l = Line::new(&track(), &labels(&format!("alpine:3.22.2@{D1}"), Some(D1)), D2);
        assert!(l.moved());
        assert_eq!(l.base_image, format!("alpine:3.22@{D2}"));
        assert_eq!(l.message(), format!("base alpine:3.22 moved {D1} → {D2}"));
        assert_eq!(l.json()["moved"], true);
    }

    #[test]
    fn an_unmoved_base_is_rebuilt_on_exactly_the_released_base() {
        // The release's own pin (another tag spelling, same digest): kept, so the labels match.
        let l = Line::new(&track(), &labels(&format!("alpine:3.22.2@{D1}"), Some(D1)), D1);
        assert!(!l.moved());
        assert_eq!(l.base_image, format!("alpine:3.22.2@{D1}"));
        assert_eq!(l.message(), format!("base alpine:3.22 did not move ({D1})"));
        // The track's own tag, unpinned: kept too.
        assert_eq!(
            Line::new(&track(), &labels("alpine:3.22", Some(D1)), D1).base_image,
            "alpine:3.22"
        );
        // Another tag without a pin may name anything now: pinned instead.
        assert_eq!(
            Line::new(&track(), &labels("alpine:3.22.2", Some(D1)), D1).base_image,
            format!("alpine:3.22@{D1}")
        );
        // A name whose pin disagrees with the recorded digest is not trusted.
        assert_eq!(
            Line::new(&track(), &labels(&format!("alpine@{D2}"), Some(D1)), D1).base_image,
            format!("alpine:3.22@{D1}")
        );
    }

    #[test]
    fn the_pin_against_the_track() {
        let lags = pin_report(&format!("alpine:3.22.2@{D1}"), &track(), D2);
        assert_eq!(lags[0], format!("base-image-track alpine:3.22 names {D2}"));
        assert!(
            lags[2].starts_with(&format!("the pin lags the track ({D1} → {D2})")),
            "{lags:?}"
        );
        assert_eq!(lags.last().unwrap(), &format!("ARG BASE_IMAGE=alpine:3.22@{D2}"));
        assert_eq!(
            pin_report(&format!("alpine:3.22.2@{D1}"), &track(), D1).last().unwrap(),
            "the pin is current"
        );
        let loose = pin_report("alpine:3.22", &track(), D1);
        assert!(
            loose[2].contains("names no digest") && loose[3] == format!("ARG BASE_IMAGE=alpine:3.22@{D1}"),
            "{loose:?}"
        );
    }

    #[test]
    fn a_release_without_a_base_digest_counts_as_moved() {
        let l = Line::new(&track(), &labels("busybox:local", None), D1);
        assert!(l.moved());
        assert_eq!(l.base_image, format!("alpine:3.22@{D1}"));
        assert!(l.message().contains("records no base digest"), "{}", l.message());
        let none = Line::new(&track(), &BTreeMap::new(), D1);
        assert_eq!(
            (none.released, none.base_image.as_str()),
            (None, format!("alpine:3.22@{D1}").as_str())
        );
    }
}
