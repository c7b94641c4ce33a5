//! How long a swap waits for the connections of a container that an alias leaves.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A drain timeout, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Drain(pub u64);

impl Drain {
    /// Long enough for requests in flight to finish, short enough that an apply does not
    /// hang on a connection that never ends.
    pub const DEFAULT: Drain = Drain(30_000);
    /// The longest drain accepted: an apply holds the stack's lock while it waits.
    pub const MAX: Drain = Drain(3_600_000);

    /// Reads `30s`, `2m`, `1m30s` or `500ms`.
    pub fn parse(text: &str) -> Result<Drain, String> {
        let duration =
            humantime::parse_duration(text).map_err(|error| format!("`{text}` is not a duration: {error}"))?;
        let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        if millis > Drain::MAX.0 {
            return Err(format!("`{text}` is longer than the longest drain, {}", Drain::MAX));
        }
        Ok(Drain(millis))
    }
}

impl Default for Drain {
    fn default() -> Self {
        Drain::DEFAULT
    }
}

impl fmt::Display for Drain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Drain(millis) = *self;
        if millis % 1000 != 0 {
            return write!(f, "{millis}ms");
        }
        let seconds = millis / 1000;
        match (seconds / 60, seconds % 60) {
            (0, seconds) => write!(f, "{seconds}s"),
            (minutes, 0) => write!(f, "{minutes}m"),
            (minutes, seconds) => write!(f, "{minutes}m{seconds}s"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drains_read_and_show_as_written() {
        for text in ["30s", "2m", "1m30s", "500ms", "0s"] {
            assert_eq!(Drain::parse(text).expect("valid").to_string(), text);
        }
    }

    #[test]
    fn a_drain_that_is_not_a_duration_or_too_long_is_refused() {
        assert!(Drain::parse("soon").unwrap_err().contains("not a duration"));
        assert!(Drain::parse("2h").unwrap_err().contains("longer than the longest drain, 60m"));
    }
}
