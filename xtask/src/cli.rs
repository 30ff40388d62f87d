//! A small declarative argument parser: each task declares its flags as a `Spec`, which
//! gives both the parsing and the `--help` text. (No parser crate: cold build time.)

use crate::exit;
use std::collections::BTreeMap;

pub struct Flag {
    pub name: &'static str,
    /// `Some(METAVAR)` when the flag takes a value.
    pub value: Option<&'static str>,
    pub repeat: bool,
    pub doc: &'static str,
}

pub struct Spec {
    pub name: &'static str,
    pub about: &'static str,
    /// `(METAVAR, doc)` of the positional arguments, if the task takes any.
    pub positional: Option<(&'static str, &'static str)>,
    pub flags: &'static [Flag],
}

pub const fn switch(name: &'static str, doc: &'static str) -> Flag {
    Flag { name, value: None, repeat: false, doc }
}

pub const fn value(name: &'static str, metavar: &'static str, doc: &'static str) -> Flag {
    Flag { name, value: Some(metavar), repeat: false, doc }
}

pub const fn many(name: &'static str, metavar: &'static str, doc: &'static str) -> Flag {
    Flag { name, value: Some(metavar), repeat: true, doc }
}

// Flags shared by several tasks, with the contract's names.
pub const DRY_RUN: Flag = switch("--dry-run", "Print the plan and every command; run and change nothing");
pub const IMAGE: Flag = value("--image", "REF", "Image to check (default: the local <image>:v<VERSION>)");
pub const BUILD_ARG: Flag = many("--build-arg", "KEY=VALUE", "Passed to docker build (repeatable)");
pub const PULL: Flag = switch("--pull", "Always pull a newer base image");
pub const NO_CACHE: Flag = switch("--no-cache", "Build without the layer cache");
pub const NETWORK: Flag = value("--network", "MODE", "Network mode for RUN steps of docker build (e.g. host)");
pub const TOOLS_MIRROR: Flag =
    value("--tools-mirror", "URL", "Download every tool from this mirror (same file names, same checksums)");
pub const SEVERITY: Flag =
    value("--severity", "LIST", "Severities that fail the gate, comma separated (default CRITICAL)");

#[derive(Debug, Default)]
pub struct Args {
    pub positional: Vec<String>,
    flags: BTreeMap<&'static str, Vec<String>>,
}

impl Args {
    pub fn has(&self, name: &str) -> bool {
        self.flags.contains_key(name)
    }

    pub fn value(&self, name: &str) -> Option<&str> {
        self.flags.get(name).and_then(|v| v.last()).map(String::as_str)
    }

    pub fn values(&self, name: &str) -> Vec<String> {
        self.flags.get(name).cloned().unwrap_or_default()
    }

    /// Builds arguments in unit tests.
    #[cfg(test)]
    pub fn with(mut self, name: &'static str, value: &str) -> Args {
        self.flags.entry(name).or_default().push(value.to_string());
        self
    }
}

/// Parses `args` (after the task name) against `spec`. `Ok(None)` means `--help` was asked.
pub fn parse(spec: &Spec, args: &[String]) -> anyhow::Result<Option<Args>> {
    let mut out = Args::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "--help" || arg == "-h" {
            return Ok(None);
        }
        if !arg.starts_with("--") || arg == "--" {
            if spec.positional.is_none() {
                return Err(bad(spec, &format!("unexpected argument `{arg}`")));
            }
            out.positional.push(arg.clone());
            continue;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (arg.as_str(), None),
        };
        let Some(flag) = spec.flags.iter().find(|f| f.name == name) else {
            return Err(bad(spec, &format!("unknown flag `{name}`")));
        };
        let val = match (flag.value, inline) {
            (None, None) => String::new(),
            (None, Some(_)) => return Err(bad(spec, &format!("`{name}` takes no value"))),
            (Some(_), Some(v)) => v,
            (Some(meta), None) => match it.next() {
                Some(v) => v.clone(),
                None => return Err(bad(spec, &format!("`{name}` needs a value {meta}"))),
            },
        };
        let slot = out.flags.entry(flag.name).or_default();
        if !flag.repeat && !slot.is_empty() {
            return Err(bad(spec, &format!("`{name}` given twice")));
        }
        slot.push(val);
    }
    Ok(Some(out))
}

fn bad(spec: &Spec, what: &str) -> anyhow::Error {
    exit::usage(format!("{what}; usage: {} (see `cargo xtask {} --help`)", usage_line(spec), spec.name))
}

pub fn usage_line(spec: &Spec) -> String {
    let mut s = format!("cargo xtask {}", spec.name);
    if !spec.flags.is_empty() {
        s.push_str(" [flags]");
    }
    if let Some((meta, _)) = spec.positional {
        s.push(' ');
        s.push_str(meta);
    }
    s
}

pub fn help(spec: &Spec) -> String {
    let mut s = format!("{}\n\nUsage: {}\n", spec.about, usage_line(spec));
    if let Some((meta, doc)) = spec.positional {
        s.push_str(&format!("\nArguments:\n  {meta:<24} {doc}\n"));
    }
    s.push_str("\nFlags:\n");
    for f in spec.flags {
        let left = match f.value {
            Some(m) => format!("{} {m}", f.name),
            None => f.name.to_string(),
        };
        s.push_str(&format!("  {left:<24} {}\n", f.doc));
    }
    s.push_str(&format!("  {:<24} {}\n", "-h, --help", "Print this help"));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: Spec = Spec {
        name: "demo",
        about: "demo task",
        positional: None,
        flags: &[DRY_RUN, IMAGE, BUILD_ARG],
    };

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_switches_values_and_repeats() {
        let a = parse(&SPEC, &strings(&["--dry-run", "--image", "x:1", "--build-arg=A=1", "--build-arg", "B=2"]))
            .unwrap()
            .unwrap();
        assert!(a.has("--dry-run"));
        assert_eq!(a.value("--image"), Some("x:1"));
        assert_eq!(a.values("--build-arg"), vec!["A=1", "B=2"]);
    }

    #[test]
    fn unknown_flag_is_a_usage_error() {
        let e = parse(&SPEC, &strings(&["--frobnicate"])).unwrap_err();
        assert_eq!(crate::exit::code_of(&e), 2);
        assert!(e.to_string().contains("unknown flag `--frobnicate`"), "{e}");
    }

    #[test]
    fn missing_value_and_duplicates_are_errors() {
        assert!(parse(&SPEC, &strings(&["--image"])).is_err());
        assert!(parse(&SPEC, &strings(&["--image", "a", "--image", "b"])).is_err());
        assert!(parse(&SPEC, &strings(&["--dry-run=yes"])).is_err());
        assert!(parse(&SPEC, &strings(&["stray"])).is_err());
    }

    #[test]
    fn help_lists_every_flag() {
        assert!(parse(&SPEC, &strings(&["--help"])).unwrap().is_none());
        let h = help(&SPEC);
        for f in SPEC.flags {
            assert!(h.contains(f.name), "{h}");
        }
    }
}
