//! The policy-platform xtask as a library: `main` parses the command line and calls
//! [`run`]; the tests and examples call the same code.

pub mod bump;
pub mod bump_tool;
pub mod cleanup;
pub mod cli;
pub mod config;
pub mod ctx;
pub mod date;
pub mod doctor;
pub mod exit;
pub mod files;
pub mod flags;
pub mod image;
pub mod integration;
pub mod publish;
pub mod reference;
pub mod release;
pub mod runner;
pub mod scan;
pub mod sign;
pub mod smoke;
pub mod tags;
pub mod tools;
pub mod verify;
pub mod version;

use anyhow::Result;
use cli::Task;
use ctx::Ctx;

/// Runs one task on a context.
pub fn run(ctx: &Ctx, task: Task) -> Result<()> {
    if task.needs_config() {
        // A bad config is reported before any work, whatever the task.
        ctx.config()?;
    }
    // Tasks that start containers or make temp folders clean up even when killed.
    let _guard = task.guarded().then(|| cleanup::guard(ctx));
    match task {
        Task::Bump { how, .. } => bump::run(ctx, how),
        Task::BumpTool(opts) => bump_tool::run(ctx, &opts),
        Task::Image { build, .. } => image::build(ctx, &build).map(|_| ()),
        Task::Smoke { image, .. } => smoke::check(ctx, &release::image_or_local(ctx, image)?),
        Task::Integration { image, .. } => integration::check(ctx, &release::image_or_local(ctx, image)?).map(|_| ()),
        Task::Scan { image, gate, .. } => scan::scan(ctx, &release::image_or_local(ctx, image)?, &gate).map(|_| ()),
        Task::Publish(opts) => publish::run(ctx, *opts),
        Task::Doctor => doctor::run(ctx),
        Task::Verify(opts) => verify::run(ctx, &opts),
        Task::BumpBase { creds } => publish::bump_base(ctx, creds),
    }
}
