//! How output looks: colour only on a terminal and never with `NO_COLOR`, and diagnostics
//! through miette's renderer.

use std::io::IsTerminal;

use miette::{GraphicalReportHandler, GraphicalTheme, NamedSource};

use crate::diagnostic::{Diagnostic, Located};
use crate::spec::SourceFile;

#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// Colour on standard output.
    pub color_out: bool,
    /// Colour on standard error.
    pub color_err: bool,
}

impl Style {
    pub fn detect() -> Self {
        let allowed = std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty());
        Style {
            color_out: allowed && std::io::stdout().is_terminal(),
            color_err: allowed && std::io::stderr().is_terminal(),
        }
    }
}

/// Renders diagnostics of one file for a person, as miette draws them.
pub fn render_diagnostics(file: &SourceFile, diagnostics: &[Diagnostic], color: bool) -> String {
    let theme = if color { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
    let mut out = String::new();
    for diagnostic in diagnostics {
        let located = Located { diagnostic, source: NamedSource::new(&file.name, file.text.clone()) };
        let _ = handler.render_report(&mut out, &located);
        out.push('\n');
    }
    out
}
