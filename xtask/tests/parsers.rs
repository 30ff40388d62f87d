//! Property test over the parsers that take outside input: VERSION, bump levels, the
//! command line, registry references, Dockerfile ARGs and the output of docker/skopeo.
//! Random and mutated inputs (from real values, with `-`, `:`, `/`, `@`, unicode, control
//! characters and numbers at and past u64::MAX), from a fixed seed so that a failure
//! repeats; bounded in time so that it runs in CI. None may panic; what they refuse is an
//! input error (exit 2); what they accept keeps the promises written next to each check.
//!
//! `PARSERS_SEED=N` replays another sequence, `PARSERS_SECONDS=S` runs longer.

use std::ffi::OsString;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};
use xtask::exit;
use xtask::publish::Target;
use xtask::version::{self, Bump};

/// SplitMix64: small, fast and the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, from: &'a [T]) -> &'a T {
        &from[self.below(from.len())]
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

thread_local! {
    /// Per parser: (inputs accepted, inputs refused), so that a walk that never reaches
    /// one side of a parser fails instead of passing without meaning.
    static SEEN: std::cell::RefCell<std::collections::BTreeMap<&'static str, (u64, u64)>> = Default::default();
}

fn seen(parser: &'static str, accepted: bool) {
    SEEN.with(|s| {
        let mut s = s.borrow_mut();
        let e = s.entry(parser).or_default();
        if accepted {
            e.0 += 1
        } else {
            e.1 += 1
        }
    });
}

const MAX: &str = "18446744073709551615";
const OVER: &str = "18446744073709551616";

/// Characters that mean something to one of the grammars, and some that mean nothing.
const ALPHABET: &[&str] = &[
    "-",
    "--",
    ":",
    "/",
    "@",
    ".",
    "..",
    "_",
    "__",
    "v",
    "V",
    "0",
    "1",
    "9",
    "a",
    "z",
    "Z",
    "rc",
    "alpha",
    "beta",
    "+",
    "=",
    "[",
    "]",
    "%",
    "$",
    ";",
    "\"",
    "'",
    "\\",
    " ",
    "\t",
    "\n",
    "\r",
    "\0",
    "\u{7f}",
    "é",
    "\u{4bb}",
    "\u{202e}",
    "\u{feff}",
    "😀",
    MAX,
    OVER,
    "00",
    "sha256:",
    "docker://",
    "ARG ",
    "#",
];

/// A random string from the alphabet, sometimes long.
fn random(rng: &mut Rng) -> String {
    let n = if rng.chance(50) { 300 } else { rng.below(24) };
    (0..n).map(|_| *rng.pick(ALPHABET)).collect()
}

/// A seed changed a few times: a piece inserted, removed, repeated, a number swapped for
/// an extreme one, cut short, or joined with another seed.
fn mutate(rng: &mut Rng, seeds: &[&str]) -> String {
    let mut s: Vec<char> = rng.pick(seeds).chars().collect();
    for _ in 0..=rng.below(3) {
        let at = rng.below(s.len() + 1);
        match rng.below(7) {
            0 => s.splice(at..at, rng.pick(ALPHABET).chars()).for_each(drop),
            1 if !s.is_empty() => {
                let end = (at + 1 + rng.below(4)).min(s.len());
                s.drain(at.min(s.len() - 1)..end);
            }
            2 => {
                let end = (at + rng.below(8)).min(s.len());
                let piece: Vec<char> = s[at..end].to_vec();
                s.splice(at..at, piece).for_each(drop);
            }
            3 => {
                // The first run of digits from `at` becomes an extreme number.
                let start = s[at..].iter().position(|c| c.is_ascii_digit()).map(|p| p + at);
                if let Some(st) = start {
                    let end = s[st..]
                        .iter()
                        .position(|c| !c.is_ascii_digit())
                        .map(|p| p + st)
                        .unwrap_or(s.len());
                    let n = *rng.pick(&[MAX, OVER, "0", "00", "01", "99999999999999999999999"]);
                    s.splice(st..end, n.chars()).for_each(drop);
                }
            }
            4 => s.truncate(at),
            5 => s.extend(rng.pick(seeds).chars()),
            _ => s.insert(at, char::from_u32(rng.next() as u32 % 0x11_0000).unwrap_or('\u{fffd}')),
        }
    }
    s.into_iter().collect()
}

/// A seed as it is (1 in 8), a random string (1 in 4), else a mutated seed.
fn input(rng: &mut Rng, seeds: &[&str]) -> String {
    match rng.below(8) {
        0 => rng.pick(seeds).to_string(),
        1 | 2 => random(rng),
        _ => mutate(rng, seeds),
    }
}

/// Runs `f` on `what`; a panic fails the test naming the input that caused it.
fn no_panic<T>(parser: &str, what: &dyn std::fmt::Debug, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(_) => panic!("{parser} panicked on {what:?}"),
    }
}

fn usage_error(parser: &str, what: &dyn std::fmt::Debug, e: &anyhow::Error) {
    assert_eq!(
        exit::code_of(e),
        exit::USAGE,
        "{parser} on {what:?}: not an input error: {e:#}"
    );
}

/// A file's content is shown escaped: its error stays one line whatever the file holds.
/// (Argument values are the user's own typing; `main` folds their newlines.)
fn one_line(parser: &str, what: &dyn std::fmt::Debug, e: &anyhow::Error) {
    usage_error(parser, what, e);
    assert!(
        !format!("{e:#}").contains(['\n', '\r']),
        "{parser} on {what:?}: a multi-line error: {e:#}"
    );
}

const VERSIONS: &[&str] = &[
    "v1.0.2\n",
    "v1.0.2",
    "v2.0.0-rc.1\n",
    "v0.0.1-alpha.3\n",
    "v10.20.30-beta.11\n",
    "v1.0.0\r\n",
    "1.0.2\n",
    "",
];
const EDGES: &[&str] = &[
    "v1.0.2",
    "v0.0.0",
    "v1.0.0-rc.1",
    "v2.0.0-alpha.0",
    "v18446744073709551615.0.0",
    "v1.18446744073709551615.0",
    "v1.0.18446744073709551615",
    "v1.0.0-rc.18446744073709551615",
    "v1.0.0-beta.18446744073709551615",
];
const LEVELS: &[&str] = &[
    "major",
    "minor",
    "patch",
    "release",
    "rc",
    "beta",
    "alpha",
    "auto",
    "1.2.3",
    "v2.0.0",
    "v1.0.3-rc.1",
    "0.0.0",
];

fn versions(rng: &mut Rng) {
    let content = input(rng, VERSIONS);
    let parsed = no_panic("version::parse_file", &content, || version::parse_file(&content));
    seen("version::parse_file", parsed.is_ok());
    match parsed {
        // Exactly `vX.Y.Z[-phase.N]` with at most one newline: what is written back reads the same.
        Ok(v) => assert_eq!(
            version::tag(&v),
            content.strip_suffix('\n').unwrap_or(&content),
            "parse_file accepted {content:?}"
        ),
        Err(e) => one_line("version::parse_file", &content, &e),
    }
    // Bumps start from a valid version, often one at the edge.
    let Ok(cur) = version::parse_tag(&mutate(rng, EDGES)) else {
        return;
    };
    let how = if rng.chance(2) {
        rng.pick(LEVELS).to_string()
    } else {
        input(rng, LEVELS)
    };
    let bump = no_panic("Bump::parse", &how, || Bump::parse(&how));
    seen("Bump::parse", bump.is_ok());
    let bump = match bump {
        Ok(b) => b,
        Err(e) => return usage_error("Bump::parse", &how, &e),
    };
    let next = no_panic("version::bump", &(&cur, &bump), || version::bump(&cur, &bump));
    seen("version::bump", next.is_ok());
    match next {
        // Never backwards, and the new VERSION parses again.
        Ok(next) => {
            assert!(next > cur, "bump {how:?} of {cur} gave {next}");
            let written = format!("{}\n", version::tag(&next));
            assert_eq!(version::parse_file(&written).ok(), Some(next), "{written:?}");
        }
        Err(e) => usage_error("version::bump", &(&cur, &how), &e),
    }
}

const REGISTRIES: &[&str] = &[
    "ghcr.io/org",
    "127.0.0.1:5000",
    "localhost:5000/team",
    "[::1]:5000/x",
    "europe-west6-docker.pkg.dev/my-project/charts_v2/a__b/c-d",
    "registry.example.com:443/a.b/c_d/e__f/g--h",
    "docker.io/me",
    "me/team",
    "-u.x",
    "ghcr.io;rm",
];

fn registries(rng: &mut Rng) {
    let spec = input(rng, REGISTRIES);
    let parsed = no_panic("Target::parse", &spec, || Target::parse(&spec));
    seen("Target::parse", parsed.is_ok());
    match parsed {
        // What is accepted can be neither a flag nor more than one word anywhere it goes.
        Ok(t) => {
            let repo = t.repo("policy-platform");
            assert!(
                !t.host.is_empty() && !t.host.starts_with('-') && !repo.starts_with('-'),
                "{spec:?} → {t:?}"
            );
            let host_ok = |c: char| c.is_ascii_alphanumeric() || ".-:[]".contains(c);
            assert!(t.host.chars().all(host_ok), "{spec:?} → host {:?}", t.host);
            let path_ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c);
            assert!(t.path.chars().all(path_ok), "{spec:?} → path {:?}", t.path);
            assert!(
                !t.path.starts_with('/') && !t.path.contains("//"),
                "{spec:?} → path {:?}",
                t.path
            );
            let again = Target::parse(&t.spec).unwrap_or_else(|e| panic!("{:?} re-parsed: {e}", t.spec));
            assert_eq!(
                (again.host, again.path, again.public),
                (t.host.clone(), t.path.clone(), t.public),
                "{spec:?}"
            );
        }
        Err(msg) => assert!(
            msg.contains(&format!("`{spec}`")),
            "{spec:?}: the error does not name it: {msg}"
        ),
    }
}

const FLAGS: &[&str] = &[
    "--registry",
    "--image",
    "--dry-run",
    "--rollback",
    "--rebuild",
    "--local",
    "--severity",
    "--build-arg",
    "--tools-mirror",
    "--network",
    "--pull",
    "--no-cache",
    "--allow-public",
    "--ignore-unfixed",
    "--help",
    "-h",
    "--",
    "-",
    "--registry=",
    "--image=",
];
const VALUES: &[&str] = &[
    "ghcr.io/org",
    "v1.2.3",
    "high,critical",
    "A=1",
    "http://127.0.0.1:8000",
    "host",
    "patch",
    "pp:v1",
    "-u.x",
    "",
];

fn command_lines(rng: &mut Rng) {
    use std::os::unix::ffi::OsStringExt;
    let tasks: Vec<&str> = xtask::cli::TASKS
        .iter()
        .map(|(n, _)| *n)
        .chain(["help", "--help", "deploy", ""])
        .collect();
    let mut argv = vec![OsString::from(if rng.chance(10) {
        input(rng, &tasks)
    } else {
        rng.pick(&tasks).to_string()
    })];
    for _ in 0..rng.below(6) {
        let a = match rng.below(5) {
            0 | 1 => rng.pick(FLAGS).to_string(),
            2 => format!("{}{}", rng.pick(FLAGS), input(rng, VALUES)),
            3 => input(rng, VALUES),
            _ => {
                let mut bytes = input(rng, VALUES).into_bytes();
                bytes.insert(rng.below(bytes.len() + 1), 0x80 | rng.below(0x80) as u8);
                argv.push(OsString::from_vec(bytes));
                continue;
            }
        };
        argv.push(OsString::from(a));
    }
    let no_env = |_: &str| None;
    let parsed = no_panic("cli::parse", &argv, || xtask::cli::parse(argv.clone(), &no_env));
    seen("cli::parse", parsed.is_ok());
    if let Err(e) = parsed {
        usage_error("cli::parse", &argv, &e);
    }
}

const DOCKERFILES: &[&str] = &[
    "ARG BASE_IMAGE=alpine:3.22\nFROM ${BASE_IMAGE}\n",
    "ARG KYVERNO_VERSION=1.19.1 \\\n    HELM_VERSION=3.21.4 \\\n    PLUTO_VERSION=5.10.4\n",
    "# comment\narg lower=\"quoted\"\nARG NODEFAULT\nRUN echo \\\n",
    "ARG A=1 B C=\"x y\"\n\n\\\n",
];

fn dockerfiles(rng: &mut Rng) {
    let df = input(rng, DOCKERFILES);
    let build_args: Vec<String> = (0..rng.below(3))
        .map(|_| input(rng, &["A=1", "KYVERNO_VERSION=2.0.0", "=x", "B"]))
        .collect();
    let args = no_panic("tags::dockerfile_args", &(&df, &build_args), || {
        xtask::tags::dockerfile_args(&df, &build_args)
    });
    let names = no_panic("image::plan::arg_names", &df, || xtask::image::plan::arg_names(&df));
    seen("image::plan::arg_names", !names.is_empty());
    no_panic("tags::tool_pins", &args, || xtask::tags::tool_pins(&args));
    // Every ARG with a default is an ARG name, and no name is empty or holds a space.
    let defaults = xtask::tags::dockerfile_args(&df, &[]);
    for k in defaults.keys().filter(|k| !k.is_empty()) {
        assert!(
            names.contains(k),
            "{df:?}: `{k}` has a default but is not among the ARG names {names:?}"
        );
    }
    assert!(
        names
            .iter()
            .all(|n| !n.is_empty() && !n.chars().any(char::is_whitespace)),
        "{df:?}: {names:?}"
    );
}

const TOOL_OUTPUT: &[&str] = &[
    "v1.0.0: digest: sha256:e2e16842c9b54d985bf1ef9242a313f36b856181f188de21313820e177002501 size: 528\n",
    "{\"schemaVersion\":2,\"config\":{\"digest\":\"sha256:30442b65e68794d03c80a587a847e5315f9bd1e39cf74cdd72b166294b406a4c\"}}",
    "time=\"2026-11-27T22:59:02Z\" level=fatal msg=\"Error reading manifest v1: manifest unknown\"\n",
    "WARNING! x\nError response from daemon: login attempt failed with status: 401 Unauthorized\n",
];

fn tool_output(rng: &mut Rng) {
    let out = input(rng, TOOL_OUTPUT);
    let tag = input(rng, &["v1.0.0", "latest", "v1.0"]);
    let pushed = no_panic("docker::push_digest", &(&out, &tag), || {
        xtask::tools::docker::push_digest(&out, &tag)
    });
    seen("docker::push_digest", pushed.is_some());
    if let Some(d) = pushed {
        assert!(
            xtask::tools::skopeo::is_digest(&d),
            "push_digest gave {d:?} from {out:?}"
        );
    }
    let config = no_panic("skopeo::manifest_config", &out, || {
        xtask::tools::skopeo::manifest_config(&out)
    });
    seen("skopeo::manifest_config", config.is_some());
    if let Some(d) = config {
        assert!(
            xtask::tools::skopeo::is_digest(&d),
            "manifest_config gave {d:?} from {out:?}"
        );
    }
    let line = no_panic("runner::error_line", &out, || xtask::runner::error_line(&out));
    assert!(!line.contains('\n'), "{out:?} → {line:?}");
    // Tags read from a registry decide where latest goes: junk among them is ignored.
    let tags: Vec<String> = (0..rng.below(4))
        .map(|_| input(rng, &["v1.0.0", "v2.0.0-rc.1", "latest", "sha-abc"]))
        .collect();
    let v = semver::Version::new(1, 0, rng.below(3) as u64);
    let moves = no_panic("plan::latest_decision", &tags, || {
        xtask::publish::plan::latest_decision(&v, &tags)
    });
    seen("plan::latest_decision", moves.is_ok());
}

#[test]
fn parsers_never_panic_and_refuse_with_exit_2() {
    let seed = std::env::var("PARSERS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_2026_u64);
    let budget = Duration::from_secs(
        std::env::var("PARSERS_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3),
    );
    // Quiet: a panic is reported once, with its input, by `no_panic`.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut rng = Rng(seed);
    let start = Instant::now();
    let mut rounds = 0u64;
    let result = catch_unwind(AssertUnwindSafe(|| {
        while start.elapsed() < budget {
            for _ in 0..64 {
                versions(&mut rng);
                registries(&mut rng);
                command_lines(&mut rng);
                dockerfiles(&mut rng);
                tool_output(&mut rng);
                rounds += 1;
            }
        }
    }));
    std::panic::set_hook(hook);
    if let Err(e) = result {
        let msg = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        panic!("seed {seed:#x}, round {rounds}: {msg}");
    }
    eprintln!(
        "{rounds} rounds of every parser in {:?} (seed {seed:#x})",
        start.elapsed()
    );
    let seen = SEEN.with(|s| s.borrow().clone());
    for (parser, (yes, no)) in &seen {
        eprintln!("  {parser:<26} {yes:>7} accepted {no:>7} refused");
    }
    assert!(rounds >= 1000, "too few rounds to mean anything: {rounds}");
    assert_eq!(seen.len(), 9, "{seen:?}");
    for (parser, (yes, no)) in &seen {
        assert!(
            *yes > 0 && *no > 0,
            "{parser} saw only one side: {yes} accepted, {no} refused"
        );
    }
}

/// The cases the issue found, by name, so that they never depend on the random walk.
#[test]
fn the_known_cases() {
    let max = u64::MAX;
    for (cur, how) in [
        (format!("v{max}.0.0"), "major"),
        (format!("v1.{max}.0"), "minor"),
        (format!("v1.0.{max}"), "patch"),
        (format!("v1.0.0-rc.{max}"), "rc"),
    ] {
        let v = version::parse_tag(&cur).unwrap();
        let e = version::bump(&v, &Bump::parse(how).unwrap()).unwrap_err();
        usage_error("version::bump", &(&cur, how), &e);
    }
    for spec in ["-u.x", "ghcr.io;rm", "gh\"cr.io", "ghcr.io:notaport", "--password=x.io"] {
        assert!(Target::parse(spec).is_err(), "{spec}");
    }
}
