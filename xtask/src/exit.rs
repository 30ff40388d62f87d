//! Exit codes of the contract, carried inside `anyhow::Error`.
//!
//! A task returns `Err(exit::gate(..))` (1), `usage(..)` (2) or `env(..)` (3); any other
//! error (an I/O failure, a command that crashed) counts as an environment error (3).

use std::fmt;

pub const GATE: i32 = 1;
pub const USAGE: i32 = 2;
pub const ENV: i32 = 3;

#[derive(Debug)]
pub struct Exit {
    pub code: i32,
    pub msg: String,
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Exit {}

pub fn gate(msg: impl Into<String>) -> anyhow::Error {
    Exit {
        code: GATE,
        msg: msg.into(),
    }
    .into()
}

pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    Exit {
        code: USAGE,
        msg: msg.into(),
    }
    .into()
}

pub fn env(msg: impl Into<String>) -> anyhow::Error {
    Exit {
        code: ENV,
        msg: msg.into(),
    }
    .into()
}

/// The exit code an error maps to: the innermost `Exit` in its chain, else 3.
pub fn code_of(err: &anyhow::Error) -> i32 {
    err.chain()
        .find_map(|e| e.downcast_ref::<Exit>())
        .map(|e| e.code)
        .unwrap_or(ENV)
}

/// The one line `main` prints: the whole chain, newlines folded.
pub fn one_line(err: &anyhow::Error) -> String {
    let text = format!("{err:#}");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn code_survives_context() {
        let e = Err::<(), _>(usage("bad VERSION")).context("bump-version").unwrap_err();
        assert_eq!(code_of(&e), USAGE);
        assert_eq!(one_line(&e), "bump-version: bad VERSION");
    }

    #[test]
    fn plain_errors_are_environment_errors() {
        let e = anyhow::anyhow!("docker crashed\nwith two lines");
        assert_eq!(code_of(&e), ENV);
        assert_eq!(one_line(&e), "docker crashed with two lines");
    }
}
