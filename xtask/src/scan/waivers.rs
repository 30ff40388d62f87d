//! Waivers: `.trivyignore.yaml` at the repo root, read here (not by Trivy) so that waived
//! findings stay in the report and expiry is enforced. Pure: dates are passed in.
//!
//! The accepted subset of YAML is Trivy's ignore-file schema in block style:
//!
//! ```yaml
//! vulnerabilities:            # or secrets, misconfigurations, licenses
//!   - id: CVE-2024-0001       # required
//!     statement: "why this is acceptable, and who said so"   # required
//!     expired_at: 2026-12-31  # required; the waiver stops working on this day (UTC)
//!     paths: ["usr/local/bin/*"]                # optional globs (target or package path)
//!     purls: ["pkg:apk/alpine/busybox"]         # optional, vulnerabilities only
//! ```

pub use crate::date::Date;
use std::fmt;

/// Warn about waivers that expire within this many days.
pub const WARN_DAYS: i64 = 14;

/// Which kind of finding a waiver applies to (the YAML section it is in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Vulnerabilities,
    Secrets,
    Misconfigurations,
    Licenses,
}

impl Section {
    fn from_key(k: &str) -> Option<Section> {
        Some(match k {
            "vulnerabilities" => Section::Vulnerabilities,
            "secrets" => Section::Secrets,
            "misconfigurations" => Section::Misconfigurations,
            "licenses" => Section::Licenses,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Waiver {
    pub section: Section,
    pub id: String,
    pub statement: String,
    pub expired_at: Date,
    pub paths: Vec<String>,
    pub purls: Vec<String>,
    /// Line of the entry in the file, for messages.
    pub line: usize,
}

impl Waiver {
    /// Trivy's rule: the waiver is gone from midnight UTC of its `expired_at` day on.
    pub fn expired(&self, today: Date) -> bool {
        today >= self.expired_at
    }

    /// Still valid, but for at most `WARN_DAYS` more days.
    pub fn expiring_soon(&self, today: Date) -> bool {
        today < self.expired_at && self.expired_at.days() - today.days() <= WARN_DAYS
    }

    /// `CVE-.. (.trivyignore.yaml:7)`, how messages name a waiver.
    pub fn name(&self) -> String {
        format!("`{}` ({FILE}:{})", self.id, self.line)
    }
}

pub const FILE: &str = ".trivyignore.yaml";

/// A problem in the waiver file: a usage error (exit 2), with its line.
#[derive(Debug, PartialEq)]
pub struct ParseError {
    pub line: usize,
    pub msg: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{FILE}:{}: {}", self.line, self.msg)
    }
}

fn err<T>(line: usize, msg: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError { line, msg: msg.into() })
}

/// An entry while it is being read.
struct Open {
    w: Waiver,
    dash_col: usize,
    key_col: usize,
    /// The key whose block list (`- value` lines) is being read.
    list: Option<String>,
    has_statement: bool,
    has_expiry: bool,
}

/// Parses the waiver file. Every entry needs `id` and a non-empty `statement`.
pub fn parse(text: &str) -> Result<Vec<Waiver>, ParseError> {
    let mut out = Vec::new();
    let mut section: Option<Section> = None;
    let mut open: Option<Open> = None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = strip_comment(raw);
        if line.trim().is_empty() {
            continue;
        }
        let indent = line.len() - line.trim_start_matches(' ').len();
        if line[indent..].starts_with('\t') {
            return err(n, "tabs are not allowed for indentation; use spaces");
        }
        let t = line.trim();
        if indent == 0 && !is_item(t) {
            finish(&mut open, &mut out)?;
            let Some((key, rest)) = split_key(t) else {
                return err(n, format!("expected a section like `vulnerabilities:`, found `{t}`"));
            };
            section = Some(Section::from_key(key).ok_or_else(|| ParseError {
                line: n,
                msg: format!("unknown section `{key}`; use vulnerabilities, secrets, misconfigurations or licenses"),
            })?);
            if !(rest.is_empty() || rest == "[]") {
                return err(
                    n,
                    format!("`{key}:` must be followed by a list of entries (`- id: ...`)"),
                );
            }
            continue;
        }
        let Some(sec) = section else {
            return err(
                n,
                "an entry outside any section; start with `vulnerabilities:` or `secrets:`",
            );
        };
        if is_item(t) {
            let body_off = 1 + t[1..].len() - t[1..].trim_start().len();
            let body = t[body_off..].trim_end();
            if let Some(o) = open.as_mut() {
                if o.list.is_some() && indent >= o.key_col && indent != o.dash_col {
                    let key = o.list.clone().unwrap();
                    let v = scalar(body, n)?;
                    list_of(&mut o.w, &key).push(v);
                    continue;
                }
                if indent != o.dash_col {
                    return err(
                        n,
                        "unexpected indentation; entries of a section start at the same column",
                    );
                }
            }
            finish(&mut open, &mut out)?;
            let mut o = Open {
                w: Waiver {
                    section: sec,
                    id: String::new(),
                    statement: String::new(),
                    expired_at: Date::from_days(0), // set by `expired_at:`, required
                    paths: vec![],
                    purls: vec![],
                    line: n,
                },
                dash_col: indent,
                key_col: indent + body_off,
                list: None,
                has_statement: false,
                has_expiry: false,
            };
            if body.is_empty() {
                return err(n, "write the first key on the same line as the dash: `- id: ...`");
            }
            set_key(&mut o, body, n)?;
            open = Some(o);
            continue;
        }
        let Some(o) = open.as_mut() else {
            return err(
                n,
                format!("`{t}` is not inside an entry; entries start with `- id: ...`"),
            );
        };
        if indent != o.key_col {
            return err(
                n,
                format!(
                    "`{t}`: keys of an entry must line up under its first key (column {})",
                    o.key_col + 1
                ),
            );
        }
        set_key(o, t, n)?;
    }
    finish(&mut open, &mut out)?;
    Ok(out)
}

fn is_item(t: &str) -> bool {
    t == "-" || t.starts_with("- ")
}

fn finish(open: &mut Option<Open>, out: &mut Vec<Waiver>) -> Result<(), ParseError> {
    let Some(o) = open.take() else { return Ok(()) };
    if o.w.id.is_empty() {
        return err(
            o.w.line,
            "an entry without `id`; add the vulnerability ID or secret rule ID it waives",
        );
    }
    if !o.has_statement || o.w.statement.trim().is_empty() {
        return err(
            o.w.line,
            format!(
                "waiver `{}` has no `statement`; say why it is acceptable and who decided",
                o.w.id
            ),
        );
    }
    // A waiver that never expires is never looked at again: every waiver needs a date.
    if !o.has_expiry {
        return err(
            o.w.line,
            format!(
                "waiver `{}` has no `expired_at`; add the date (YYYY-MM-DD) by which the finding must be fixed or the waiver renewed",
                o.w.id
            ),
        );
    }
    out.push(o.w);
    Ok(())
}

fn set_key(o: &mut Open, kv: &str, n: usize) -> Result<(), ParseError> {
    let Some((key, rest)) = split_key(kv) else {
        return err(n, format!("expected `key: value`, found `{kv}`"));
    };
    o.list = None;
    match key {
        "id" => o.w.id = scalar(rest, n)?,
        "statement" => {
            o.w.statement = scalar(rest, n)?;
            o.has_statement = true;
        }
        "expired_at" => {
            let v = scalar(rest, n)?;
            o.w.expired_at = Date::parse(&v).ok_or_else(|| ParseError {
                line: n,
                msg: format!("`expired_at: {v}` is not a date; write it as YYYY-MM-DD, unquoted"),
            })?;
            o.has_expiry = true;
        }
        "paths" | "purls" => {
            if key == "purls" && o.w.section != Section::Vulnerabilities {
                return err(n, "`purls` only applies to vulnerabilities");
            }
            if rest.is_empty() {
                o.list = Some(key.to_string());
            } else {
                let items = flow_list(rest, n)?;
                list_of(&mut o.w, key).extend(items);
            }
        }
        _ => {
            return err(
                n,
                format!("unknown key `{key}`; an entry has id, statement, expired_at, paths, purls"),
            )
        }
    }
    Ok(())
}

fn list_of<'a>(w: &'a mut Waiver, key: &str) -> &'a mut Vec<String> {
    if key == "paths" {
        &mut w.paths
    } else {
        &mut w.purls
    }
}

/// `key: rest` or `key:`; keys are plain words.
fn split_key(t: &str) -> Option<(&str, &str)> {
    let (k, rest) = if let Some(k) = t.strip_suffix(':') {
        (k, "")
    } else {
        let (k, r) = t.split_once(": ")?;
        (k, r.trim())
    };
    let ok = !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    ok.then_some((k, rest))
}

/// A one-line scalar: plain, 'single' or "double" quoted.
fn scalar(v: &str, n: usize) -> Result<String, ParseError> {
    let v = v.trim();
    if let Some(inner) = v.strip_prefix('"') {
        let mut s = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => {
                    return match chars.as_str().trim() {
                        "" => Ok(s),
                        rest => err(n, format!("text after the closing quote: `{rest}`")),
                    }
                }
                '\\' => match chars.next() {
                    Some('"') => s.push('"'),
                    Some('\\') => s.push('\\'),
                    Some('n') => s.push('\n'),
                    Some('t') => s.push('\t'),
                    Some('/') => s.push('/'),
                    other => {
                        return err(
                            n,
                            format!(
                                "unsupported escape `\\{}` in a double-quoted value",
                                other.unwrap_or(' ')
                            ),
                        )
                    }
                },
                c => s.push(c),
            }
        }
        return err(n, "unterminated double quote; values must fit on one line");
    }
    if let Some(inner) = v.strip_prefix('\'') {
        let mut s = String::new();
        let mut rest = inner;
        loop {
            let Some(i) = rest.find('\'') else {
                return err(n, "unterminated single quote; values must fit on one line");
            };
            s.push_str(&rest[..i]);
            rest = &rest[i + 1..];
            if let Some(r) = rest.strip_prefix('\'') {
                s.push('\'');
                rest = r;
            } else if rest.trim().is_empty() {
                return Ok(s);
            } else {
                return err(n, format!("text after the closing quote: `{}`", rest.trim()));
            }
        }
    }
    if v.starts_with(['|', '>']) {
        return err(
            n,
            "block scalars (`|`, `>`) are not supported; write the value on one line",
        );
    }
    if v.starts_with(['[', '{', '&', '*', '!', '%', '@', '`']) || v.contains(": ") {
        return err(
            n,
            format!("`{v}` must be quoted (it has characters YAML treats specially)"),
        );
    }
    Ok(v.to_string())
}

/// `["a", 'b', c]` on one line.
fn flow_list(v: &str, n: usize) -> Result<Vec<String>, ParseError> {
    let Some(inner) = v.strip_prefix('[').and_then(|r| r.strip_suffix(']')) else {
        return err(
            n,
            format!("expected a list like [\"a\", \"b\"] or `- a` lines below, found `{v}`"),
        );
    };
    if inner.trim().is_empty() {
        return Ok(vec![]);
    }
    // Split at commas outside quotes.
    let mut items = Vec::new();
    let (mut cur, mut quote) = (String::new(), None::<char>);
    for c in inner.chars() {
        match (quote, c) {
            (None, ',') => items.push(std::mem::take(&mut cur)),
            (None, '"' | '\'') => {
                quote = Some(c);
                cur.push(c)
            }
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(c)
            }
            _ => cur.push(c),
        }
    }
    items.push(cur);
    items.iter().map(|s| scalar(s, n)).collect()
}

/// The line without a `#` comment (a `#` at the start or after a space, outside quotes).
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') if prev == ' ' || prev == '\t' => return line[..i].trim_end(),
            _ => {}
        }
        prev = c;
    }
    line.trim_end()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        Date::parse(s).unwrap()
    }

    const FULL: &str = r#"
# Waivers for the scan gate. Each needs a statement and an expiry.
vulnerabilities:
  - id: CVE-2099-0001
    statement: "Not reachable: busybox wget is never run"   # quoted because of the colon
    expired_at: 2027-01-31
    paths:
      - "usr/local/bin/*"
      - lib/**
    purls: ['pkg:apk/alpine/busybox']
  - id: CVE-2099-0002
    statement: it's fine, says the security team
    expired_at: 2027-06-30
secrets:
- id: github-pat
  statement: 'a revoked token kept as a fixture, says ''sec'''
  expired_at: 2026-12-01
  paths: []
licenses: []
"#;

    #[test]
    fn reads_the_documented_schema() {
        let w = parse(FULL).unwrap();
        assert_eq!(w.len(), 3);
        assert_eq!(w[0].section, Section::Vulnerabilities);
        assert_eq!(w[0].id, "CVE-2099-0001");
        assert_eq!(w[0].statement, "Not reachable: busybox wget is never run");
        assert_eq!(w[0].expired_at, d("2027-01-31"));
        assert_eq!(w[0].paths, vec!["usr/local/bin/*", "lib/**"]);
        assert_eq!(w[0].purls, vec!["pkg:apk/alpine/busybox"]);
        assert_eq!(w[0].line, 4);
        assert_eq!(w[1].statement, "it's fine, says the security team");
        assert_eq!(w[1].expired_at, d("2027-06-30"));
        assert_eq!(w[2].section, Section::Secrets);
        assert_eq!(w[2].statement, "a revoked token kept as a fixture, says 'sec'");
        assert!(w[2].paths.is_empty());
    }

    #[test]
    fn empty_and_comment_only_files_have_no_waivers() {
        assert_eq!(parse("").unwrap(), vec![]);
        assert_eq!(
            parse("# nothing waived\nvulnerabilities: []\nsecrets: []\n").unwrap(),
            vec![]
        );
    }

    #[test]
    fn statement_is_required_and_the_entry_is_named() {
        let e = parse("vulnerabilities:\n  - id: CVE-1\n    expired_at: 2027-01-01\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.msg.contains("`CVE-1` has no `statement`"), "{e}");
        let e = parse("secrets:\n  - id: x\n    statement: \"\"\n").unwrap_err();
        assert!(e.msg.contains("no `statement`"), "{e}");
        let e = parse("secrets:\n  - statement: why\n").unwrap_err();
        assert!(e.msg.contains("without `id`"), "{e}");
    }

    #[test]
    fn what_is_not_accepted_says_so() {
        for (text, want) in [
            ("vulns:\n  - id: x\n", "unknown section `vulns`"),
            (
                "vulnerabilities:\n  - id: x\n    statement: a\n    owner: me\n",
                "unknown key `owner`",
            ),
            (
                "vulnerabilities:\n  - id: x\n    statement: |\n      long\n",
                "block scalars",
            ),
            ("vulnerabilities:\n  - id: x\n    statement: a: b\n", "must be quoted"),
            (
                "vulnerabilities:\n  - id: x\n    statement: a\n    expired_at: 2027-02-30\n",
                "not a date",
            ),
            (
                "vulnerabilities:\n  - id: x\n    statement: a\n    expired_at: \"soon\"\n",
                "not a date",
            ),
            ("vulnerabilities:\n  - id: x\n      statement: a\n", "line up"),
            ("vulnerabilities:\n\t- id: x\n", "tabs"),
            ("  - id: x\n", "outside any section"),
            (
                "secrets:\n  - id: x\n    statement: a\n    purls: [p]\n",
                "only applies to vulnerabilities",
            ),
            ("vulnerabilities:\n  - id: \"x\n", "unterminated"),
            ("vulnerabilities: CVE-1\n", "list of entries"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.msg.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn expiry_follows_trivy_midnight_utc_rule() {
        let w = &parse("vulnerabilities:\n  - id: x\n    statement: a\n    expired_at: 2026-12-31\n").unwrap()[0];
        assert!(!w.expired(d("2026-12-30")));
        assert!(w.expired(d("2026-12-31")), "gone on the day itself");
        assert!(w.expired(d("2027-01-01")));
        assert!(w.expiring_soon(d("2026-12-17")), "14 days ahead warns");
        assert!(!w.expiring_soon(d("2026-12-16")), "15 days ahead is quiet");
        assert!(!w.expiring_soon(d("2026-12-31")), "expired is not 'soon'");
    }

    #[test]
    fn a_waiver_without_expiry_is_refused_and_named() {
        let e = parse("vulnerabilities:\n  - id: CVE-1\n    statement: accepted for now\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.msg.contains("waiver `CVE-1` has no `expired_at`"), "{e}");
    }

    #[test]
    fn the_repos_own_waiver_file_is_valid() {
        parse(include_str!("../../../.trivyignore.yaml")).unwrap();
    }
}
