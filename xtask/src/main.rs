//! `cargo xtask <task>`: version, build, test, scan and publish the policy-platform image.
//! Parses the command line and the environment (once, here), then runs the task.

use std::ffi::OsString;
use xtask::{cli, ctx, exit};

/// Credentials (and where they are) are taken out of the environment before anything else
/// runs, so that no child process inherits them; `cli` reads them from this copy.
const TAKEN: [&str; 6] = [
    "REGISTRY_USERNAME",
    "REGISTRY_PASSWORD",
    "REGISTRY_PASSWORD_FILE",
    "SIGNING_KEY_FILE",
    "SIGNING_KEY_PASSWORD",
    "SIGNING_KEY_PASSWORD_FILE",
];

fn main() {
    let env: Vec<(String, OsString)> = TAKEN
        .iter()
        .filter_map(|k| Some((k.to_string(), std::env::var_os(k)?)))
        .collect();
    for k in TAKEN {
        // Single-threaded here: nothing else reads the environment yet.
        std::env::remove_var(k);
    }
    let lookup = |k: &str| {
        env.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var_os(k))
    };
    if let Err(e) = start(&lookup) {
        eprintln!("error: {}", exit::one_line(&e));
        std::process::exit(exit::code_of(&e));
    }
}

fn start(env: &dyn Fn(&str) -> Option<OsString>) -> anyhow::Result<()> {
    let argv: Vec<OsString> = std::env::args_os().skip(1).collect();
    let task = match cli::parse(argv, env)? {
        cli::Parsed::Help(h) => {
            print!("{h}");
            return Ok(());
        }
        cli::Parsed::Run(t) => t,
    };
    let cwd = std::env::current_dir()?;
    let root = ctx::find_root(
        env("XTASK_ROOT").map(Into::into),
        env("CARGO_MANIFEST_DIR").map(Into::into),
        &cwd,
    )?;
    let ctx = ctx::Ctx::new(root, task.dry_run(), ctx::Env::from_process());
    xtask::run(&ctx, task)
}
