//! The one place where processes start. A [`Cmd`] is a value (program, arguments, the
//! per-command environment, stdin, secrets to mask, a timeout); [`Runner`] echoes it,
//! honours the dry run and runs it: xshell for plain commands, duct where output is
//! streamed, a timeout is kept or a process runs in the background.
//!
//! Nothing else in the xtask touches `std::process` or the process environment.

use anyhow::{Context, Result};
use std::ffi::{OsStr, OsString};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A command to run, built by the tool layer (`tools::docker::push`, ...).
#[derive(Clone, Debug, Default)]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    /// Variables set (`Some`) or removed (`None`) for this command only.
    env: Vec<(OsString, Option<OsString>)>,
    /// Start from an empty environment, keeping only these inherited variables.
    env_keep: Option<Vec<OsString>>,
    stdin: Option<Vec<u8>>,
    /// Values never shown: masked in the echo and in captured stderr.
    secrets: Vec<String>,
    dir: Option<PathBuf>,
    timeout: Option<Duration>,
    /// Shown after the echo, e.g. "(password on stdin)".
    note: Option<String>,
}

impl Cmd {
    pub fn new(program: impl AsRef<OsStr>) -> Cmd {
        Cmd {
            program: program.as_ref().to_owned(),
            ..Cmd::default()
        }
    }

    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Cmd {
        self.args.push(a.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Cmd {
        self.env.push((k.as_ref().to_owned(), Some(v.as_ref().to_owned())));
        self
    }

    pub fn env_remove(mut self, k: impl AsRef<OsStr>) -> Cmd {
        self.env.push((k.as_ref().to_owned(), None));
        self
    }

    /// The child gets only these variables of ours (plus what `env` sets).
    pub fn env_only<I, S>(mut self, keep: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.env_keep = Some(keep.into_iter().map(|k| k.as_ref().to_owned()).collect());
        self
    }

    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(bytes.into());
        self
    }

    /// Stdin that holds a secret: never echoed, and masked wherever it shows up.
    pub fn secret_stdin(mut self, secret: &str) -> Cmd {
        self.secrets.push(secret.to_string());
        self.stdin = Some(secret.as_bytes().to_vec());
        self
    }

    pub fn dir(mut self, d: impl Into<PathBuf>) -> Cmd {
        self.dir = Some(d.into());
        self
    }

    pub fn timeout(mut self, t: Duration) -> Cmd {
        self.timeout = Some(t);
        self
    }

    pub fn note(mut self, n: impl Into<String>) -> Cmd {
        self.note = Some(n.into());
        self
    }

    pub fn arg_list(&self) -> &[OsString] {
        &self.args
    }

    /// The value of a variable this command sets, for tests and the recording fake.
    pub fn env_value(&self, k: &str) -> Option<&OsStr> {
        self.env
            .iter()
            .rev()
            .find(|(n, _)| n == k)
            .and_then(|(_, v)| v.as_deref())
    }

    /// How the transcript shows it: shell-quoted where needed, secrets masked. Each word
    /// is masked before it is quoted (quoting escapes a quote, a space or a control
    /// character, and the escaped secret would not be found), the line once more after.
    pub fn display(&self) -> String {
        let word = |w: &OsStr| quote(&self.mask(&w.to_string_lossy()));
        let mut s = word(&self.program);
        for a in &self.args {
            s.push(' ');
            s.push_str(&word(a));
        }
        let mut s = self.mask(&s);
        if let Some(n) = &self.note {
            s.push_str("   ");
            s.push_str(n);
        }
        s
    }

    fn mask(&self, text: &str) -> String {
        mask(&self.secrets, text)
    }
}

/// `text` with every (non-empty) secret replaced by `<redacted>`.
fn mask(secrets: &[String], text: &str) -> String {
    let mut t = text.to_string();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        t = t.replace(s.as_str(), "<redacted>");
    }
    t
}

/// One shell word per argument, so a transcript line can be pasted: plain when safe,
/// `'…'` otherwise, `$'…'` when it spans lines (a script stays on one line).
fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%^".contains(c));
    if plain {
        return s.to_string();
    }
    if s.chars().any(char::is_control) {
        let mut q = String::from("$'");
        for c in s.chars() {
            match c {
                '\\' => q.push_str("\\\\"),
                '\'' => q.push_str("\\'"),
                '\n' => q.push_str("\\n"),
                '\t' => q.push_str("\\t"),
                c if c.is_control() => q.push_str(&format!("\\x{:02x}", c as u32)),
                c => q.push(c),
            }
        }
        q.push('\'');
        return q;
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// What a finished command left: its exit code (`None`: killed by a signal) and output,
/// stderr with every secret masked.
#[derive(Debug, Clone, Default)]
pub struct Out {
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Out {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// The most telling line of stderr, for a one-line error (`msg="..."` unwrapped).
    pub fn error_line(&self) -> String {
        error_line(&self.stderr)
    }

    /// `Ok` when the command succeeded, else exit 3: `"{what}: {error line}"`.
    pub fn env_ok(&self, what: impl std::fmt::Display) -> Result<()> {
        if self.ok() {
            return Ok(());
        }
        Err(crate::exit::env(format!("{what}: {}", self.error_line())))
    }
}

/// The first non-empty line of stderr, else of stdout (trimmed), else `no output`: what a
/// user needs to see of a crash.
pub fn first_line<'a>(stderr: &'a str, stdout: &'a str) -> &'a str {
    stderr
        .lines()
        .chain(stdout.lines())
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no output")
}

/// The most telling line of a tool's stderr: the first that says error/fatal/failed,
/// else the first non-empty one; logrus' `msg="..."` unwrapped.
pub fn error_line(stderr: &str) -> String {
    let noise = |l: &&str| {
        l.is_empty()
            || l.starts_with("WARNING")
            || l.starts_with("Configure a credential")
            || l.starts_with("https://docs.docker.com")
    };
    let line = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !noise(l))
        .find(|l| l.contains("error") || l.contains("Error") || l.contains("level=fatal") || l.contains("failed"))
        .or_else(|| stderr.lines().map(str::trim).find(|l| !l.is_empty()))
        .unwrap_or("no error output")
        .to_string();
    match line.split_once("msg=\"") {
        Some((_, m)) => m.trim_end_matches('"').replace("\\\"", "\""),
        None => line,
    }
}

/// How the runner treats commands: echo them, and in a dry run, run only reads.
#[derive(Clone, Debug)]
pub struct Runner {
    pub dry_run: bool,
}

impl Runner {
    fn echo(&self, cmd: &Cmd, read: bool) {
        // A read really runs in a dry run (plans need facts): say so, never `[dry-run]`.
        self.echo_as(cmd, if read { "[read] " } else { "[dry-run] " });
    }

    fn echo_as(&self, cmd: &Cmd, dry_mark: &str) {
        let mark = if self.dry_run { dry_mark } else { "" };
        eprintln!("{mark}$ {}", cmd.display());
    }

    /// Prints a command without running it (the plan of a step that is skipped).
    pub fn show(&self, cmd: &Cmd) {
        self.echo(cmd, false);
    }

    /// A command that changes something: printed and, unless in a dry run, run to the end.
    /// `None` in a dry run. The status is the caller's to judge.
    pub fn change(&self, cmd: &Cmd) -> Result<Option<Out>> {
        self.echo(cmd, false);
        if self.dry_run {
            return Ok(None);
        }
        exec(cmd).map(Some)
    }

    /// A command that only reads: it runs in a dry run too.
    pub fn read(&self, cmd: &Cmd) -> Result<Out> {
        self.echo(cmd, true);
        exec(cmd)
    }

    /// A check that really runs in a dry run too (a registry login): marked `[check]` there.
    pub fn check(&self, cmd: &Cmd) -> Result<Out> {
        self.echo_as(cmd, "[check] ");
        exec(cmd)
    }

    /// Runs `cmd` (a change unless `read`), showing its output on stderr as it comes and
    /// keeping the last lines for an error message. Stdout goes to `stdout_to` when given
    /// (e.g. a report), else it is shown and kept like stderr. `None` in a dry run.
    pub fn stream(&self, cmd: &Cmd, read: bool, stdout_to: Option<&Path>) -> Result<Option<Streamed>> {
        self.echo(cmd, read);
        if self.dry_run && !read {
            return Ok(None);
        }
        // duct applies the outer redirection first: stderr joins the reader's pipe, then
        // stdout (when asked) is pointed at the file.
        let e = match stdout_to {
            Some(p) => expression(cmd).stdout_path(p).stderr_to_stdout().unchecked(),
            None => expression(cmd).stderr_to_stdout().unchecked(),
        };
        let reader = e
            .reader()
            .with_context(|| format!("cannot start `{}`", cmd.program.to_string_lossy()))?;
        let mut tail: Vec<String> = Vec::new();
        let mut lines = std::io::BufReader::new(&reader);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match lines.read_until(b'\n', &mut buf) {
                Ok(0) => break,
                Ok(_) => {
                    let line = cmd.mask(String::from_utf8_lossy(&buf).trim_end_matches('\n'));
                    eprintln!("{line}");
                    tail.push(line);
                    if tail.len() > 400 {
                        tail.drain(..200);
                    }
                }
                Err(e) => return Err(e).context("reading the output"),
            }
        }
        let out = reader.try_wait()?.context("the command did not finish")?;
        Ok(Some(Streamed {
            code: out.status.code(),
            tail,
        }))
    }

    /// Starts `cmd` in the background (a server, a watchdog, a container run that other
    /// reads overlap), output to `log` or discarded. The caller waits for or kills it.
    pub fn spawn(&self, cmd: &Cmd, log: Option<&Path>) -> Result<Background> {
        self.start(cmd, |e| {
            let e = e.unchecked();
            // The outer redirection applies first: stdout to the log, then stderr joins it.
            match log {
                Some(p) => e.stderr_to_stdout().stdout_path(p),
                None => e.stdout_null().stderr_null(),
            }
        })
    }

    /// Starts `cmd` with its output captured, to be collected with [`Background::wait`].
    pub fn spawn_captured(&self, cmd: &Cmd) -> Result<Background> {
        self.start(cmd, |e| e.stdout_capture().stderr_capture().unchecked())
    }

    /// Echoes `cmd` and starts it in the background, its output wired by `wire`.
    fn start(&self, cmd: &Cmd, wire: impl FnOnce(duct::Expression) -> duct::Expression) -> Result<Background> {
        self.echo(cmd, true);
        let handle = wire(expression(cmd))
            .start()
            .with_context(|| format!("cannot start `{}`", cmd.program.to_string_lossy()))?;
        Ok(Background {
            handle,
            secrets: cmd.secrets.clone(),
        })
    }
}

/// A command's end when its output was streamed.
#[derive(Debug)]
pub struct Streamed {
    pub code: Option<i32>,
    /// The last lines it printed (both streams, or stderr when stdout went to a file).
    pub tail: Vec<String>,
}

/// A process started by [`Runner::spawn`].
pub struct Background {
    handle: duct::Handle,
    secrets: Vec<String>,
}

impl Background {
    /// Its exit code once it has ended (`Some(None)`: killed by a signal).
    pub fn ended(&self) -> Option<Option<i32>> {
        match self.handle.try_wait() {
            Ok(Some(o)) => Some(o.status.code()),
            _ => None,
        }
    }

    pub fn kill(&self) {
        let _ = self.handle.kill();
    }

    /// The process id (of the first process, for a pipeline).
    pub fn pid(&self) -> Option<u32> {
        self.handle.pids().first().copied()
    }

    pub fn wait(self) -> Result<Out> {
        let o = self.handle.wait()?;
        Ok(Out {
            code: o.status.code(),
            stdout: o.stdout.clone(),
            stderr: mask(&self.secrets, &String::from_utf8_lossy(&o.stderr)),
        })
    }
}

/// A plain command through xshell; through duct when it has a timeout or a clean
/// environment (xshell has neither).
fn exec(cmd: &Cmd) -> Result<Out> {
    if cmd.timeout.is_some() || cmd.env_keep.is_some() {
        return exec_duct(cmd);
    }
    let sh = xshell::Shell::new()?;
    if let Some(d) = &cmd.dir {
        sh.change_dir(d);
    }
    let mut c = sh.cmd(&cmd.program).args(&cmd.args).quiet().ignore_status();
    for (k, v) in &cmd.env {
        c = match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    if let Some(i) = &cmd.stdin {
        c = c.stdin(i);
    }
    if !cmd.secrets.is_empty() {
        c = c.secret();
    }
    let o = c
        .output()
        .map_err(|e| anyhow::anyhow!("{}", cmd.mask(&e.to_string())))?;
    Ok(Out {
        code: o.status.code(),
        stdout: o.stdout,
        stderr: cmd.mask(&String::from_utf8_lossy(&o.stderr)),
    })
}

fn exec_duct(cmd: &Cmd) -> Result<Out> {
    let e = expression(cmd).stdout_capture().stderr_capture().unchecked();
    let handle = e
        .start()
        .with_context(|| format!("cannot start `{}`", cmd.program.to_string_lossy()))?;
    let start = Instant::now();
    loop {
        if let Some(o) = handle.try_wait()? {
            let stderr = cmd.mask(&String::from_utf8_lossy(&o.stderr));
            return Ok(Out {
                code: o.status.code(),
                stdout: o.stdout.clone(),
                stderr,
            });
        }
        if cmd.timeout.is_some_and(|t| start.elapsed() > t) {
            let _ = handle.kill();
            anyhow::bail!(
                "`{}` did not finish within {} s and was stopped",
                cmd.display(),
                cmd.timeout.unwrap_or_default().as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn expression(cmd: &Cmd) -> duct::Expression {
    let mut e = duct::cmd(&cmd.program, &cmd.args);
    // duct applies the outermost wrapper first: the per-command variables go inside, so
    // that a clean environment (outside) is set before they are added.
    for (k, v) in &cmd.env {
        e = match v {
            Some(v) => e.env(k, v),
            None => e.env_remove(k),
        };
    }
    if let Some(keep) = &cmd.env_keep {
        let env: std::collections::HashMap<OsString, OsString> =
            std::env::vars_os().filter(|(k, _)| keep.contains(k)).collect();
        e = e.full_env(env);
    }
    if let Some(d) = &cmd.dir {
        e = e.dir(d);
    }
    match &cmd.stdin {
        Some(i) => e.stdin_bytes(i.clone()),
        None => e.stdin_null(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_and_masks() {
        let c = Cmd::new("docker")
            .args(["login", "-u", "me", "--password-stdin"])
            .secret_stdin("pw")
            .note("(password on stdin)");
        assert_eq!(c.display(), "docker login -u me --password-stdin   (password on stdin)");
        let c = Cmd::new("sh").args(["-c", "echo 'hi' $X", ""]);
        assert_eq!(c.display(), "sh -c 'echo '\\''hi'\\'' $X' ''");
        let c = Cmd::new("sh").args(["-c", "a\nb 'c'"]);
        assert_eq!(c.display(), "sh -c $'a\\nb \\'c\\''");
        let c = Cmd::new("x").arg("token-s3cret").secret_stdin("s3cret");
        assert_eq!(c.display(), "x 'token-<redacted>'");
    }

    #[test]
    fn secrets_are_masked_before_quoting() {
        // Quoting escapes a quote, a space or a control character: masked after it, such a
        // secret would no longer be found and would show.
        for (secret, arg, shown) in [
            ("p'w d", "--password=p'w d", "x '--password=<redacted>'"),
            ("a\tb", "token=a\tb", "x 'token=<redacted>'"),
            ("it's", "it's", "x '<redacted>'"),
        ] {
            let c = Cmd::new("x").arg(arg).secret_stdin(secret);
            assert_eq!(c.display(), shown, "{secret:?}");
        }
    }

    #[test]
    fn dry_run_runs_reads_only() {
        let r = Runner { dry_run: true };
        assert!(r.change(&Cmd::new("false")).unwrap().is_none());
        let out = r
            .read(&Cmd::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]))
            .unwrap();
        assert_eq!(
            (out.code, out.text().as_str(), out.stderr.as_str()),
            (Some(3), "out\n", "err\n")
        );
    }

    #[test]
    fn env_is_per_command_and_secrets_are_masked_in_stderr() {
        let r = Runner { dry_run: false };
        let c = Cmd::new("sh")
            .args(["-c", "echo \"$PP_RUNNER_T\"; cat >&2"])
            .env("PP_RUNNER_T", "set")
            .secret_stdin("hush");
        let out = r.change(&c).unwrap().unwrap();
        assert_eq!(out.text(), "set\n");
        assert_eq!(out.stderr, "<redacted>");
        let bare = r
            .read(&Cmd::new("sh").args(["-c", "echo \"${PP_RUNNER_T:-unset}\""]))
            .unwrap();
        assert_eq!(bare.text(), "unset\n");
        let only = r
            .read(
                &Cmd::new("sh")
                    .args(["-c", "echo \"${HOME:-none} $PP_RUNNER_T\""])
                    .env_only(["PATH"])
                    .env("PP_RUNNER_T", "kept"),
            )
            .unwrap();
        assert_eq!(only.text(), "none kept\n");
    }

    #[test]
    fn background_output_is_captured_and_masked() {
        let r = Runner { dry_run: false };
        let c = Cmd::new("sh").args(["-c", "echo out; cat >&2"]).secret_stdin("hush");
        let out = r.spawn_captured(&c).unwrap().wait().unwrap();
        assert_eq!((out.code, out.text().as_str()), (Some(0), "out\n"));
        assert_eq!(out.stderr, "<redacted>");
    }

    #[test]
    fn timeouts_stop_the_command() {
        let r = Runner { dry_run: false };
        let e = r
            .read(&Cmd::new("sleep").arg("5").timeout(Duration::from_millis(200)))
            .unwrap_err();
        assert!(e.to_string().contains("did not finish within"), "{e}");
    }

    #[test]
    fn streaming_keeps_the_tail_and_splits_stdout_to_a_file() {
        let r = Runner { dry_run: false };
        let dir = std::env::temp_dir().join(format!("pp-runner-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("out");
        let c = Cmd::new("sh").args(["-c", "echo report; echo log1 >&2; echo log2 >&2; exit 4"]);
        let s = r.stream(&c, true, Some(&file)).unwrap().unwrap();
        assert_eq!(s.code, Some(4));
        assert_eq!(s.tail, vec!["log1", "log2"]);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "report\n");
        let s = r.stream(&c, true, None).unwrap().unwrap();
        assert_eq!(s.tail, vec!["report", "log1", "log2"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_command_is_an_environment_error_naming_it() {
        let failed = Out {
            code: Some(1),
            stderr: "WARNING x\nError: no such thing\n".into(),
            ..Out::default()
        };
        let e = failed.env_ok(format_args!("docker tag {} failed", "a")).unwrap_err();
        assert_eq!(e.to_string(), "docker tag a failed: Error: no such thing");
        assert_eq!(crate::exit::code_of(&e), 3);
        let ok = Out {
            code: Some(0),
            ..Out::default()
        };
        assert!(ok.env_ok("x").is_ok());
    }

    #[test]
    fn error_lines() {
        let skopeo = "time=\"2026-11-27T22:59:02Z\" level=fatal msg=\"Error parsing image name \\\"docker://127.0.0.1:5077/pp/x:nope\\\": manifest unknown\"\n";
        assert!(error_line(skopeo).starts_with("Error parsing image name \"docker://"));
        let docker = "\nWARNING! Your credentials are stored unencrypted\nError response from daemon: login attempt failed with status: 401 Unauthorized\n";
        assert_eq!(
            error_line(docker),
            "Error response from daemon: login attempt failed with status: 401 Unauthorized"
        );
    }
}
