//! Registry clients fail for passing reasons (a dropped connection, 429, a 5xx): such
//! errors are retried with backoff; the rest end at once with the client's own words.

use crate::ctx::Ctx;
use crate::exit;
use crate::runner::{Cmd, Out};
use anyhow::Result;
use std::time::Duration;

/// Retries after a transient error: 3, waiting 1 s, 2 s, then 4 s.
pub const RETRIES: u32 = 3;

pub fn backoff(retry: u32) -> Duration {
    Duration::from_secs(1 << retry.min(5))
}

/// Errors a registry client reports that a retry may cure: dropped connections,
/// timeouts, 408, 429 and 5xx. Authentication and "not found" are not among them.
pub fn is_transient(stderr: &str) -> bool {
    let s = stderr.to_ascii_lowercase();
    const WORDS: [&str; 19] = [
        "connection reset",
        "context deadline exceeded",
        "server closed idle connection",
        "use of closed network connection",
        "connection refused",
        "broken pipe",
        "i/o timeout",
        "timeout exceeded",
        "tls handshake timeout",
        "unexpected eof",
        ": eof",
        "too many requests",
        "toomanyrequests",
        "request timeout",
        "service unavailable",
        "bad gateway",
        "gateway timeout",
        "internal server error",
        "server misbehaving",
    ];
    if WORDS.iter().any(|w| s.contains(w)) || s.trim_end().ends_with("eof") {
        return true;
    }
    // "status 503", "status code 429", "response status code 502", "HTTP 500"...
    s.split(|c: char| !c.is_ascii_alphanumeric())
        .collect::<Vec<_>>()
        .windows(2)
        .any(|w| {
            matches!(w[0], "status" | "code" | "http")
                && w[1]
                    .parse::<u16>()
                    .is_ok_and(|n| n == 408 || n == 429 || (500..600).contains(&n))
        })
}

/// The registry says the thing is not there (a tag, a manifest or the repository).
pub fn is_missing(err: &str) -> bool {
    let e = err.to_ascii_lowercase();
    e.contains("manifest unknown")
        || e.contains("name unknown")
        || e.contains("404 (not found)")
        || e.contains("not found: manifest")
}

/// A registry read (it runs in a dry run too), retried on transient errors. `None` when
/// the registry says the thing does not exist. `what` names it in the error.
pub fn query(ctx: &Ctx, what: &str, cmd: &Cmd) -> Result<Option<Out>> {
    attempt(ctx, what, cmd, false)
}

/// A registry write (skipped in a dry run: `None`), retried likewise.
pub fn change(ctx: &Ctx, what: &str, cmd: &Cmd) -> Result<Option<Out>> {
    attempt(ctx, what, cmd, true)
}

/// Runs `cmd` (a change when `write`, else a read) until it succeeds, fails for good, or
/// the retries are used up. Only a read takes "not found" for an answer (`None`).
fn attempt(ctx: &Ctx, what: &str, cmd: &Cmd, write: bool) -> Result<Option<Out>> {
    let mut last = String::new();
    for retry in 0..=RETRIES {
        let out = if write {
            let Some(out) = ctx.run.change(cmd)? else {
                return Ok(None);
            };
            out
        } else {
            ctx.run.read(cmd)?
        };
        if out.ok() {
            return Ok(Some(out));
        }
        last = out.error_line();
        if !write && is_missing(&last) {
            return Ok(None);
        }
        if !is_transient(&last) || retry == RETRIES {
            break;
        }
        wait(retry, &last);
    }
    Err(registry_error(what, &last))
}

pub fn registry_error(what: &str, last: &str) -> anyhow::Error {
    let low = last.to_ascii_lowercase();
    let fix = if is_transient(last) {
        format!("failed after {RETRIES} retries; once the registry answers, rerun the same command (tags already pushed are skipped)")
    } else if low.contains("unauthorized") || low.contains("denied") {
        "the registry refused the credentials; check REGISTRY_USERNAME and the password's push rights".to_string()
    } else if low.contains("immutable") || low.contains("cannot be overwritten") || low.contains("tag invalid") {
        // GAR, ECR and Harbor refuse to move an immutable tag.
        return exit::usage(format!(
            "{what}: {last}; the registry keeps this tag immutable: publish a new version instead"
        ));
    } else {
        "check the registry and rerun".to_string()
    };
    exit::env(format!("{what}: {last}; {fix}"))
}

fn wait(retry: u32, why: &str) {
    let d = backoff(retry);
    eprintln!(
        "    transient registry error ({why}); retry {} of {RETRIES} in {}s",
        retry + 1,
        d.as_secs()
    );
    std::thread::sleep(d);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_errors() {
        for e in [
            "Get \"http://127.0.0.1:5099/v2/\": dial tcp 127.0.0.1:5099: connect: connection refused",
            "read tcp 127.0.0.1:4000->127.0.0.1:5000: read: connection reset by peer",
            "received unexpected HTTP status: 503 Service Unavailable",
            "toomanyrequests: rate limit exceeded",
            "error parsing HTTP 429 response body",
            "invalid status code from registry 502 (Bad Gateway)",
            "Put \"http://127.0.0.1:5000/v2/pp/manifests/v1\": EOF",
            "net/http: TLS handshake timeout",
            "unexpected status code 408",
            "Put \"http://127.0.0.1:5000/v2/pp/manifests/v1\": http: server closed idle connection",
        ] {
            assert!(is_transient(e), "{e}");
        }
        for e in [
            "unauthorized: authentication required",
            "login attempt to http://127.0.0.1:5055/v2/ failed with status: 401 Unauthorized",
            "reading manifest v1 in 127.0.0.1:5000/pp: manifest unknown: manifest unknown",
            "denied: requested access to the resource is denied",
            "An image does not exist locally with the tag: pp:v1",
        ] {
            assert!(!is_transient(e), "{e}");
        }
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(4));
    }

    #[test]
    fn missing_things() {
        assert!(is_missing(
            "Error parsing image name \"docker://x\": reading manifest nope in x: manifest unknown: manifest unknown"
        ));
        assert!(is_missing(
            "Error listing repository tags: fetching tags list: invalid status code from registry 404 (Not Found)"
        ));
        assert!(!is_missing("unauthorized: authentication required"));
    }

    #[test]
    fn an_immutable_tag_is_an_input_error() {
        let e = registry_error("pushing v1.0.0 to gar", "tag invalid: The image tag 'v1.0.0' already exists in the repository and cannot be overwritten because the repository is immutable.");
        assert_eq!(exit::code_of(&e), 2);
        assert_eq!(exit::code_of(&registry_error("x", "connection refused")), 3);
    }
}
