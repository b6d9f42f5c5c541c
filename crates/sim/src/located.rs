//! Errors that point into a TOML file: file, line, column, key, what was expected and what was
//! found — rendered by miette with the offending line underlined.

use miette::{Diagnostic, NamedSource, SourceSpan};
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::de::{DeTable, DeValue};

/// A problem at one place of a TOML file.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{file}:{line}:{column}: `{key}`: expected {expected}, found {found}")]
#[diagnostic(code(orchestra_sim::scenario))]
pub struct LocatedError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// Dotted key path (`mechanism.audit_rate`, `miners[2].count`), or `(document)`.
    pub key: String,
    /// What the key must hold.
    pub expected: String,
    /// What it holds.
    pub found: String,
    #[source_code]
    src: NamedSource<String>,
    #[label("{expected}")]
    span: SourceSpan,
}

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A table key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// Render a key path as `a.b[2].c`.
pub fn path_string(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    if out.is_empty() {
        "(document)".to_string()
    } else {
        out
    }
}

/// Parse `a.b[2].c` back into segments (keys may not contain `.` or `[`).
pub fn parse_path(path: &str) -> Vec<Seg> {
    let mut segs = Vec::new();
    for part in path.split('.') {
        let mut rest = part;
        if let Some(open) = rest.find('[') {
            let key = &rest[..open];
            if !key.is_empty() {
                segs.push(Seg::Key(key.to_string()));
            }
            rest = &rest[open..];
            while let Some(stripped) = rest.strip_prefix('[') {
                let Some(close) = stripped.find(']') else {
                    break;
                };
                if let Ok(i) = stripped[..close].parse() {
                    segs.push(Seg::Index(i));
                }
                rest = &stripped[close + 1..];
            }
        } else if !rest.is_empty() {
            segs.push(Seg::Key(rest.to_string()));
        }
    }
    segs
}

/// A TOML source kept for locating errors after it has been deserialised.
#[derive(Debug, Clone)]
pub struct SourceDoc {
    /// Where it came from.
    pub path: PathBuf,
    /// Its text.
    pub text: String,
}

impl SourceDoc {
    /// Keep `text` read from `path`.
    pub fn new(path: &Path, text: String) -> Self {
        SourceDoc {
            path: path.to_path_buf(),
            text,
        }
    }

    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
        (line, column)
    }

    /// An error at `span`.
    pub fn error_at(
        &self,
        span: Range<usize>,
        key: &str,
        expected: &str,
        found: &str,
    ) -> LocatedError {
        let (line, column) = self.line_col(span.start);
        LocatedError {
            file: self.path.clone(),
            line,
            column,
            key: key.to_string(),
            expected: expected.to_string(),
            found: found.to_string(),
            src: NamedSource::new(self.path.display().to_string(), self.text.clone()),
            span: SourceSpan::from(span.start..span.end.max(span.start)),
        }
    }

    /// An error at the key `path` (falling back to its nearest existing parent, then the top of
    /// the file, when the key is absent, e.g. a required key that is missing).
    pub fn error_at_key(&self, path: &str, expected: &str, found: &str) -> LocatedError {
        let span = self.span_of(&parse_path(path)).unwrap_or(0..0);
        self.error_at(span, path, expected, found)
    }

    /// Turn a TOML deserialisation error into a located one, naming the key it happened at.
    pub fn from_toml_error(&self, err: &toml::de::Error) -> LocatedError {
        let span = err.span().unwrap_or(0..0);
        let key = self.path_at(span.start);
        let (expected, found) = split_serde_message(err.message());
        self.error_at(span, &key, &expected, &found)
    }

    /// The span of the value at `path`, or of its nearest existing ancestor.
    pub fn span_of(&self, path: &[Seg]) -> Option<Range<usize>> {
        let root = DeTable::parse(&self.text).ok()?;
        let mut best = None;
        let mut table: Option<&DeTable<'_>> = Some(root.get_ref());
        let mut value: Option<&DeValue<'_>> = None;
        for seg in path {
            let next = match (seg, table, value) {
                (Seg::Key(k), Some(t), _) => t.get(k.as_str()),
                (Seg::Index(i), _, Some(DeValue::Array(a))) => a.get(*i),
                _ => None,
            };
            let Some(next) = next else { break };
            best = Some(next.span());
            value = Some(next.get_ref());
            table = match next.get_ref() {
                DeValue::Table(t) => Some(t),
                _ => None,
            };
        }
        best
    }

    /// The dotted key path of the innermost value containing `offset`.
    pub fn path_at(&self, offset: usize) -> String {
        let Ok(root) = DeTable::parse(&self.text) else {
            return "(document)".to_string();
        };
        let mut path = Vec::new();
        if !walk_table(root.get_ref(), offset, &mut path) {
            path.clear();
        }
        path_string(&path)
    }
}

/// The path to the key or value containing `offset`, searching every branch: table headers do
/// not span their bodies, so a parent's span cannot be used to prune.
fn walk_table(table: &DeTable<'_>, offset: usize, path: &mut Vec<Seg>) -> bool {
    for (key, value) in table.iter() {
        path.push(Seg::Key(key.get_ref().to_string()));
        if key.span().contains(&offset) || walk_value(value, offset, path) {
            return true;
        }
        path.pop();
    }
    false
}

fn walk_value(value: &toml::Spanned<DeValue<'_>>, offset: usize, path: &mut Vec<Seg>) -> bool {
    match value.get_ref() {
        DeValue::Table(t) => walk_table(t, offset, path) || value.span().contains(&offset),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(Seg::Index(i));
                if walk_value(item, offset, path) {
                    return true;
                }
                path.pop();
            }
            value.span().contains(&offset)
        }
        _ => value.span().contains(&offset),
    }
}

/// Split a serde message into (expected, found) for the common shapes; otherwise the whole
/// message is what was found.
pub fn split_serde_message(message: &str) -> (String, String) {
    let message = message.trim();
    for prefix in ["invalid type: ", "invalid value: ", "invalid length "] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some((found, expected)) = rest.split_once(", expected ")
        {
            return (expected.to_string(), found.to_string());
        }
    }
    if let Some(rest) = message.strip_prefix("unknown field ") {
        if let Some((field, expected)) = rest.split_once(", expected ") {
            return (expected.to_string(), format!("unknown key {field}"));
        }
        if let Some((field, _)) = rest.split_once(", there are no fields") {
            return ("no keys here".to_string(), format!("unknown key {field}"));
        }
    }
    if let Some(rest) = message.strip_prefix("unknown variant ")
        && let Some((variant, expected)) = rest.split_once(", expected ")
    {
        return (expected.to_string(), format!("unknown value {variant}"));
    }
    if let Some(field) = message.strip_prefix("missing field ") {
        return (format!("key {field}"), "nothing".to_string());
    }
    ("valid TOML for this key".to_string(), message.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "[scenario]\nname = \"x\"\n\n[[miners]]\nstrategy = \"honest\"\ncount = 3\n\n[[miners]]\nstrategy = \"fabricator\"\ncount = \"many\"\n";

    #[test]
    fn paths_round_trip() {
        let p = parse_path("miners[1].params.rate");
        assert_eq!(path_string(&p), "miners[1].params.rate");
    }

    #[test]
    fn finds_spans_and_paths() {
        let doc = SourceDoc::new(Path::new("s.toml"), DOC.to_string());
        let span = doc.span_of(&parse_path("miners[1].count")).unwrap();
        assert_eq!(&DOC[span.clone()], "\"many\"");
        assert_eq!(doc.path_at(span.start), "miners[1].count");
        assert_eq!(doc.line_col(span.start), (10, 9));
        let err = doc.error_at_key("miners[1].count", "a positive integer", "\"many\"");
        assert_eq!(
            err.to_string(),
            "s.toml:10:9: `miners[1].count`: expected a positive integer, found \"many\""
        );
    }

    #[test]
    fn serde_messages_split() {
        assert_eq!(
            split_serde_message("invalid type: string \"many\", expected u32"),
            ("u32".into(), "string \"many\"".into())
        );
        assert_eq!(
            split_serde_message("unknown field `cuont`, expected `strategy` or `count`"),
            ("`strategy` or `count`".into(), "unknown key `cuont`".into())
        );
        assert_eq!(
            split_serde_message("missing field `name`"),
            ("key `name`".into(), "nothing".into())
        );
    }
}
