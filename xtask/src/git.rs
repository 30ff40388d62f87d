//! Facts from git: the commit, its time, and what the working tree changed.

use crate::{ctx::Ctx, exit};
use anyhow::{Context, Result};

pub struct Head {
    pub commit: String,
    /// Committer time, RFC 3339: the only clock the image's labels use.
    pub time: String,
}

pub fn head(ctx: &Ctx) -> Result<Head> {
    let out = ctx
        .probe(ctx.sh.cmd("git").args(["log", "-1", "--format=%H %cI"]))
        .map_err(|e| exit::usage(format!("cannot read the git commit ({e}); run inside a git checkout with at least one commit")))?;
    let (commit, time) = out.trim().split_once(' ').context("unexpected `git log` output")?;
    Ok(Head { commit: commit.to_string(), time: time.to_string() })
}

/// Files with uncommitted changes or untracked, as `git status --porcelain` names them.
pub fn dirty_files(ctx: &Ctx) -> Result<Vec<String>> {
    let out = ctx.probe(ctx.sh.cmd("git").args(["status", "--porcelain", "--untracked-files=all"]))?;
    Ok(parse_porcelain(&out))
}

pub fn parse_porcelain(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| l.len() > 3)
        .map(|l| {
            let path = &l[3..];
            path.rsplit_once(" -> ").map(|(_, new)| new).unwrap_or(path).trim_matches('"').to_string()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn porcelain_names() {
        let out = " M VERSION\n?? policies/new/a.yaml\nR  old.txt -> new.txt\n";
        assert_eq!(super::parse_porcelain(out), vec!["VERSION", "policies/new/a.yaml", "new.txt"]);
    }
}
