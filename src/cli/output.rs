//! How output looks: colour only on a terminal and never with `NO_COLOR`, and diagnostics
//! through miette's renderer.

use std::ffi::OsStr;
use std::io::IsTerminal;

use miette::{GraphicalReportHandler, GraphicalTheme, NamedSource};

use crate::diagnostic::{Diagnostic, LONGEST_DRAWN_LINE, Located, drawable, line_column};
use crate::spec::SourceFile;

#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// Colour on standard output.
    pub color_out: bool,
    /// Colour on standard error.
    pub color_err: bool,
}

impl Style {
    /// The style for this process: its `NO_COLOR` and whether its outputs are terminals.
    pub fn detect() -> Self {
        Style::decide(
            std::env::var_os("NO_COLOR").as_deref(),
            std::io::stdout().is_terminal(),
            std::io::stderr().is_terminal(),
        )
    }

    /// Colour goes to a terminal only, and never when `NO_COLOR` is set to anything but the
    /// empty string (<https://no-color.org>).
    fn decide(no_color: Option<&OsStr>, out_is_terminal: bool, err_is_terminal: bool) -> Self {
        let allowed = no_color.is_none_or(OsStr::is_empty);
        Style { color_out: allowed && out_is_terminal, color_err: allowed && err_is_terminal }
    }
}

/// Renders diagnostics of one file for a person, as miette draws them.
pub fn render_diagnostics(file: &SourceFile, diagnostics: &[Diagnostic], color: bool) -> String {
    let theme = if color { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
    let mut out = String::new();
    for diagnostic in diagnostics {
        let drawn = drawable(&file.text, diagnostic);
        let source = drawn.then(|| NamedSource::new(&file.name, file.text.clone()));
        let _ = handler.render_report(&mut out, &Located { diagnostic, source });
        if !drawn {
            // Told by line and column, as an editor finds them.
            let places = std::iter::once((diagnostic.span, &diagnostic.label))
                .chain(diagnostic.related.iter().map(|(span, label)| (*span, label)));
            for (span, label) in places {
                let (line, column) = line_column(&file.text, span.offset);
                out.push_str(&format!(
                    "  at {}:{line}:{column}: {label} (not drawn: the line is longer than {LONGEST_DRAWN_LINE} \
                     characters)\n",
                    file.name
                ));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_and_never_with_no_color() {
        let cases = [
            (None, true, false, true, false),
            (None, false, true, false, true),
            (Some("1"), true, true, false, false),
            (Some(""), true, true, true, true),
        ];
        for (no_color, out, err, color_out, color_err) in cases {
            let style = Style::decide(no_color.map(OsStr::new), out, err);
            assert_eq!((style.color_out, style.color_err), (color_out, color_err), "{no_color:?} {out} {err}");
        }
    }
}
