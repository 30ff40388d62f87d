//! The edge: argv (xflags, see `flags.rs`) and the environment become one typed value per
//! task, validated here, once. Credentials are read and removed from the process
//! environment before any child process starts.

use crate::bump_tool::{self, plan::Wanted, BumpToolOpts};
use crate::exit;
use crate::files::{self, SmallFileError};
use crate::flags::{self, XtaskCmd};
use crate::image::{self, BuildOpts};
use crate::publish::{self, Credentials, Creds, Mode, PublishOpts, Target};
use crate::scan::ScanOpts;
use crate::sign::signer::SigningInput;
use crate::version::{self, Bump};
use anyhow::Result;
use std::ffi::OsString;

/// One task and its options.
#[derive(Debug)]
pub enum Task {
    Bump {
        how: Option<Bump>,
        dry_run: bool,
    },
    BumpTool(BumpToolOpts),
    BumpBase {
        creds: Credentials,
    },
    Image {
        build: BuildOpts,
        dry_run: bool,
    },
    Smoke {
        image: Option<String>,
        dry_run: bool,
    },
    Integration {
        image: Option<String>,
        dry_run: bool,
    },
    Scan {
        image: Option<String>,
        gate: ScanOpts,
        dry_run: bool,
    },
    Publish(Box<PublishOpts>),
    Doctor,
    Verify(crate::verify::VerifyOpts),
}

impl Task {
    pub fn dry_run(&self) -> bool {
        match self {
            Task::Bump { dry_run, .. }
            | Task::Image { dry_run, .. }
            | Task::Smoke { dry_run, .. }
            | Task::Integration { dry_run, .. }
            | Task::Scan { dry_run, .. } => *dry_run,
            Task::Publish(p) => p.dry_run,
            Task::BumpTool(b) => b.dry_run,
            Task::Doctor | Task::Verify(_) | Task::BumpBase { .. } => false,
        }
    }

    /// Tasks that read the config before any work (a bad config is named first).
    pub fn needs_config(&self) -> bool {
        !matches!(self, Task::Bump { .. } | Task::BumpTool(_) | Task::Doctor)
    }

    /// Tasks that start containers or background processes, or make temp folders: they
    /// get the cleanup watchdog ([`crate::cleanup::guard`]).
    pub fn guarded(&self) -> bool {
        self.needs_config() || matches!(self, Task::BumpTool(_))
    }
}

/// The tasks, with the first line of their help, in the order `--help` lists them.
pub const TASKS: [(&str, &str); 10] = [
    (
        "bump-version",
        "rewrite VERSION: major|minor|patch|release|rc|beta|alpha|auto|X.Y.Z",
    ),
    (
        "bump-tool",
        "upgrade kyverno, helm or pluto: checked download, new Dockerfile pin",
    ),
    (
        "bump-base",
        "report whether the Dockerfile's BASE_IMAGE pin lags base-image-track",
    ),
    ("image", "build the image from the Dockerfile and tag it locally"),
    ("smoke", "check the tools and the policies inside the image"),
    (
        "integration",
        "render every chart and check it against the policies, inside the image",
    ),
    ("scan", "Trivy gate on the image (vulnerabilities and secrets)"),
    (
        "publish",
        "preflight, image, smoke, integration, scan, login, push, verify, release record",
    ),
    (
        "doctor",
        "which tools are present, their versions, whether Docker answers",
    ),
    (
        "verify",
        "check a published image's signature and attestations against the public key",
    ),
];

pub const USAGE: &str = "cargo xtask <task> [flags]";

/// What the command line asked for: a task, or help text to print (exit 0).
pub enum Parsed {
    Run(Task),
    Help(String),
}

/// Parses argv (without the program name). Errors are usage errors (exit 2) naming the
/// argument and where the usage is.
pub fn parse(argv: Vec<OsString>, env: &dyn Fn(&str) -> Option<OsString>) -> Result<Parsed> {
    let Some(first) = argv.first() else {
        return Err(exit::usage(format!(
            "no task given; usage: {USAGE} (tasks: {})",
            names()
        )));
    };
    let Some(task) = first.to_str().map(String::from) else {
        return Err(exit::usage(format!(
            "the task name {first:?} is not UTF-8; usage: {USAGE} (tasks: {})",
            names()
        )));
    };
    let task = task.as_str();
    if matches!(task, "--help" | "-h" | "help") {
        return Ok(Parsed::Help(top_help()));
    }
    if !TASKS.iter().any(|(n, _)| *n == task) {
        return Err(exit::usage(format!(
            "unknown task `{task}`; usage: {USAGE} (tasks: {})",
            names()
        )));
    }
    let parsed = match flags::Xtask::from_vec(split_inline_values(argv)) {
        Ok(f) => f,
        Err(e) if e.is_help() => return Ok(Parsed::Help(task_help(task, &e.to_string()))),
        Err(e) => {
            return Err(exit::usage(format!(
                "{}; usage: cargo xtask {task} [flags] (see `cargo xtask {task} --help`)",
                reword(&e.to_string())
            )))
        }
    };
    Ok(Parsed::Run(task_of(parsed.subcommand, env)?))
}

/// `--flag=value` as two arguments (xflags takes only `--flag value`).
fn split_inline_values(argv: Vec<OsString>) -> Vec<OsString> {
    let mut out = Vec::with_capacity(argv.len());
    for a in argv {
        match a
            .to_str()
            .filter(|s| s.starts_with("--"))
            .and_then(|s| s.split_once('='))
        {
            Some((flag, value)) => {
                out.push(OsString::from(flag));
                out.push(OsString::from(value));
            }
            None => out.push(a),
        }
    }
    out
}

fn names() -> String {
    TASKS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

/// xflags' messages in the words the rest of the xtask uses.
fn reword(msg: &str) -> String {
    if let Some(f) = msg.strip_prefix("unexpected flag: ") {
        return format!("unknown flag {f}");
    }
    if let Some(a) = msg.strip_prefix("unexpected argument: ") {
        return format!("unexpected argument {a}");
    }
    if let Some(f) = msg.strip_prefix("flag specified more than once: ") {
        return format!("{f} given twice");
    }
    if let Some(f) = msg.strip_prefix("expected a value for ") {
        return format!("{f} needs a value");
    }
    msg.to_string()
}

fn top_help() -> String {
    let mut s =
        format!("Version, build, test, scan and publish the policy-platform image.\n\nUsage: {USAGE}\n\nTasks:\n");
    for (name, about) in TASKS {
        s.push_str(&format!("  {name:<14} {about}\n"));
    }
    s.push_str("\n`cargo xtask <task> --help` documents every flag.\nExit codes: 0 ok, 1 a gate found a problem, 2 usage or input error, 3 environment error.\n");
    s
}

/// The section of xflags' help (which covers every task) about one task: from its
/// `xtask <task>` line to the next task's.
fn task_help(task: &str, all: &str) -> String {
    let head = format!("xtask {task}");
    let body: Vec<&str> = all
        .lines()
        .skip_while(|l| *l != head)
        .skip(1)
        .take_while(|l| !l.starts_with("xtask "))
        .map(|l| l.strip_prefix("  ").unwrap_or(l))
        .collect();
    let args = match task {
        "bump-version" => " <LEVEL|X.Y.Z>",
        "verify" => " [REF]",
        "bump-tool" => " <kyverno|helm|pluto> <VERSION>",
        _ => "",
    };
    let mut s = format!(
        "Usage: cargo xtask {task} [flags]{args}\n\n{}\n",
        body.join("\n").trim()
    );
    if !body.iter().any(|l| l.starts_with("OPTIONS:")) {
        s.push_str("\nOPTIONS:");
    }
    s.push_str("\n  -h, --help\n    Prints this help.\n");
    s
}

fn task_of(cmd: XtaskCmd, env: &dyn Fn(&str) -> Option<OsString>) -> Result<Task> {
    Ok(match cmd {
        XtaskCmd::BumpVersion(f) => {
            let how = if f.level == "auto" {
                None
            } else {
                Some(Bump::parse(&f.level)?)
            };
            Task::Bump {
                how,
                dry_run: f.dry_run,
            }
        }
        XtaskCmd::BumpTool(f) => {
            let wanted = Wanted {
                tool: bump_tool::plan::parse_tool(&f.tool)?,
                version: bump_tool::plan::parse_version(&f.version)?,
            };
            let sha256 = f.sha256.as_deref().map(bump_tool::plan::parse_sha256).transpose()?;
            tools_mirror(f.tools_mirror.as_deref())?;
            Task::BumpTool(BumpToolOpts {
                wanted,
                sha256,
                tools_mirror: f.tools_mirror,
                dry_run: f.dry_run,
            })
        }
        XtaskCmd::Image(f) => Task::Image {
            build: build_opts(f.build_arg, f.pull, f.no_cache, f.network, f.tools_mirror)?,
            dry_run: f.dry_run,
        },
        XtaskCmd::Smoke(f) => Task::Smoke {
            image: image_ref(f.image)?,
            dry_run: f.dry_run,
        },
        XtaskCmd::Integration(f) => Task::Integration {
            image: image_ref(f.image)?,
            dry_run: f.dry_run,
        },
        XtaskCmd::Scan(f) => Task::Scan {
            image: image_ref(f.image)?,
            gate: ScanOpts::new(f.severity.as_deref(), f.ignore_unfixed)?,
            dry_run: f.dry_run,
        },
        XtaskCmd::Publish(f) => {
            let chosen: Vec<&str> = [
                ("--rebuild", f.rebuild),
                ("--rollback", f.rollback.is_some()),
                ("--local", f.local),
            ]
            .into_iter()
            .filter_map(|(n, on)| on.then_some(n))
            .collect();
            if chosen.len() > 1 {
                return Err(exit::usage(format!(
                    "{} cannot be combined; pick one mode",
                    chosen.join(" and ")
                )));
            }
            let mode = match (&f.rollback, f.rebuild, f.local) {
                (Some(v), _, _) => Mode::Rollback(rollback_version(v)?),
                (None, true, _) => Mode::Rebuild,
                (None, false, true) => Mode::Local,
                _ => Mode::Release,
            };
            if f.local && !f.registry.is_empty() {
                return Err(exit::usage(
                    "--local publishes to its own throwaway registry; drop --registry (or drop --local)",
                ));
            }
            let registries = f
                .registry
                .iter()
                .map(|r| Target::parse(r).map_err(exit::usage))
                .collect::<Result<Vec<_>>>()?;
            Task::Publish(Box::new(PublishOpts {
                build: build_opts(f.build_arg, f.pull, f.no_cache, f.network, f.tools_mirror)?,
                scan: ScanOpts::new(f.severity.as_deref(), false)?,
                registries,
                allow_public: f.allow_public,
                mode,
                dry_run: f.dry_run,
                creds: creds(env),
                signing: signing(env),
            }))
        }
        XtaskCmd::Doctor(_) => Task::Doctor,
        XtaskCmd::Verify(f) => {
            if let Some(r) = f.reference.as_deref().filter(|r| r.starts_with('-') || r.is_empty()) {
                return Err(exit::usage(format!("`{r}` is not an image reference or tag")));
            }
            Task::Verify(crate::verify::VerifyOpts {
                reference: f.reference,
                key: f.key,
                creds: creds(env),
            })
        }
        XtaskCmd::BumpBase(_) => Task::BumpBase { creds: creds(env) },
    })
}

fn image_ref(image: Option<String>) -> Result<Option<String>> {
    match image {
        Some(r) if r.trim().is_empty() => Err(exit::usage("--image needs a non-empty image reference")),
        Some(r) if r.starts_with('-') => Err(exit::usage(format!(
            "--image `{r}` is not an image reference (it starts with `-`)"
        ))),
        other => Ok(other),
    }
}

fn build_opts(
    build_args: Vec<String>,
    pull: bool,
    no_cache: bool,
    network: Option<String>,
    tools_mirror: Option<String>,
) -> Result<BuildOpts> {
    for kv in &build_args {
        image::plan::build_arg(kv)?;
    }
    self::tools_mirror(tools_mirror.as_deref())?;
    if let Some(n) = &network {
        if n.is_empty() || n.starts_with('-') {
            return Err(exit::usage(format!(
                "--network `{n}` is not a network mode (e.g. host, bridge, none)"
            )));
        }
    }
    Ok(BuildOpts {
        build_args,
        pull,
        no_cache,
        network,
        tools_mirror,
        ..BuildOpts::default()
    })
}

fn tools_mirror(mirror: Option<&str>) -> Result<()> {
    mirror.map_or(Ok(()), image::plan::check_tools_mirror)
}

fn rollback_version(v: &str) -> Result<semver::Version> {
    match version::parse_tag(v).or_else(|_| version::parse_plain(v)) {
        Ok(ver) if ver.pre.is_empty() => Ok(ver),
        Ok(ver) => Err(exit::usage(format!(
            "--rollback {v}: {} is a pre-release, and latest never points at one; name a release",
            version::tag(&ver)
        ))),
        Err(why) => Err(exit::usage(format!(
            "--rollback {v}: {why}; expected a released version like v1.2.3"
        ))),
    }
}

/// A key file is at most this big (a Google `_json_key` is about 2.3 KiB).
const MAX_SECRET_FILE: u64 = 64 * 1024;

/// `REGISTRY_USERNAME` with `REGISTRY_PASSWORD` or `REGISTRY_PASSWORD_FILE`; none of them:
/// the user's own Docker login; some: what is missing or unreadable, each with its fix.
pub fn creds(env: &dyn Fn(&str) -> Option<OsString>) -> Credentials {
    let var = |k: &str| env(k).filter(|v| !v.is_empty());
    let (user_var, pw_var, file_var) = (publish::USER_VAR, publish::PASSWORD_VAR, publish::PASSWORD_FILE_VAR);
    if [user_var, pw_var, file_var].iter().all(|k| var(k).is_none()) {
        return Credentials::User;
    }
    let mut problems = Vec::new();
    let user = match var(user_var).map(OsString::into_string) {
        Some(Ok(u)) => Some(u),
        Some(Err(_)) => {
            problems.push(format!("{user_var} is not UTF-8; set it to the registry user name"));
            None
        }
        None => {
            problems.push(format!(
                "no registry user: set {user_var} (with {pw_var} or {file_var}; for a Google key file the user is _json_key)"
            ));
            None
        }
    };
    let secret = match (var(pw_var), var(file_var)) {
        (Some(p), _) => p.into_string().map_err(|_| format!("{pw_var} is not UTF-8")),
        (None, Some(file)) => read_secret_file(file_var, &file),
        (None, None) => Err(format!(
            "no registry password: set {pw_var}, or {file_var} to a key file (e.g. Google's _json_key)"
        )),
    };
    let secret = secret.map_err(|p| problems.push(p)).ok();
    match (user, secret) {
        (Some(user), Some(secret)) if problems.is_empty() => Credentials::Given(Creds::new(user, secret)),
        _ => Credentials::Broken(problems),
    }
}

/// `SIGNING_KEY_FILE` and its password (`SIGNING_KEY_PASSWORD`, or a file named by
/// `SIGNING_KEY_PASSWORD_FILE`).
pub fn signing(env: &dyn Fn(&str) -> Option<OsString>) -> SigningInput {
    let var = |k: &str| env(k).filter(|v| !v.is_empty());
    let password = match (var("SIGNING_KEY_PASSWORD"), var("SIGNING_KEY_PASSWORD_FILE")) {
        (Some(p), _) => p
            .into_string()
            .map(Some)
            .map_err(|_| "SIGNING_KEY_PASSWORD is not UTF-8".to_string()),
        (None, Some(f)) => read_secret_file("SIGNING_KEY_PASSWORD_FILE", &f).map(Some),
        (None, None) => Ok(None),
    };
    SigningInput {
        key_file: var("SIGNING_KEY_FILE").map(std::path::PathBuf::from),
        password,
    }
}

/// A key file: regular, at most 64 KiB, UTF-8; one trailing newline dropped.
fn read_secret_file(var: &str, file: &OsString) -> Result<String, String> {
    let shown = std::path::Path::new(file).display().to_string();
    let cannot =
        |e: std::io::Error| format!("{var} names `{shown}`, which cannot be read ({e}); point it at the key file");
    let mut text = files::read_small(std::path::Path::new(file), MAX_SECRET_FILE).map_err(|e| match e {
        SmallFileError::Unreadable(e) => cannot(e),
        SmallFileError::NotAFile => {
            format!("{var} names `{shown}`, which is not a regular file; point it at the key file")
        }
        SmallFileError::Read(e) => format!("{var}: cannot read `{shown}` ({e})"),
        SmallFileError::TooBig => {
            format!("{var} names `{shown}`, which is over 64 KiB: that is not a key file; point it at the key file")
        }
        SmallFileError::NotUtf8 => {
            format!("{var} names `{shown}`, which is not UTF-8 text; point it at the key file")
        }
    })?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    if text.is_empty() {
        return Err(format!(
            "{var} names `{shown}`, which is empty; point it at the key file"
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<OsString> {
        None
    }

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    fn task(a: &[&str]) -> Result<Task> {
        match parse(args(a), &no_env)? {
            Parsed::Run(t) => Ok(t),
            Parsed::Help(h) => panic!("help: {h}"),
        }
    }

    fn usage_err(a: &[&str]) -> String {
        let e = task(a).unwrap_err();
        assert_eq!(exit::code_of(&e), 2, "{e}");
        e.to_string()
    }

    #[test]
    fn every_task_has_help_with_its_flags() {
        for (name, _) in TASKS {
            let Parsed::Help(h) = parse(args(&[name, "--help"]), &no_env).unwrap() else {
                panic!("{name}")
            };
            assert!(h.starts_with(&format!("Usage: cargo xtask {name}")), "{h}");
            assert!(h.contains("--help"), "{h}");
        }
        let Parsed::Help(h) = parse(args(&["publish", "--help"]), &no_env).unwrap() else {
            panic!()
        };
        for f in [
            "--dry-run",
            "--registry",
            "--allow-public",
            "--rebuild",
            "--rollback",
            "--local",
            "--tools-mirror",
            "--severity",
            "REGISTRY_PASSWORD_FILE",
        ] {
            assert!(h.contains(f), "publish --help lacks {f}:\n{h}");
        }
        assert!(!h.contains("xtask scan"), "only publish's section:\n{h}");
        let Parsed::Help(h) = parse(args(&["--help"]), &no_env).unwrap() else {
            panic!()
        };
        for (name, _) in TASKS {
            assert!(h.contains(name));
        }
    }

    #[test]
    fn typed_options() {
        let Task::Publish(p) = task(&[
            "publish",
            "--registry",
            "ghcr.io/org",
            "--rollback",
            "v1.2.3",
            "--severity",
            "high,critical",
            "--dry-run",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(p.mode, Mode::Rollback(semver::Version::new(1, 2, 3)));
        assert_eq!(p.registries[0].host, "ghcr.io");
        assert_eq!(p.scan.severity, vec!["HIGH", "CRITICAL"]);
        assert!(p.dry_run && matches!(p.creds, Credentials::User));
        let Task::Image { build, .. } = task(&["image", "--build-arg", "A=1", "--build-arg=B=2", "--pull"]).unwrap()
        else {
            panic!()
        };
        assert_eq!(build.build_args, vec!["A=1", "B=2"]);
        assert!(build.pull && !build.no_cache);
        let Task::Bump { how, .. } = task(&["bump-version", "auto"]).unwrap() else {
            panic!()
        };
        assert!(how.is_none());
        let sum = "AB".repeat(32);
        let Task::BumpTool(b) = task(&[
            "bump-tool",
            "helm",
            "v3.23.0",
            "--sha256",
            &sum,
            "--tools-mirror=http://m",
            "--dry-run",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(
            (b.wanted.tool, b.wanted.version.to_string()),
            ("helm", "3.23.0".to_string())
        );
        assert_eq!(b.sha256.as_deref(), Some("ab".repeat(32).as_str()));
        assert!(b.dry_run && b.tools_mirror.as_deref() == Some("http://m"));
    }

    #[test]
    fn bad_input_is_a_usage_error_naming_it() {
        assert!(usage_err(&["deploy"]).contains("unknown task `deploy`"));
        assert!(usage_err(&["image", "--colour"]).contains("unknown flag `--colour`"));
        assert!(usage_err(&["publish", "--rebuild", "--local"]).contains("--rebuild and --local cannot be combined"));
        assert!(usage_err(&["publish", "--registry=-u.x"]).contains("`-u.x`"));
        assert!(usage_err(&["publish", "--rollback", "v2.0.0-rc.1"]).contains("pre-release"));
        assert!(usage_err(&["image", "--build-arg", "NOVALUE"]).contains("not KEY=VALUE"));
        assert!(usage_err(&["image", "--tools-mirror", "ftp://x"]).contains("--tools-mirror"));
        assert!(usage_err(&["smoke", "--image", ""]).contains("non-empty"));
        assert!(usage_err(&["smoke", "--image", "a", "--image", "b"]).contains("given twice"));
        assert!(usage_err(&["scan", "--severity", "SEVERE"]).contains("`SEVERE`"));
        assert!(usage_err(&["bump-version", "sideways"]).contains("sideways"));
        assert!(usage_err(&[]).contains("no task given"));
        assert!(usage_err(&["bump-tool", "trivy", "1.0.0"]).contains("unknown tool `trivy`"));
        assert!(usage_err(&["bump-tool", "helm", "3.23"]).contains("`3.23` is not a release version"));
        assert!(usage_err(&["bump-tool", "helm", "3.23.0", "--sha256", "abc"]).contains("--sha256 `abc`"));
        assert!(usage_err(&["bump-tool", "helm", "3.23.0", "--tools-mirror", "file:///x"]).contains("--tools-mirror"));
        assert!(usage_err(&["bump-tool", "helm"]).contains("version"));
    }

    #[test]
    fn tasks_that_make_temp_folders_get_the_watchdog() {
        for (argv, guarded) in [
            (&["bump-tool", "helm", "3.23.0"][..], true),
            (&["scan"], true),
            (&["publish", "--local"], true),
            (&["bump-version", "patch"], false),
            (&["doctor"], false),
        ] {
            assert_eq!(task(argv).unwrap().guarded(), guarded, "{argv:?}");
        }
    }

    #[test]
    fn non_utf8_arguments_are_usage_errors() {
        use std::os::unix::ffi::OsStringExt;
        let bad = OsString::from_vec(vec![b'v', 0xff, b'1']);
        for argv in [
            vec![bad.clone()],
            vec![OsString::from("bump-version"), bad.clone()],
            vec![OsString::from("smoke"), OsString::from("--image"), bad],
        ] {
            let e = match parse(argv, &no_env) {
                Err(e) => e,
                Ok(_) => panic!("accepted"),
            };
            assert_eq!(exit::code_of(&e), 2, "{e}");
        }
    }

    #[test]
    fn credentials_from_the_environment() {
        let dir = std::env::temp_dir().join(format!("pp-cli-creds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("key.json");
        std::fs::write(&key, "{\"k\": 1}\n").unwrap();
        let env = |k: &str| match k {
            "REGISTRY_USERNAME" => Some(OsString::from("_json_key")),
            "REGISTRY_PASSWORD_FILE" => Some(key.clone().into_os_string()),
            _ => None,
        };
        let Credentials::Given(c) = creds(&env) else { panic!() };
        assert_eq!((c.user.as_str(), c.secret()), ("_json_key", "{\"k\": 1}"));
        let huge = dir.join("huge");
        std::fs::write(&huge, vec![b'a'; 70_000]).unwrap();
        for (file, want) in [
            (huge, "over 64 KiB"),
            (dir.clone(), "not a regular file"),
            (dir.join("none"), "cannot be read"),
        ] {
            let env = |k: &str| match k {
                "REGISTRY_USERNAME" => Some(OsString::from("u")),
                "REGISTRY_PASSWORD_FILE" => Some(file.clone().into_os_string()),
                _ => None,
            };
            let Credentials::Broken(p) = creds(&env) else { panic!() };
            assert!(p.iter().any(|m| m.contains(want)), "{p:?}");
        }
        assert!(matches!(creds(&no_env), Credentials::User));
        let only_user = |k: &str| (k == "REGISTRY_USERNAME").then(|| OsString::from("u"));
        let Credentials::Broken(p) = creds(&only_user) else {
            panic!()
        };
        assert!(p[0].contains("REGISTRY_PASSWORD"), "{p:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
