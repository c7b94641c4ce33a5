//! The table the bench prints: one row per measure, the median of its repetitions on each
//! side, and the ratio between the two sides.

use std::fmt::Write as _;

/// One repetition's value, or why there is none.
pub type Sample = Result<f64, String>;

/// Which way a row's ratio is taken.
#[derive(Clone, Copy)]
pub enum Ratio {
    /// baseline / stackctl: a time, where more than 1 means stackctl is faster.
    BaselineOverStackctl,
    /// published / direct: a rate, where 1 means publishing costs nothing.
    PublishedOverDirect,
    /// No ratio: the row is there for context.
    None,
}

pub struct Row {
    pub measure: String,
    pub n: String,
    /// The stackctl side (or the published port), as a cell.
    pub ours: Result<f64, String>,
    /// The baseline side (or the container reached directly).
    pub theirs: Result<f64, String>,
    pub ratio: Ratio,
    pub note: String,
}

/// The median of the repetitions; a failed repetition fails the cell (its error was
/// printed when it happened).
pub fn median(samples: &[Sample]) -> Result<f64, String> {
    let mut values = Vec::with_capacity(samples.len());
    for sample in samples {
        match sample {
            Ok(value) => values.push(*value),
            Err(_) => return Err("failed".to_owned()),
        }
    }
    if values.is_empty() {
        return Err("—".to_owned());
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    Ok(if values.len() % 2 == 1 { values[middle] } else { (values[middle - 1] + values[middle]) / 2.0 })
}

/// Prints a failure on stderr once, where it happens, and keeps it as the sample.
pub fn reported(sample: Sample, what: &str) -> Sample {
    if let Err(error) = &sample {
        eprintln!("\nFAILED {what}:\n  {}", error.replace('\n', "\n  "));
    }
    sample
}

fn number(value: f64) -> String {
    if value >= 100.0 { format!("{value:.0}") } else { format!("{value:.1}") }
}

fn cell(value: &Result<f64, String>) -> String {
    match value {
        Ok(value) => number(*value),
        Err(text) => text.clone(),
    }
}

fn ratio(row: &Row) -> String {
    let (Ok(ours), Ok(theirs)) = (&row.ours, &row.theirs) else { return "—".to_owned() };
    let value = match row.ratio {
        Ratio::BaselineOverStackctl => theirs / ours,
        Ratio::PublishedOverDirect => ours / theirs,
        Ratio::None => return "—".to_owned(),
    };
    if value.is_finite() { format!("{value:.2}x") } else { "—".to_owned() }
}

pub fn table(rows: &[Row]) -> String {
    let mut text = String::from(
        "| measure | N | stackctl / published | baseline / direct | ratio | note |\n|---|--:|--:|--:|--:|---|\n",
    );
    for row in rows {
        let _ = writeln!(
            text,
            "| {} | {} | {} | {} | {} | {} |",
            row.measure,
            row.n,
            cell(&row.ours),
            cell(&row.theirs),
            ratio(row),
            row.note
        );
    }
    text
}
