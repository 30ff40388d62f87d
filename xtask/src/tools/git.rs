//! git: the commit being released, what the working tree changed, older versions of files,
//! and worktrees of a release commit. Revisions come before `--`, paths after it.

use crate::ctx::Ctx;
use crate::exit;
use crate::runner::Cmd;
use anyhow::{Context, Result};
use std::path::Path;

fn git(ctx: &Ctx) -> Cmd {
    Cmd::new("git").dir(&ctx.root)
}

/// Runs a read-only git command in the repo; its stdout, or an error with git's words.
fn read(ctx: &Ctx, args: &[&str]) -> Result<String> {
    let out = ctx.run.read(&git(ctx).args(args))?;
    out.env_ok(format_args!("git {} failed", args.join(" ")))?;
    Ok(out.text())
}

pub struct Head {
    pub commit: String,
    /// Committer time, RFC 3339: the only clock the image's labels use.
    pub time: String,
}

pub fn head(ctx: &Ctx) -> Result<Head> {
    let out = read(ctx, &["log", "-1", "--format=%H %cI"]).map_err(|e| {
        exit::usage(format!(
            "cannot read the git commit ({e}); run inside a git checkout with at least one commit"
        ))
    })?;
    let (commit, time) = out.trim().split_once(' ').context("unexpected `git log` output")?;
    Ok(Head {
        commit: commit.to_string(),
        time: time.to_string(),
    })
}

/// Files with uncommitted changes or untracked, as `git status --porcelain` names them.
pub fn dirty_files(ctx: &Ctx) -> Result<Vec<String>> {
    Ok(parse_porcelain(&read(
        ctx,
        &["status", "--porcelain", "--untracked-files=all"],
    )?))
}

pub fn parse_porcelain(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| l.len() > 3)
        .map(|l| {
            let path = &l[3..];
            path.rsplit_once(" -> ")
                .map(|(_, new)| new)
                .unwrap_or(path)
                .trim_matches('"')
                .to_string()
        })
        .collect()
}

/// The last commit that changed `path` (`None` when none did).
pub fn last_change(ctx: &Ctx, path: &str) -> Result<Option<String>> {
    let out = read(ctx, &["log", "-1", "--format=%H", "--", path])?;
    Ok(Some(out.trim().to_string()).filter(|s| !s.is_empty()))
}

/// `git diff --name-status -M BASE -- .`: `(status, path, old path of a rename)`.
pub fn changes_since(ctx: &Ctx, base: &str) -> Result<Vec<(String, String, Option<String>)>> {
    let out = read(ctx, &["diff", "--name-status", "-M", base, "--", "."])?;
    Ok(out
        .lines()
        .filter_map(|line| {
            let parts: Vec<&str> = line.split('\t').collect();
            let (status, path) = (parts.first()?, parts.last()?);
            let old = (parts.len() == 3).then(|| parts[1].to_string());
            Some((status.to_string(), path.to_string(), old))
        })
        .collect())
}

/// Untracked files that are not ignored.
pub fn untracked(ctx: &Ctx) -> Result<Vec<String>> {
    Ok(read(ctx, &["ls-files", "--others", "--exclude-standard"])?
        .lines()
        .map(String::from)
        .collect())
}

/// A file's content at a revision (`None` when it did not exist there).
pub fn show(ctx: &Ctx, rev: &str, path: &str) -> Option<String> {
    read(ctx, &["show", &format!("{rev}:{path}")]).ok()
}

/// The folders directly under `dir/` at a revision.
pub fn dirs_at(ctx: &Ctx, rev: &str, dir: &str) -> Vec<String> {
    read(ctx, &["ls-tree", "-d", "--name-only", rev, &format!("{dir}/")])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{dir}/")).map(String::from))
        .collect()
}

/// Whether this clone has the commit.
pub fn has_commit(ctx: &Ctx, rev: &str) -> bool {
    ctx.run
        .read(&git(ctx).args(["cat-file", "-e", &format!("{rev}^{{commit}}")]))
        .is_ok_and(|o| o.ok())
}

/// The paths among `paths` that differ between two revisions.
pub fn changed_between(ctx: &Ctx, from: &str, to: &str, paths: &[&str]) -> Result<Vec<String>> {
    let mut args = vec!["diff", "--name-only", from, to, "--"];
    args.extend_from_slice(paths);
    Ok(read(ctx, &args)?.lines().map(String::from).collect())
}

/// `git worktree add --detach DIR COMMIT`; shown only in a dry run.
pub fn worktree_add(ctx: &Ctx, dir: &Path, commit: &str) -> Result<()> {
    let c = git(ctx).args(["worktree", "add", "--detach"]).arg(dir).arg(commit);
    if let Some(out) = ctx.run.change(&c)? {
        out.env_ok(format_args!("cannot check out the release commit {commit}"))?;
    }
    Ok(())
}

/// Removes a worktree (best effort) and forgets stale ones.
pub fn worktree_remove(ctx: &Ctx, dir: &Path) {
    let _ = ctx.run.read(&git(ctx).args(["worktree", "remove", "--force"]).arg(dir));
    let _ = std::fs::remove_dir_all(dir);
    let _ = ctx.run.read(&git(ctx).args(["worktree", "prune"]));
}

#[cfg(test)]
mod tests {
    #[test]
    fn porcelain_names() {
        let out = " M VERSION\n?? policies/new/a.yaml\nR  old.txt -> new.txt\n";
        assert_eq!(
            super::parse_porcelain(out),
            vec!["VERSION", "policies/new/a.yaml", "new.txt"]
        );
    }
}
