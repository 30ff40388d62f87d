//! The gates publish runs on the built image: smoke, integration and scan. They only read
//! the image, so they run side by side (each with its own context: a shell is not shared
//! across threads); nothing is pushed unless all pass. Each keeps its own exit code
//! (1 a finding, 3 a crash); when several fail, the first in that order is the error and
//! the others are listed.

use crate::scan::{self, ScanOpts};
use crate::{ctx::Ctx, exit};
use anyhow::{Context, Result};
use serde_json::Value;

/// What the release record keeps of the gates.
pub struct Passed {
    pub integration: Value,
    pub scan: Value,
}

/// Runs the gates and, meanwhile on this thread, `meanwhile` (the registry reads of the
/// push plan); returns both outcomes.
/// The gates run on the image's id (`built`: id, name): a tag could be moved by another build
/// on the same engine while they run; the name is only for messages and report names.
/// `meanwhile` gets the same id.
pub fn run<T>(
    ctx: &Ctx,
    opts: &ScanOpts,
    built: (&str, &str),
    meanwhile: impl FnOnce(&str) -> T,
) -> (Result<Passed>, T) {
    let (id, name) = built;
    // In a dry run there is no id yet: the plan shows the name.
    let id = if id.is_empty() { name } else { id };
    eprintln!("==> gates on {name} ({id}): smoke, integration and scan, side by side");
    let (smoke, integration, scanned, other) = std::thread::scope(|s| {
        let a = s.spawn(|| crate::smoke::check_as(ctx, id, name).context("smoke gate"));
        let b = s.spawn(|| crate::integration::check_as(ctx, id, name).context("integration gate"));
        let c = s.spawn(|| scan::scan_as(ctx, id, name, opts).context("scan gate"));
        let other = meanwhile(id);
        (join(a), join(b), join(c), other)
    });
    let errors: Vec<&anyhow::Error> = [smoke.as_ref().err(), integration.as_ref().err(), scanned.as_ref().err()]
        .into_iter()
        .flatten()
        .collect();
    if errors.len() > 1 {
        eprintln!("gates that failed:");
        for e in &errors {
            eprintln!("  - {}", exit::one_line(e));
        }
    }
    let passed = (|| {
        Ok(Passed {
            integration: {
                smoke?;
                integration?
            },
            scan: scanned?,
        })
    })();
    (passed, other)
}

fn join<T>(h: std::thread::ScopedJoinHandle<'_, Result<T>>) -> Result<T> {
    h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a gate panicked")))
}

/// Before any build: the scan's own checks (Trivy found at the pinned version, no
/// variable that hides findings, readable waivers), by a dry run of it.
pub fn preflight(ctx: &Ctx, opts: &ScanOpts, image: &str) -> Result<()> {
    eprintln!("    (the scan's own checks, as a dry run:)");
    scan::scan(&ctx.as_dry_run(), image, opts).map(|_| ())
}
