//! Findings about a stack file, with the place in the file they concern, and their
//! rendering through miette.

use std::fmt;

use miette::{LabeledSpan, NamedSource, SourceSpan};
use serde::Serialize;
use serde_saphyr::{Location, Spanned};

use crate::spec::SourceFile;

/// How bad a finding is: errors stop everything, warnings are printed and the command goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// A byte range of the stack file's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize)]
pub struct Span {
    pub offset: usize,
    pub len: usize,
}

impl Span {
    /// The span of a value read from YAML; the position where it is used, not where an
    /// anchor defined it, because that is the line the reader is looking at.
    pub fn of<T>(spanned: &Spanned<T>) -> Span {
        Span::at(&spanned.referenced)
    }

    /// The span of a YAML location, or an empty span at the file's start when the reader
    /// could not tell one (it always can for text read from a string).
    pub fn at(location: &Location) -> Span {
        let span = location.span();
        Span { offset: span.byte_offset().unwrap_or(0) as usize, len: span.byte_len().unwrap_or(0) as usize }
    }
}

/// One finding about a stack file: what is wrong, where, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// A one-line reason, lowercase, naming the thing concerned.
    pub message: String,
    pub span: Span,
    /// The text under the span, such as "unknown network" or "first published here".
    pub label: String,
    /// A fix, where there is one: "did you mean `db_nw`?".
    pub help: Option<String>,
    /// Other places that explain this one, such as the first of two equal addresses.
    pub related: Vec<(Span, String)>,
}

impl Diagnostic {
    pub fn error(span: Span, message: impl Into<String>, label: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            span,
            label: label.into(),
            help: None,
            related: Vec::new(),
        }
    }

    pub fn warning(span: Span, message: impl Into<String>, label: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(span, message, label) }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn with_related(mut self, span: Span, label: impl Into<String>) -> Self {
        self.related.push((span, label.into()));
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// The 1-based line and column (in characters) of a byte offset, as editors count them.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// The longest line, in characters, that a drawing of a diagnostic underlines. miette pads
/// each underline to its column with a formatting width, which Rust caps at 65535 (a wider
/// one panics), and a line of thousands of characters is no help to read anyway.
pub const LONGEST_DRAWN_LINE: usize = 1_000;

/// Whether every place a diagnostic points at lies on lines short enough to draw
/// underlined ([`LONGEST_DRAWN_LINE`]); otherwise it is told by line and column alone.
pub fn drawable(text: &str, diagnostic: &Diagnostic) -> bool {
    let places = std::iter::once(diagnostic.span).chain(diagnostic.related.iter().map(|(span, _)| *span));
    places.into_iter().all(|span| {
        let Some(before) = text.get(..span.offset) else { return false };
        let start = before.rfind('\n').map_or(0, |newline| newline + 1);
        let end = span.offset.saturating_add(span.len).min(text.len());
        let Some(after) = text.get(end..) else { return false };
        let end = after.find('\n').map_or(text.len(), |newline| end + newline);
        text.get(start..end)
            .is_some_and(|lines| lines.split('\n').all(|line| line.chars().count() <= LONGEST_DRAWN_LINE))
    })
}

/// The findings about one file for machines and editors: version 1 of
/// `stackctl validate --format json`, documented in the README.
pub fn json_report(file: &SourceFile, diagnostics: &[Diagnostic], valid: bool) -> String {
    #[derive(Serialize)]
    struct Place<'a> {
        line: usize,
        column: usize,
        span: Span,
        label: &'a str,
    }
    #[derive(Serialize)]
    struct Finding<'a> {
        severity: Severity,
        message: &'a str,
        line: usize,
        column: usize,
        span: Span,
        label: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        help: Option<&'a str>,
        related: Vec<Place<'a>>,
    }
    #[derive(Serialize)]
    struct Report<'a> {
        format_version: u32,
        file: &'a str,
        valid: bool,
        diagnostics: Vec<Finding<'a>>,
    }
    let diagnostics = diagnostics
        .iter()
        .map(|diagnostic| {
            let (line, column) = line_column(&file.text, diagnostic.span.offset);
            Finding {
                severity: diagnostic.severity,
                message: &diagnostic.message,
                line,
                column,
                span: diagnostic.span,
                label: &diagnostic.label,
                help: diagnostic.help.as_deref(),
                related: diagnostic
                    .related
                    .iter()
                    .map(|(span, label)| {
                        let (line, column) = line_column(&file.text, span.offset);
                        Place { line, column, span: *span, label }
                    })
                    .collect(),
            }
        })
        .collect();
    let report = Report { format_version: 1, file: &file.name, valid, diagnostics };
    serde_json::to_string_pretty(&report).expect("a report serializes")
}

/// A diagnostic joined to the file it concerns, ready for miette's renderer.
#[derive(Debug)]
pub struct Located<'a> {
    pub diagnostic: &'a Diagnostic,
    /// The file, when its lines are drawn and the places underlined (see [`drawable`]).
    pub source: Option<NamedSource<String>>,
}

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diagnostic.message)
    }
}

impl std::error::Error for Located<'_> {}

impl miette::Diagnostic for Located<'_> {
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diagnostic.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.diagnostic.help.as_ref().map(|help| Box::new(help) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|source| source as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.source.as_ref()?;
        let primary = std::iter::once(LabeledSpan::new_primary_with_span(
            Some(self.diagnostic.label.clone()),
            source_span(self.diagnostic.span),
        ));
        let related = self
            .diagnostic
            .related
            .iter()
            .map(|(span, label)| LabeledSpan::new_with_span(Some(label.clone()), source_span(*span)));
        Some(Box::new(primary.chain(related)))
    }
}

fn source_span(span: Span) -> SourceSpan {
    SourceSpan::new(span.offset.into(), span.len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_places_on_short_lines_are_drawn() {
        let long = "x".repeat(LONGEST_DRAWN_LINE + 1);
        let text = format!("a: 1\nb: {long}\nc: 2\n");
        let at = |offset: usize, len: usize| Diagnostic::error(Span { offset, len }, "m", "l");
        let b = text.find("b:").expect("b");
        let c = text.find("c:").expect("c");
        let cases = [
            (at(0, 1), true),
            (at(b + 3, 1), false),
            (at(c, 1), true),
            (at(0, c), false),
            (at(c, 1).with_related(Span { offset: b + 10, len: 0 }, "r"), false),
            (at(text.len(), 0), true),
            (at(text.len() + 5, 0), false),
        ];
        for (diagnostic, drawn) in cases {
            assert_eq!(drawable(&text, &diagnostic), drawn, "{:?}", diagnostic.span);
        }
    }
}
