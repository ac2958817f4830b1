//! One module per subcommand.

pub mod controller;
pub mod demo;
pub mod p4_config;
pub mod serve;
pub mod status;

use std::time::Duration;

/// Parses a duration: `3`, `2.5` (seconds), `500ms`, `3s`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 1e-3)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (e.g. 3, 2.5s, 500ms)"))?;
    Duration::try_from_secs_f64(value * scale).map_err(|e| format!("'{text}': {e}"))
}
