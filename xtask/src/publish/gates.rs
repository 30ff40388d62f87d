//! The gates publish runs on the built image, in order: smoke, integration, scan.
//! Nothing is pushed unless all pass; each keeps its own exit code (1 a finding, 3 a crash).

use crate::{cli::Args, ctx::Ctx, scan};
use anyhow::{Context, Result};
use serde_json::Value;

/// What the release record keeps of the gates.
pub struct Passed {
    pub integration: Value,
    pub scan: Value,
}

pub fn run(ctx: &Ctx, args: &Args, image: &str) -> Result<Passed> {
    ctx.step("gate: smoke");
    smoke(ctx, image).context("smoke gate")?;
    ctx.end_step();
    ctx.step("gate: integration");
    let integration = integration(ctx, image).context("integration gate")?;
    ctx.end_step();
    ctx.step("gate: scan");
    let opts = scan::ScanOpts::from_args(args)?;
    let scan = scan::scan(ctx, image, &opts).context("scan gate")?;
    ctx.end_step();
    Ok(Passed { integration, scan })
}

fn smoke(ctx: &Ctx, image: &str) -> Result<()> {
    crate::smoke::check(ctx, image)
}

// TEMPORARY until `integration::check` lands (issue 3): publish must not ship like this.
fn integration(_ctx: &Ctx, _image: &str) -> Result<Value> {
    eprintln!("    warning: the integration gate is not wired yet (issue 3)");
    Ok(Value::Null)
}

pub fn policy_hash(ctx: &Ctx) -> Result<String> {
    crate::smoke::policy_hash(ctx)
}
