//! The bench table (nccl-tests style) and size parsing.

use std::time::Duration;

use super::{median, Dtype};

/// The outcome of one size.
#[derive(Debug, Clone, PartialEq)]
pub struct SizeResult {
    /// Tensor size in bytes.
    pub bytes: usize,
    /// Elements (bytes / 4).
    pub elements: usize,
    /// Element type.
    pub dtype: Dtype,
    /// Workers.
    pub world: u16,
    /// Timed iterations.
    pub iters: usize,
    /// Median time of one allreduce.
    pub time: Duration,
    /// Algorithm bandwidth, bytes / time, in bytes per second.
    pub algbw: f64,
    /// Bus bandwidth, `algbw * 2(n-1)/n` (what a ring allreduce would move
    /// per link to match), in bytes per second.
    pub busbw: f64,
    /// Aggregated tensor elements per second (SwitchML's metric): elements / time.
    pub ate_per_s: f64,
    /// Packets this worker sent per second over the timed iterations.
    pub packets_per_s: f64,
    /// Retransmissions by this worker over the timed iterations.
    pub retransmissions: u64,
    /// Why a result was wrong (`None`: every iteration checked out).
    pub failure: Option<String>,
}

impl SizeResult {
    /// Derives the rates from the per-iteration times and packet counts.
    pub fn new(
        bytes: usize,
        dtype: Dtype,
        world: u16,
        times: &[Duration],
        packets: u64,
        retransmissions: u64,
        failure: Option<String>,
    ) -> Self {
        let time = median(times);
        let secs = time.as_secs_f64();
        let per_s = |x: f64| if secs > 0.0 { x / secs } else { 0.0 };
        let algbw = per_s(bytes as f64);
        let n = f64::from(world.max(1));
        let total: f64 = times.iter().map(Duration::as_secs_f64).sum();
        SizeResult {
            bytes,
            elements: bytes / 4,
            dtype,
            world,
            iters: times.len(),
            time,
            algbw,
            busbw: algbw * 2.0 * (n - 1.0) / n,
            ate_per_s: per_s((bytes / 4) as f64),
            packets_per_s: if total > 0.0 {
                packets as f64 / total
            } else {
                0.0
            },
            retransmissions,
            failure,
        }
    }

    /// Whether every iteration's result was right.
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }
}

/// The column header (two lines, starting with `#`).
pub fn header() -> String {
    format!(
        "#{:>11} {:>11} {:>8} {:>11} {:>11} {:>11} {:>10} {:>10} {:>8} {:>6}\n#{:>11} {:>11} {:>8} {:>11} {:>11} {:>11} {:>10} {:>10} {:>8} {:>6}",
        "size", "count", "type", "time", "algbw", "busbw", "ATE/s", "pkts/s", "retrans", "check",
        "(B)", "(elements)", "", "(us)", "(GB/s)", "(GB/s)", "(M)", "(M)", "", ""
    )
}

/// One table line.
pub fn line(r: &SizeResult) -> String {
    format!(
        " {:>11} {:>11} {:>8} {:>11.1} {:>11.3} {:>11.3} {:>10.2} {:>10.3} {:>8} {:>6}",
        r.bytes,
        r.elements,
        r.dtype.to_string(),
        r.time.as_secs_f64() * 1e6,
        r.algbw / 1e9,
        r.busbw / 1e9,
        r.ate_per_s / 1e6,
        r.packets_per_s / 1e6,
        r.retransmissions,
        if r.ok() { "OK" } else { "FAIL" },
    )
}

/// Parses a size: `4096`, `4KiB`, `16MiB`, `1GiB` (binary), `4KB`/`1MB`
/// (decimal), or `B`. It must be a positive multiple of 4 bytes.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: usize = number
        .parse()
        .map_err(|_| format!("'{text}' is not a size (e.g. 4096, 64KiB, 16MiB)"))?;
    let scale: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        other => {
            return Err(format!(
                "unknown unit '{other}' in '{text}' (B, KiB, MiB, GiB, KB, MB, GB)"
            ))
        }
    };
    let bytes = number
        .checked_mul(scale)
        .ok_or_else(|| format!("'{text}' is too large"))?;
    if bytes == 0 || bytes % 4 != 0 {
        return Err(format!("'{text}' must be a positive multiple of 4 bytes"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert_eq!(parse_size("4KB"), Ok(4000));
        assert!(parse_size("3").is_err());
        assert!(parse_size("0").is_err());
        assert!(parse_size("1XB").is_err());
        assert!(parse_size("MiB").is_err());
    }

    #[test]
    fn rates_and_line() {
        let times = [
            Duration::from_millis(30),
            Duration::from_millis(10),
            Duration::from_millis(20),
        ];
        let r = SizeResult::new(4 << 20, Dtype::F32, 4, &times, 6000, 3, None);
        assert_eq!(r.time, Duration::from_millis(20));
        assert!((r.algbw - (4 << 20) as f64 / 0.02).abs() < 1e-6);
        assert!((r.busbw - r.algbw * 1.5).abs() < 1e-6);
        assert!((r.ate_per_s - (1 << 20) as f64 / 0.02).abs() < 1e-6);
        assert!((r.packets_per_s - 6000.0 / 0.06).abs() < 1e-6);
        let l = line(&r);
        assert!(l.contains("float32") && l.trim_end().ends_with("OK"), "{l}");
        let bad = SizeResult {
            failure: Some("x".into()),
            ..r
        };
        assert!(line(&bad).trim_end().ends_with("FAIL"));
        assert_eq!(header().lines().count(), 2);
    }
}
