//! The release version: VERSION's format and the bump rules (cargo-release's grammar).
//! Pure: no I/O here.

use crate::exit;
use anyhow::Result;
use semver::{BuildMetadata, Prerelease, Version};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Patch,
    Minor,
    Major,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Patch => "patch",
            Level::Minor => "minor",
            Level::Major => "major",
        })
    }
}

/// Pre-release phases in the order they may move.
const PHASES: [&str; 3] = ["alpha", "beta", "rc"];

pub const EXPECTED: &str = "vMAJOR.MINOR.PATCH or vMAJOR.MINOR.PATCH-(alpha|beta|rc).N, then a newline";

/// Parses VERSION's whole content. Errors say what was found and the expected form.
pub fn parse_file(content: &str) -> Result<Version> {
    let line = content.strip_suffix('\n').unwrap_or(content);
    let shown = shorten(content);
    if line.contains('\n') || line.contains('\r') {
        return Err(exit::usage(format!(
            "VERSION holds more than one line ({shown}); expected {EXPECTED}"
        )));
    }
    parse_tag(line).map_err(|why| exit::usage(format!("VERSION holds {shown} ({why}); expected {EXPECTED}")))
}

/// Parses `vX.Y.Z[-phase.N]` (the leading `v` required).
pub fn parse_tag(s: &str) -> Result<Version, String> {
    let Some(rest) = s.strip_prefix('v') else {
        return Err(if s.is_empty() {
            "it is empty".into()
        } else {
            "no leading `v`".into()
        });
    };
    parse_plain(rest)
}

/// Parses `X.Y.Z[-phase.N]` (no `v`).
pub fn parse_plain(s: &str) -> Result<Version, String> {
    let v = Version::parse(s).map_err(|e| format!("not a semantic version: {e}"))?;
    if !v.build.is_empty() {
        return Err("build metadata (`+...`) is not allowed in image tags".into());
    }
    if !v.pre.is_empty() && phase(&v).is_none() {
        return Err(format!("pre-release `{}` is not alpha.N, beta.N or rc.N", v.pre));
    }
    Ok(v)
}

/// `(phase index, N)` of a pre-release like `rc.2`.
fn phase(v: &Version) -> Option<(usize, u64)> {
    let (name, n) = v.pre.as_str().split_once('.')?;
    let idx = PHASES.iter().position(|p| *p == name)?;
    let n: u64 = n.parse().ok().filter(|_| !n.starts_with('0') || n == "0")?;
    Some((idx, n))
}

pub fn tag(v: &Version) -> String {
    format!("v{v}")
}

/// What `bump-version` was asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Bump {
    Level(Level),
    Release,
    Phase(&'static str),
    Exact(Version),
}

impl Bump {
    pub fn parse(s: &str) -> Result<Bump> {
        Ok(match s {
            "major" => Bump::Level(Level::Major),
            "minor" => Bump::Level(Level::Minor),
            "patch" => Bump::Level(Level::Patch),
            "release" => Bump::Release,
            "alpha" => Bump::Phase("alpha"),
            "beta" => Bump::Phase("beta"),
            "rc" => Bump::Phase("rc"),
            _ => {
                let plain = s.strip_prefix('v').unwrap_or(s);
                let v = parse_plain(plain).map_err(|why| {
                    exit::usage(format!(
                        "`{s}` is not a bump level or version ({why}); use major|minor|patch|release|rc|beta|alpha|auto or X.Y.Z"
                    ))
                })?;
                Bump::Exact(v)
            }
        })
    }
}

/// The next version. Refuses what would go backwards or mean nothing.
pub fn bump(cur: &Version, how: &Bump) -> Result<Version> {
    // A number at u64::MAX cannot grow: an input error, never an overflow.
    let next = |n: u64, part: &str| {
        n.checked_add(1).ok_or_else(|| {
            exit::usage(format!(
                "{} cannot be bumped: its {part} number is at its maximum; set VERSION by hand",
                tag(cur)
            ))
        })
    };
    let mut v = cur.clone();
    v.build = BuildMetadata::EMPTY;
    match how {
        Bump::Level(Level::Major) => {
            v = Version::new(next(cur.major, "major")?, 0, 0);
        }
        Bump::Level(Level::Minor) => {
            v = Version::new(cur.major, next(cur.minor, "minor")?, 0);
        }
        Bump::Level(Level::Patch) => {
            // cargo-release: a patch bump of a pre-release releases it.
            if cur.pre.is_empty() {
                v.patch = next(cur.patch, "patch")?;
            }
            v.pre = Prerelease::EMPTY;
        }
        Bump::Release => {
            if cur.pre.is_empty() {
                return Err(exit::usage(format!(
                    "{} is not a pre-release, so there is nothing to `release`; use patch, minor or major",
                    tag(cur)
                )));
            }
            v.pre = Prerelease::EMPTY;
        }
        Bump::Phase(name) => {
            let want = PHASES.iter().position(|p| p == name).unwrap_or(0);
            let n = match phase(cur) {
                None => {
                    v.patch = next(cur.patch, "patch")?;
                    1
                }
                Some((have, n)) if have == want => next(n, "pre-release")?,
                Some((have, _)) if have < want => 1,
                Some((have, _)) => {
                    return Err(exit::usage(format!(
                        "{} is already past {name}: a pre-release never goes back from {} to {name}; use {} or release",
                        tag(cur),
                        PHASES[have],
                        PHASES[have]
                    )))
                }
            };
            v.pre = Prerelease::new(&format!("{name}.{n}"))
                .map_err(|e| exit::usage(format!("cannot make the pre-release {name}.{n}: {e}")))?;
        }
        Bump::Exact(want) => {
            if want <= cur {
                return Err(exit::usage(format!(
                    "{} is not higher than the current {}; versions never go backwards",
                    tag(want),
                    tag(cur)
                )));
            }
            v = want.clone();
        }
    }
    Ok(v)
}

fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if s.chars().count() > 40 {
        out.push('…');
    }
    format!("{out:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        parse_tag(s).unwrap()
    }

    fn bumped(cur: &str, how: &str) -> String {
        tag(&bump(&v(cur), &Bump::parse(how).unwrap()).unwrap())
    }

    #[test]
    fn levels() {
        assert_eq!(bumped("v1.0.2", "patch"), "v1.0.3");
        assert_eq!(bumped("v1.0.2", "minor"), "v1.1.0");
        assert_eq!(bumped("v1.4.2", "major"), "v2.0.0");
        assert_eq!(bumped("v1.0.3-rc.2", "patch"), "v1.0.3");
        assert_eq!(bumped("v1.0.3-rc.2", "minor"), "v1.1.0");
        assert_eq!(bumped("v1.0.3-rc.2", "release"), "v1.0.3");
    }

    #[test]
    fn phases_move_forward_only() {
        assert_eq!(bumped("v1.0.0", "alpha"), "v1.0.1-alpha.1");
        assert_eq!(bumped("v1.0.0", "rc"), "v1.0.1-rc.1");
        assert_eq!(bumped("v1.0.1-alpha.1", "alpha"), "v1.0.1-alpha.2");
        assert_eq!(bumped("v1.0.1-alpha.9", "beta"), "v1.0.1-beta.1");
        assert_eq!(bumped("v1.0.1-beta.3", "rc"), "v1.0.1-rc.1");
        assert_eq!(bumped("v1.0.1-rc.9", "rc"), "v1.0.1-rc.10");
        for (cur, how) in [
            ("v1.0.1-beta.1", "alpha"),
            ("v1.0.1-rc.1", "beta"),
            ("v1.0.1-rc.1", "alpha"),
        ] {
            let e = bump(&v(cur), &Bump::parse(how).unwrap()).unwrap_err();
            assert_eq!(crate::exit::code_of(&e), 2);
            assert!(e.to_string().contains("never goes back"), "{e}");
        }
    }

    #[test]
    fn exact_versions() {
        assert_eq!(bumped("v1.0.2", "1.2.0"), "v1.2.0");
        assert_eq!(bumped("v1.0.2", "v2.0.0-rc.1"), "v2.0.0-rc.1");
        assert_eq!(bumped("v1.0.0-rc.1", "1.0.0"), "v1.0.0");
        for lower in ["1.0.1", "v1.0.2", "0.9.9", "1.0.2-rc.1"] {
            let e = bump(&v("v1.0.2"), &Bump::parse(lower).unwrap()).unwrap_err();
            assert!(e.to_string().contains("never go backwards"), "{lower}: {e}");
        }
        for junk in ["1.0", "v1.0.2.3", "01.0.0", "1.0.0+b1", "1.0.0-pre", "huge", ""] {
            let e = Bump::parse(junk).unwrap_err();
            assert_eq!(crate::exit::code_of(&e), 2, "{junk}");
        }
    }

    #[test]
    fn release_of_a_release_is_refused() {
        let e = bump(&v("v1.0.2"), &Bump::Release).unwrap_err();
        assert!(e.to_string().contains("not a pre-release"), "{e}");
    }

    #[test]
    fn file_format() {
        assert_eq!(parse_file("v1.0.2\n").unwrap(), Version::new(1, 0, 2));
        assert_eq!(parse_file("v1.0.2").unwrap(), Version::new(1, 0, 2));
        assert_eq!(tag(&parse_file("v2.0.0-rc.1\n").unwrap()), "v2.0.0-rc.1");
        for bad in [
            "",
            "\n",
            "1.0.2\n",
            "v1.0\n",
            "v1.0.2.3\n",
            "vX\n",
            "v01.0.2\n",
            "v1.0.2+build\n",
            "v1.0.2 \n",
            "v1.0.2\nv1.0.3\n",
            "v1.0.2\n\n",
            " v1.0.2\n",
            "v1.0.2-pre\n",
            "v1.0.2-rc.01\n",
            "v1.0.2\r\n",
        ] {
            let e = parse_file(bad).unwrap_err();
            assert_eq!(crate::exit::code_of(&e), 2, "{bad:?}");
            let msg = e.to_string();
            assert!(msg.contains("VERSION") && msg.contains("expected vMAJOR"), "{msg}");
            assert!(!msg.contains('\n'), "{msg}");
        }
    }

    #[test]
    fn numbers_at_their_maximum_are_an_input_error() {
        let max = u64::MAX;
        for (cur, how) in [
            (format!("v{max}.0.0"), "major"),
            (format!("v1.{max}.0"), "minor"),
            (format!("v1.0.{max}"), "patch"),
            (format!("v1.0.{max}"), "rc"),
            (format!("v1.0.0-rc.{max}"), "rc"),
        ] {
            let v = parse_tag(&cur).unwrap();
            let e = bump(&v, &Bump::parse(how).unwrap()).unwrap_err();
            assert_eq!(crate::exit::code_of(&e), 2, "{cur} {how}: {e}");
            assert!(e.to_string().contains("at its maximum"), "{e}");
        }
    }
}
