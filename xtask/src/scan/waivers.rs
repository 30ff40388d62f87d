//! Waivers: `.trivyignore.yaml` at the repo root. Trivy applies the file itself (matching
//! `id`, `paths` and `purls` exactly as a local `trivy --ignorefile .trivyignore.yaml` would);
//! this module keeps the rules Trivy does not have, all of which it would accept silently:
//! every entry has a `statement` and an unquoted `expired_at` (Trivy drops an expired entry
//! without a word, so the gate must see it), no unknown section or key (a typo'd
//! `expired-at` would never expire), no `purls` under `secrets` (Trivy ignores it and the
//! entry then waives the rule everywhere), and no two entries of a section with the same
//! `id` and `statement` (Trivy reports only the statement: that pair names the entry).
//! Pure: dates are passed in. Read with yaml-rust2's event parser, for line numbers and
//! scalar styles.
//!
//! ```yaml
//! vulnerabilities:            # or secrets, misconfigurations, licenses
//!   - id: CVE-2024-0001       # required
//!     statement: "why this is acceptable, and who said so"   # required
//!     expired_at: 2026-12-31  # required; the waiver stops working on this day (UTC)
//!     paths: ["usr/local/bin/*"]                # optional globs (Trivy's)
//!     purls: ["pkg:apk/alpine/busybox"]         # optional, vulnerabilities only
//! ```

pub use crate::date::Date;
use std::fmt;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Warn about waivers that expire within this many days.
pub const WARN_DAYS: i64 = 14;

pub const FILE: &str = ".trivyignore.yaml";

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

/// Parses the waiver file and applies the gate's rules (see the module comment).
pub fn parse(text: &str) -> Result<Vec<Waiver>, ParseError> {
    let (mut docs, starts) = load(text)?;
    if docs.len() > 1 {
        return err(
            starts[1],
            "a second YAML document (`---`); Trivy reads only the first: keep one",
        );
    }
    let sections = match docs.pop() {
        None => return Ok(vec![]),
        Some(n) if n.is_null() => return Ok(vec![]),
        Some(Node::Map(pairs, _)) => pairs,
        Some(n) => {
            return err(
                n.line(),
                "expected sections like `vulnerabilities:` at the top of the file",
            )
        }
    };
    let mut out: Vec<Waiver> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for (key, value) in &sections {
        let name = plain_key(key)?;
        let section = Section::from_key(name).ok_or_else(|| ParseError {
            line: key.line(),
            msg: format!("unknown section `{name}`; use vulnerabilities, secrets, misconfigurations or licenses"),
        })?;
        if seen.contains(&name) {
            return err(key.line(), format!("section `{name}` appears twice; keep one"));
        }
        seen.push(name);
        let entries: &[Node] = match value {
            Node::Seq(items, _) => items,
            n if n.is_null() => &[],
            n => {
                return err(
                    n.line(),
                    format!("`{name}:` must be followed by a list of entries (`- id: ...`)"),
                )
            }
        };
        for e in entries {
            let w = entry(section, e)?;
            if let Some(first) = out
                .iter()
                .find(|o| o.section == w.section && o.id == w.id && o.statement == w.statement)
            {
                return err(
                    w.line,
                    format!(
                        "waiver `{}` has the same id and statement as the one at line {}; merge their paths/purls into one entry or give each its own statement",
                        w.id, first.line
                    ),
                );
            }
            out.push(w);
        }
    }
    Ok(out)
}

fn entry(section: Section, e: &Node) -> Result<Waiver, ParseError> {
    let Node::Map(pairs, line) = e else {
        return err(
            e.line(),
            "an entry must be a mapping like `- id: ...` with statement and expired_at",
        );
    };
    let line = *line;
    let (mut id, mut statement, mut expired_at) = (None, None, None);
    let mut keys: Vec<&str> = Vec::new();
    for (k, v) in pairs {
        let key = plain_key(k)?;
        if keys.contains(&key) {
            return err(k.line(), format!("`{key}` appears twice in this entry"));
        }
        keys.push(key);
        match key {
            "id" => id = text(v, key)?,
            "statement" => statement = text(v, key)?,
            "expired_at" => {
                expired_at = match v {
                    n if n.is_null() => None,
                    Node::Scalar(s, TScalarStyle::Plain, _) => Some(Date::parse(s).ok_or_else(|| ParseError {
                        line: v.line(),
                        msg: format!("`expired_at: {s}` is not a date; write it as YYYY-MM-DD, unquoted"),
                    })?),
                    Node::Scalar(s, _, l) => {
                        return err(*l, format!("`expired_at: {s}` is quoted; write the date as YYYY-MM-DD, unquoted (Trivy refuses a quoted date)"))
                    }
                    n => return err(n.line(), "`expired_at` must be a date (YYYY-MM-DD)"),
                }
            }
            "paths" | "purls" => {
                if key == "purls" && section != Section::Vulnerabilities {
                    return err(k.line(), "`purls` only applies to vulnerabilities (Trivy would ignore it and waive the rule everywhere)");
                }
                list(v, key)?;
            }
            _ => return err(k.line(), format!("unknown key `{key}`; an entry has id, statement, expired_at, paths, purls")),
        }
    }
    let Some(id) = id.filter(|s| !s.is_empty()) else {
        return err(
            line,
            "an entry without `id`; add the vulnerability ID or secret rule ID it waives",
        );
    };
    let Some(statement) = statement.filter(|s| !s.trim().is_empty()) else {
        return err(
            line,
            format!("waiver `{id}` has no `statement`; say why it is acceptable and who decided"),
        );
    };
    // A waiver that never expires is never looked at again: every waiver needs a date.
    let Some(expired_at) = expired_at else {
        return err(
            line,
            format!("waiver `{id}` has no `expired_at`; add the date (YYYY-MM-DD) by which the finding must be fixed or the waiver renewed"),
        );
    };
    Ok(Waiver {
        section,
        id,
        statement,
        expired_at,
        line,
    })
}

/// A key: a plain word.
fn plain_key(k: &Node) -> Result<&str, ParseError> {
    match k {
        Node::Scalar(s, _, _) => Ok(s),
        n => err(n.line(), "a key must be a plain word"),
    }
}

/// A text value (`None` when null).
fn text(v: &Node, key: &str) -> Result<Option<String>, ParseError> {
    match v {
        n if n.is_null() => Ok(None),
        Node::Scalar(s, _, _) => Ok(Some(s.clone())),
        n => err(n.line(), format!("`{key}` must be text, not a list or mapping")),
    }
}

/// A list of texts (`paths`, `purls`): checked here, matched by Trivy.
fn list(v: &Node, key: &str) -> Result<(), ParseError> {
    match v {
        n if n.is_null() => Ok(()),
        Node::Seq(items, _) => match items.iter().find(|i| !matches!(i, Node::Scalar(..)) || i.is_null()) {
            Some(i) => err(i.line(), format!("`{key}` must be a list of texts")),
            None => Ok(()),
        },
        n => err(
            n.line(),
            format!("`{key}` must be a list like [\"a\", \"b\"] or `- a` lines below"),
        ),
    }
}

/// The file as a tree, each node with its line.
#[derive(Debug)]
enum Node {
    Scalar(String, TScalarStyle, usize),
    Seq(Vec<Node>, usize),
    Map(Vec<(Node, Node)>, usize),
}

impl Node {
    fn line(&self) -> usize {
        match self {
            Node::Scalar(_, _, l) | Node::Seq(_, l) | Node::Map(_, l) => *l,
        }
    }

    /// An empty value, `~` or `null` (plain).
    fn is_null(&self) -> bool {
        matches!(self, Node::Scalar(s, TScalarStyle::Plain, _) if matches!(s.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }
}

/// Builds the tree from the parser's events; refuses what Trivy's schema never needs.
#[derive(Default)]
struct Builder {
    /// Open collections: a sequence's items, or a mapping's pairs and its pending key.
    open: Vec<(Node, Option<Node>)>,
    docs: Vec<Node>,
    /// The line where each document starts.
    starts: Vec<usize>,
    error: Option<ParseError>,
}

impl Builder {
    fn add(&mut self, n: Node) {
        match self.open.last_mut() {
            None => self.docs.push(n),
            Some((Node::Seq(items, _), _)) => items.push(n),
            Some((Node::Map(pairs, _), key)) => match key.take() {
                None => *key = Some(n),
                Some(k) => pairs.push((k, n)),
            },
            Some(_) => {}
        }
    }

    fn fail(&mut self, line: usize, msg: &str) {
        if self.error.is_none() {
            self.error = Some(ParseError {
                line,
                msg: msg.to_string(),
            });
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let line = mark.line();
        match ev {
            Event::Scalar(_, _, _, Some(_)) | Event::SequenceStart(_, Some(_)) | Event::MappingStart(_, Some(_)) => {
                self.fail(line, "YAML tags (`!...`) are not supported; write plain values")
            }
            Event::DocumentStart => self.starts.push(line),
            Event::Alias(_) => self.fail(line, "YAML aliases (`*name`) are not supported; write the value out"),
            Event::Scalar(s, style, _, None) => self.add(Node::Scalar(s, style, line)),
            Event::SequenceStart(..) => self.open.push((Node::Seq(vec![], line), None)),
            Event::MappingStart(..) => self.open.push((Node::Map(vec![], line), None)),
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((n, _)) = self.open.pop() {
                    self.add(n);
                }
            }
            _ => {}
        }
    }
}

fn load(text: &str) -> Result<(Vec<Node>, Vec<usize>), ParseError> {
    let mut b = Builder::default();
    Parser::new_from_str(text).load(&mut b, true).map_err(|e| ParseError {
        line: e.marker().line(),
        msg: format!("not valid YAML: {}", e.info()),
    })?;
    match b.error {
        Some(e) => Err(e),
        None => Ok((b.docs, b.starts)),
    }
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
- id: aws-access-key-id
  statement: |
    a fixture key,
    revoked (SEC-2)
  expired_at: 2026-12-01
licenses: []
"#;

    #[test]
    fn reads_the_documented_schema() {
        let w = parse(FULL).unwrap();
        assert_eq!(w.len(), 4);
        assert_eq!(w[0].section, Section::Vulnerabilities);
        assert_eq!(w[0].id, "CVE-2099-0001");
        assert_eq!(w[0].statement, "Not reachable: busybox wget is never run");
        assert_eq!(w[0].expired_at, d("2027-01-31"));
        assert_eq!(w[0].line, 4);
        assert_eq!(w[1].statement, "it's fine, says the security team");
        assert_eq!(w[1].line, 11);
        assert_eq!(w[2].section, Section::Secrets);
        assert_eq!(w[2].statement, "a revoked token kept as a fixture, says 'sec'");
        assert_eq!(w[2].line, 15);
        // Block scalars are plain YAML now (Trivy reads them the same way).
        assert_eq!(w[3].statement, "a fixture key,\nrevoked (SEC-2)\n");
    }

    #[test]
    fn empty_and_comment_only_files_have_no_waivers() {
        assert_eq!(parse("").unwrap(), vec![]);
        assert_eq!(parse("# nothing waived\n").unwrap(), vec![]);
        assert_eq!(
            parse("# nothing waived\nvulnerabilities: []\nsecrets:\n").unwrap(),
            vec![]
        );
    }

    #[test]
    fn statement_is_required_and_the_entry_is_named() {
        let e = parse("vulnerabilities:\n  - id: CVE-1\n    expired_at: 2027-01-01\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.msg.contains("`CVE-1` has no `statement`"), "{e}");
        assert_eq!(e.to_string(), format!(".trivyignore.yaml:2: {}", e.msg));
        let e = parse("secrets:\n  - id: x\n    statement: \"\"\n").unwrap_err();
        assert!(e.msg.contains("no `statement`"), "{e}");
        let e = parse("secrets:\n  - statement: why\n").unwrap_err();
        assert!(e.msg.contains("without `id`"), "{e}");
    }

    #[test]
    fn what_trivy_would_accept_silently_is_refused() {
        for (text, line, want) in [
            ("vulns:\n  - id: x\n", 1, "unknown section `vulns`"),
            ("vulnerabilities:\n  - id: x\n    statement: a\n    owner: me\n", 4, "unknown key `owner`"),
            ("vulnerabilities:\n  - id: x\n    statement: a\n    expired-at: 2027-01-01\n", 4, "unknown key `expired-at`"),
            ("secrets:\n  - id: x\n    statement: a\n    purls: [p]\n", 4, "only applies to vulnerabilities"),
            ("vulnerabilities:\n  - id: x\n    statement: a\n    expired_at: ~\n", 2, "no `expired_at`"),
            ("vulnerabilities:\n  - id: x\n    statement: a\n    expired_at: 2027-01-01\n    statement: b\n", 5, "`statement` appears twice"),
            (
                "vulnerabilities:\n  - id: x\n    statement: a\n    expired_at: 2027-01-01\n  - id: x\n    statement: a\n    expired_at: 2028-01-01\n",
                5,
                "same id and statement as the one at line 2",
            ),
            ("vulnerabilities: []\nvulnerabilities: []\n", 2, "appears twice"),
            ("vulnerabilities: []\n---\nsecrets: []\n", 2, "second YAML document"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.msg.contains(want), "{text:?}: {e}");
            assert_eq!(e.line, line, "{text:?}: {e}");
        }
        // The same id with another statement is a distinct entry (e.g. other paths).
        let two = "secrets:\n  - id: x\n    statement: a\n    expired_at: 2027-01-01\n  - id: x\n    statement: b\n    expired_at: 2027-01-01\n";
        assert_eq!(parse(two).unwrap().len(), 2);
    }

    #[test]
    fn what_is_not_the_schema_says_so_with_its_line() {
        for (text, line, want) in [
            (
                "vulnerabilities:\n  - id: x\n    statement: a\n    expired_at: 2027-02-30\n",
                4,
                "not a date",
            ),
            (
                "vulnerabilities:\n  - id: x\n    statement: a\n    expired_at: \"2027-01-31\"\n",
                4,
                "is quoted",
            ),
            (
                "vulnerabilities:\n  - id: x\n    statement: a\n    expired_at: 2027-01-31T10:00:00Z\n",
                4,
                "not a date",
            ),
            ("vulnerabilities:\n  - id: x\n    statement: [a]\n", 3, "must be text"),
            (
                "vulnerabilities:\n  - id: x\n    statement: a\n    paths: \"**\"\n",
                4,
                "must be a list",
            ),
            (
                "vulnerabilities:\n  - id: x\n    statement: a\n    paths: [[a]]\n",
                4,
                "list of texts",
            ),
            ("vulnerabilities:\n  - CVE-1\n", 2, "must be a mapping"),
            ("vulnerabilities: CVE-1\n", 1, "list of entries"),
            ("- id: x\n", 1, "sections like `vulnerabilities:`"),
            ("vulnerabilities:\n  - id: \"x\n", 2, "not valid YAML"),
            ("vulnerabilities:\n\t- id: x\n", 2, "not valid YAML"),
            ("vulnerabilities:\n  - id: x\n      statement: a\n", 3, "not valid YAML"),
            ("vulnerabilities:\n  - id: &a x\n    statement: *a\n", 3, "aliases"),
            ("vulnerabilities:\n  - id: !!str x\n", 2, "tags"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.msg.contains(want), "{text:?}: {e}");
            assert_eq!(e.line, line, "{text:?}: {e}");
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
