//! `bump-version`: rewrites VERSION by a level, a pre-release phase, an exact version, or
//! `auto` (the level computed from what changed since VERSION last changed). Needs git for `auto`.

use crate::tools::git;
use crate::version::{self, Bump, Level};
use crate::{ctx::Ctx, exit, files, release, tags};
use anyhow::Result;
use std::collections::{BTreeMap, BTreeSet};

/// `how`: the bump asked for, `None` for `auto`.
pub fn run(ctx: &Ctx, how: Option<Bump>) -> Result<()> {
    let cur = release::read_version(ctx)?;
    let bump = match how {
        Some(b) => b,
        None => {
            let (level, reasons) = auto_level(ctx, &cur)?;
            for r in &reasons {
                eprintln!("  {r}");
            }
            eprintln!("auto: {level} release");
            Bump::Level(level)
        }
    };
    let next = version::bump(&cur, &bump)?;
    let line = format!("{} -> {}", version::tag(&cur), version::tag(&next));
    if ctx.dry_run() {
        println!("{line} (dry run: VERSION not written)");
        return Ok(());
    }
    files::write_atomic(
        &ctx.path("VERSION"),
        format!("{}\n", version::tag(&next)).as_bytes(),
        0o644,
    )?;
    println!("{line}");
    Ok(())
}

/// Gathers what changed since the commit that last changed VERSION, then classifies it.
fn auto_level(ctx: &Ctx, cur: &semver::Version) -> Result<(Level, Vec<String>)> {
    crate::tools::require(&["git"])?;
    let base = git::last_change(ctx, "VERSION").map_err(|e| {
        exit::usage(format!(
            "bump-version auto needs a git checkout ({e}); run it inside the repo"
        ))
    })?;
    // No commit has touched VERSION yet: everything counts as new.
    let base = base.as_deref().unwrap_or(EMPTY_TREE);

    let mut changes = Vec::new();
    for (status, path, old) in git::changes_since(ctx, base)? {
        changes.push(Change { path, note: "" });
        if let Some(old) = old.filter(|_| status.starts_with('R')) {
            changes.push(Change { path: old, note: "" });
        }
    }
    let dirty: BTreeSet<String> = git::dirty_files(ctx)?.into_iter().collect();
    for c in &mut changes {
        if dirty.contains(&c.path) {
            c.note = " (uncommitted)";
        }
    }
    for path in git::untracked(ctx)? {
        changes.push(Change {
            path,
            note: " (untracked)",
        });
    }

    let old_df = git::show(ctx, base, "Dockerfile").unwrap_or_default();
    let new_df = std::fs::read_to_string(ctx.path("Dockerfile")).unwrap_or_default();
    let old_repos: BTreeSet<String> = git::dirs_at(ctx, base, "policies").into_iter().collect();
    let new_repos = policy_repos(&ctx.path("policies"));

    let input = AutoInput {
        changes: &changes,
        old_repos: &old_repos,
        new_repos: &new_repos,
        old_pins: &tags::tool_pins(&tags::dockerfile_args(&old_df, &[])),
        new_pins: &tags::tool_pins(&tags::dockerfile_args(&new_df, &[])),
    };
    classify(&input).ok_or_else(|| {
        exit::usage(format!(
            "nothing to release since {}: no change to policies/ or the Dockerfile",
            version::tag(cur)
        ))
    })
}

const EMPTY_TREE: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

/// Policy repos: the folders directly under `policies/` that hold at least one file.
pub fn policy_repos(dir: &std::path::Path) -> BTreeSet<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeSet::new();
    };
    entries
        .flatten()
        .filter(|e| e.path().is_dir() && std::fs::read_dir(e.path()).is_ok_and(|mut d| d.next().is_some()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.'))
        .collect()
}

pub struct Change {
    pub path: String,
    pub note: &'static str,
}

pub struct AutoInput<'a> {
    pub changes: &'a [Change],
    pub old_repos: &'a BTreeSet<String>,
    pub new_repos: &'a BTreeSet<String>,
    pub old_pins: &'a BTreeMap<String, String>,
    pub new_pins: &'a BTreeMap<String, String>,
}

/// Pure: the release level and the reasons for it, or `None` when nothing needs a release.
pub fn classify(i: &AutoInput<'_>) -> Option<(Level, Vec<String>)> {
    let mut reasons: Vec<(Level, String)> = Vec::new();
    for repo in i.old_repos.difference(i.new_repos) {
        reasons.push((Level::Major, format!("major: policy repo `{repo}` removed or renamed")));
    }
    for repo in i.new_repos.difference(i.old_repos) {
        reasons.push((Level::Minor, format!("minor: new policy repo `{repo}`")));
    }
    for (tool, old) in i.old_pins {
        match i.new_pins.get(tool) {
            None => reasons.push((
                Level::Major,
                format!("major: tool `{tool}` removed from the Dockerfile"),
            )),
            Some(new) if new != old => reasons.push((
                Level::Major,
                format!("major: tool pin {tool} {old} -> {new} in Dockerfile"),
            )),
            Some(_) => {}
        }
    }
    for tool in i.new_pins.keys().filter(|t| !i.old_pins.contains_key(*t)) {
        reasons.push((Level::Minor, format!("minor: new tool `{tool}` in Dockerfile")));
    }
    for c in i.changes {
        if c.path.starts_with("policies/") || c.path == "Dockerfile" {
            reasons.push((Level::Patch, format!("patch: {} changed{}", c.path, c.note)));
        }
    }
    let level = reasons.iter().map(|(l, _)| *l).max()?;
    reasons.sort_by_key(|r| std::cmp::Reverse(r.0));
    Some((level, reasons.into_iter().map(|(_, r)| r).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn pins(items: &[(&str, &str)]) -> BTreeMap<String, String> {
        items.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn changes(paths: &[&str]) -> Vec<Change> {
        paths
            .iter()
            .map(|p| Change {
                path: p.to_string(),
                note: "",
            })
            .collect()
    }

    fn level(c: &[&str], old: &[&str], new: &[&str], op: &[(&str, &str)], np: &[(&str, &str)]) -> Option<Level> {
        let (c, o, n, op, np) = (changes(c), set(old), set(new), pins(op), pins(np));
        classify(&AutoInput {
            changes: &c,
            old_repos: &o,
            new_repos: &n,
            old_pins: &op,
            new_pins: &np,
        })
        .map(|x| x.0)
    }

    const K: (&str, &str) = ("kyverno", "1.19.0");

    #[test]
    fn levels_follow_the_seed_rule() {
        let r = &["security-policy"];
        assert_eq!(level(&[], r, r, &[K], &[K]), None);
        assert_eq!(level(&["xtask/src/main.rs", "README.md"], r, r, &[K], &[K]), None);
        assert_eq!(
            level(&["policies/security-policy/a.yaml"], r, r, &[K], &[K]),
            Some(Level::Patch)
        );
        assert_eq!(level(&["Dockerfile"], r, r, &[K], &[K]), Some(Level::Patch));
        assert_eq!(
            level(&["Dockerfile"], r, r, &[K], &[K, ("trivy", "0.59.1")]),
            Some(Level::Minor)
        );
        assert_eq!(
            level(&["Dockerfile"], r, r, &[K], &[("kyverno", "1.20.0")]),
            Some(Level::Major)
        );
        assert_eq!(
            level(&["Dockerfile"], r, r, &[K, ("helm", "3.21.4")], &[K]),
            Some(Level::Major)
        );
        assert_eq!(
            level(&["policies/new/a.yaml"], r, &["security-policy", "new"], &[K], &[K]),
            Some(Level::Minor)
        );
        assert_eq!(
            level(&["policies/security-policy/a.yaml"], r, &["renamed"], &[K], &[K]),
            Some(Level::Major)
        );
    }

    #[test]
    fn reasons_name_the_files_and_pins() {
        let c = vec![Change {
            path: "policies/p/x.yaml".into(),
            note: " (uncommitted)",
        }];
        let (o, n) = (set(&["p"]), set(&["p"]));
        let (op, np) = (pins(&[K]), pins(&[("kyverno", "1.20.0")]));
        let (lvl, reasons) = classify(&AutoInput {
            changes: &c,
            old_repos: &o,
            new_repos: &n,
            old_pins: &op,
            new_pins: &np,
        })
        .unwrap();
        assert_eq!(lvl, Level::Major);
        assert_eq!(reasons[0], "major: tool pin kyverno 1.19.0 -> 1.20.0 in Dockerfile");
        assert_eq!(reasons[1], "patch: policies/p/x.yaml changed (uncommitted)");
    }
}
