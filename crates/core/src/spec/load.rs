//! Reading a stack file's text into a [`StackSpec`].

use serde_saphyr::{Location, Options};

use super::StackSpec;
use crate::diagnostic::{Diagnostic, Span};
use crate::model::suggest_name;

/// A stack file's name (as the user gave it, for messages) and its text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub name: String,
    pub text: String,
}

/// Parses a stack file. YAML and type errors stop the reading at the first one, because
/// what follows a broken node cannot be read with any certainty.
pub fn load(file: &SourceFile) -> Result<StackSpec, Diagnostic> {
    // A file of nothing but blanks and comments is a document with no content; the reader
    // would call that an unexpected end of input.
    if file.text.lines().all(|line| line.trim().is_empty() || line.trim_start().starts_with('#')) {
        return Err(Diagnostic::error(Span::default(), "the stack file is empty", "nothing here")
            .with_help("a stack file starts with `name: STACK`, then `networks:` and `containers:`"));
    }
    // YAML 1.2 booleans only: editors that check the file against the schema read `yes`
    // as a string, so stackctl must not read it as true.
    let mut options = Options::default();
    options.strict_booleans = true;
    serde_saphyr::from_str_with_options(&file.text, options).map_err(|error| {
        let span = error.location().map(|location| span_in(&file.text, &location)).unwrap_or_default();
        let raw = error.without_snippet().to_string();
        let written = file.text.get(span.offset..span.offset + span.len).unwrap_or_default();
        explain(strip_position(&raw), span, written)
    })
}

/// The span of an error's location. Errors of the YAML scanner carry only a line and a
/// column, no byte offset, so the offset is found from those; without this, every syntax
/// error would point at the start of the file.
fn span_in(text: &str, location: &Location) -> Span {
    if location.span().byte_offset().is_some() || location.line() == 0 {
        return Span::at(location);
    }
    let line = usize::try_from(location.line()).unwrap_or(usize::MAX);
    let column = usize::try_from(location.column()).unwrap_or(usize::MAX);
    let line_start = text.split_inclusive('\n').take(line.saturating_sub(1)).map(str::len).sum::<usize>();
    let rest = &text[line_start..];
    let offset = line_start + rest.char_indices().nth(column.saturating_sub(1)).map_or(rest.len(), |(index, _)| index);
    let len = text[offset..].chars().next().map_or(0, char::len_utf8);
    Span { offset, len }
}

/// The reader appends " at line L, column C" to its messages; the diagnostic shows the
/// position itself.
fn strip_position(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(at) if message[at..].contains(", column ") => &message[..at],
        _ => message,
    }
}

/// Rewrites the reader's messages into stackctl's voice, with a fix where one is known.
fn explain(message: &str, span: Span, written: &str) -> Diagnostic {
    if message.starts_with("cannot deserialize null into string") {
        return Diagnostic::error(span, "a value is missing", "expected a string here")
            .with_help("write the value after the colon");
    }
    if message.starts_with("unexpected end of input") {
        return Diagnostic::error(span, "the file ends inside an unfinished value", "the file ends here")
            .with_help("close the last list or mapping, or finish the last entry");
    }
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (key, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let expected: Vec<&str> = expected
            .trim_start_matches(", expected one of ")
            .trim_start_matches(", expected ")
            .split(", ")
            .map(|name| name.trim_matches('`'))
            .filter(|name| !name.is_empty() && *name != "there are no fields")
            .collect();
        let diagnostic = Diagnostic::error(span, format!("unknown key `{key}`"), "unknown key");
        let known = expected.iter().map(|name| format!("`{name}`")).collect::<Vec<_>>().join(", ");
        return match suggest_name(key, expected.iter().copied()) {
            Some(near) => diagnostic.with_help(format!("did you mean `{near}`? known keys: {known}")),
            None if expected.is_empty() => diagnostic.with_help("this mapping takes no keys"),
            None => diagnostic.with_help(format!("known keys: {known}")),
        };
    }
    if let Some(key) = message.strip_prefix("duplicate mapping key: ") {
        let key = key.split(", set DuplicateKeyPolicy").next().unwrap_or(key);
        return Diagnostic::error(span, format!("duplicate key `{key}`"), "written a second time here")
            .with_help("each key may appear once in a mapping; merge the two entries");
    }
    if message.starts_with("invalid boolean") {
        return Diagnostic::error(span, format!("invalid boolean `{written}`"), "expected `true` or `false`")
            .with_help("YAML 1.2 booleans are `true` and `false`");
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        let (value, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let expected: Vec<&str> =
            expected.trim_start_matches(", expected one of ").trim_start_matches(", expected ").split(", ").collect();
        let known = expected.iter().map(|name| format!("`{name}`")).collect::<Vec<_>>().join(", ");
        let diagnostic = Diagnostic::error(span, format!("unknown value `{value}`"), "unknown value");
        return match suggest_name(value, expected.iter().copied()) {
            Some(near) => diagnostic.with_help(format!("did you mean `{near}`? known values: {known}")),
            None => diagnostic.with_help(format!("known values: {known}")),
        };
    }
    // The reader names the YAML event it wanted; a person wants the kind of value.
    let kind = match message {
        "expected string scalar" => Some("a string"),
        "expected sequence start" => Some("a list"),
        "expected mapping start" => Some("a mapping"),
        _ => None,
    };
    if let Some(kind) = kind {
        return Diagnostic::error(span, format!("invalid type: expected {kind}"), format!("expected {kind}"));
    }
    if message.starts_with("missing field `") {
        let key = message.trim_start_matches("missing field `").trim_end_matches('`');
        return Diagnostic::error(span, format!("missing required key `{key}`"), "in this mapping");
    }
    Diagnostic::error(span, message.to_owned(), first_clause(message))
}

/// A short label for the span: the message up to its first comma or colon.
fn first_clause(message: &str) -> String {
    message.split([',', ':']).next().unwrap_or(message).trim().to_owned()
}
