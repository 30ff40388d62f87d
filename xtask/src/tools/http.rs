//! Downloads with `curl` into a file of ours: redirects followed, a timeout, a size cap,
//! the user's `~/.curlrc` ignored, never a downgrade from https on a redirect.

use crate::ctx::Ctx;
use crate::exit;
use crate::runner::Cmd;
use anyhow::Result;
use std::path::Path;
use std::time::Duration;

/// How a download ended when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// The file is at the destination, this many bytes.
    Done(u64),
    /// The server says there is no such file (HTTP 404 or 410).
    Missing(u16),
}

/// The curl command for one download (a value, so a test or a dry run can show it).
pub fn download_cmd(url: &str, dest: &Path, max_bytes: u64, timeout: Duration) -> Cmd {
    // `-q` first: no ~/.curlrc can add options to this command.
    Cmd::new("curl")
        .args([
            "-q",
            "--fail",
            "--location",
            "--silent",
            "--show-error",
            "--proto",
            "=http,https",
        ])
        .args([
            "--proto-redir",
            if url.starts_with("https://") {
                "=https"
            } else {
                "=http,https"
            },
        ])
        .args(["--connect-timeout", "20", "--max-time", &timeout.as_secs().to_string()])
        .args([
            "--max-filesize",
            &max_bytes.to_string(),
            "--write-out",
            "%{http_code}",
            "--output",
        ])
        .arg(dest)
        .arg(url)
        .timeout(timeout + Duration::from_secs(10))
}

/// Downloads `url` to `dest` (a read: it runs in a dry run too). A missing file is
/// `Missing`; anything else that fails is exit 3 naming the URL and curl's reason.
pub fn download(ctx: &Ctx, what: &str, url: &str, dest: &Path, max_bytes: u64, timeout: Duration) -> Result<Fetched> {
    super::require(&["curl"])?;
    let out = ctx.run.read(&download_cmd(url, dest, max_bytes, timeout))?;
    let status: u16 = out.text().trim().parse().unwrap_or(0);
    match out.code {
        Some(0) => {
            let size = std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0);
            // curl checks the cap only when the server announces a length.
            if size > max_bytes {
                return Err(exit::env(format!(
                    "{what}: {url} is over {} MB, more than any release of it; check the URL",
                    max_bytes >> 20
                )));
            }
            Ok(Fetched::Done(size))
        }
        Some(22) if matches!(status, 404 | 410) => Ok(Fetched::Missing(status)),
        Some(22) => Err(exit::env(format!(
            "{what}: {url} answered HTTP {status}; rerun once it answers"
        ))),
        Some(63) => Err(exit::env(format!(
            "{what}: {url} is over {} MB, more than any release of it; check the URL",
            max_bytes >> 20
        ))),
        _ => Err(exit::env(format!(
            "{what}: cannot download {url} ({}); check the network or the mirror",
            out.error_line()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_is_locked_down() {
        let c = download_cmd(
            "https://get.helm.sh/h.tgz",
            Path::new("/t/h.tgz"),
            1 << 20,
            Duration::from_secs(60),
        );
        let shown = c.display();
        assert!(shown.starts_with("curl -q --fail --location"), "{shown}");
        for want in [
            "--proto =http,https",
            "--proto-redir =https",
            "--max-time 60",
            "--max-filesize 1048576",
            "--output /t/h.tgz https://get.helm.sh/h.tgz",
        ] {
            assert!(shown.contains(want), "{want} in {shown}");
        }
        let c = download_cmd("http://127.0.0.1:9/h.tgz", Path::new("/t/h"), 1, Duration::from_secs(1));
        assert!(c.display().contains("--proto-redir =http,https"));
    }
}
