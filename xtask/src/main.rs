//! `cargo xtask <task>`: version, build, test, scan and publish the policy-platform image.
//! `main` only parses and dispatches; each task lives in its own module.


mod bump;
mod cli;
mod config;
mod date;
mod ctx;
mod doctor;
mod exit;
mod git;
mod image;
mod integration;
mod publish;
mod release;
mod scan;
mod smoke;
mod tags;
mod tools;
mod version;

use anyhow::Result;
use cli::{Args, Spec};
use ctx::Ctx;

type Run = fn(&Ctx, &Args) -> Result<()>;

const TASKS: &[(&Spec, Run)] = &[
    (&bump::SPEC, bump::run),
    (&image::SPEC, image::run),
    (&smoke::SPEC, smoke::run),
    (&integration::SPEC, integration::run),
    (&scan::SPEC, scan::run),
    (&publish::SPEC, publish::run),
    (&doctor::SPEC, doctor::run),
];

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    match dispatch(&argv) {
        Ok(()) => {}
        Err(e) => {
            eprintln!("error: {}", exit::one_line(&e));
            std::process::exit(exit::code_of(&e));
        }
    }
}

fn dispatch(argv: &[String]) -> Result<()> {
    let Some(task) = argv.first() else {
        eprint!("{}", help());
        return Err(exit::usage(format!("no task given; usage: {USAGE}")));
    };
    if task == "--help" || task == "-h" || task == "help" {
        print!("{}", help());
        return Ok(());
    }
    let Some((spec, run)) = TASKS.iter().find(|(s, _)| s.name == task) else {
        return Err(exit::usage(format!("unknown task `{task}`; usage: {USAGE} (tasks: {})", task_names())));
    };
    let Some(args) = cli::parse(spec, &argv[1..])? else {
        print!("{}", cli::help(spec));
        return Ok(());
    };
    let ctx = Ctx::new(args.has("--dry-run"))?;
    if spec.name != bump::SPEC.name && spec.name != doctor::SPEC.name {
        // A bad config is reported before any work, whatever the task.
        ctx.config()?;
    }
    run(&ctx, &args)
}

const USAGE: &str = "cargo xtask <task> [flags]";

fn task_names() -> String {
    TASKS.iter().map(|(s, _)| s.name).collect::<Vec<_>>().join(", ")
}

fn help() -> String {
    let mut s = format!("Version, build, test, scan and publish the policy-platform image.\n\nUsage: {USAGE}\n\nTasks:\n");
    for (spec, _) in TASKS {
        s.push_str(&format!("  {:<14} {}\n", spec.name, spec.about.lines().next().unwrap_or("")));
    }
    s.push_str("\n`cargo xtask <task> --help` documents every flag.\nExit codes: 0 ok, 1 a gate found a problem, 2 usage or input error, 3 environment error.\n");
    s
}
