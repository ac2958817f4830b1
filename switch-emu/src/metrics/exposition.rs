//! Prometheus text exposition format (version 0.0.4): rendering metric
//! families, and parsing it back (for tests and tools that compare a scrape
//! with the switch's own counters).

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Whether a metric only grows (counter) or may go both ways (gauge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Monotonic since the switch started.
    Counter,
    /// A current level.
    Gauge,
}

/// One metric name with its help text and labelled samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// Metric name, e.g. `ina_packets_received_total`.
    pub name: &'static str,
    /// One line for humans.
    pub help: &'static str,
    /// Counter or gauge.
    pub kind: Kind,
    /// Label sets and values.
    pub samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

impl Family {
    /// A family with no samples yet.
    pub fn new(name: &'static str, help: &'static str, kind: Kind) -> Family {
        Family {
            name,
            help,
            kind,
            samples: Vec::new(),
        }
    }

    /// Adds a sample; returns `self` for chaining.
    pub fn sample(&mut self, labels: Vec<(&'static str, String)>, value: f64) -> &mut Family {
        self.samples.push((labels, value));
        self
    }
}

/// Renders families in the text exposition format.
pub fn render(families: &[Family]) -> String {
    let mut out = String::new();
    for family in families {
        let kind = match family.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let _ = writeln!(out, "# HELP {} {}", family.name, family.help);
        let _ = writeln!(out, "# TYPE {} {}", family.name, kind);
        for (labels, value) in &family.samples {
            out.push_str(family.name);
            if !labels.is_empty() {
                out.push('{');
                for (i, (key, val)) in labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{key}=\"{}\"", escape(val));
                }
                out.push('}');
            }
            let _ = writeln!(out, " {value}");
        }
    }
    out
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A parsed sample: metric name plus its labels, sorted.
pub type SampleKey = (String, BTreeMap<String, String>);

/// Parses exposition text into samples; comment lines are skipped.
/// Returns an error naming the first line that is not a valid sample.
pub fn parse(text: &str) -> Result<BTreeMap<SampleKey, f64>, String> {
    let mut samples = BTreeMap::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || format!("line {}: {line:?}", number + 1);
        let (series, value) = line.rsplit_once(' ').ok_or_else(bad)?;
        let value: f64 = value.parse().map_err(|_| bad())?;
        let (name, labels) = match series.split_once('{') {
            None => (series.to_string(), BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').ok_or_else(bad)?;
                (name.to_string(), parse_labels(body).ok_or_else(bad)?)
            }
        };
        samples.insert((name, labels), value);
    }
    Ok(samples)
}

fn parse_labels(body: &str) -> Option<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    let mut rest = body;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break i,
                other => value.push(other),
            }
        };
        labels.insert(key.trim_start_matches(',').to_string(), value);
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    Some(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_then_parse() {
        let mut drops = Family::new("ina_drops_total", "Dropped packets.", Kind::Counter);
        drops
            .sample(vec![("reason", "unknown_job".into())], 3.0)
            .sample(
                vec![("reason", "bad_key".into()), ("job", "a \"q\"\\".into())],
                7.0,
            );
        let mut jobs = Family::new("ina_active_jobs", "Jobs installed.", Kind::Gauge);
        jobs.sample(vec![], 2.0);
        let text = render(&[drops, jobs]);
        assert!(text.contains("# TYPE ina_drops_total counter\n"));
        assert!(text.contains("ina_drops_total{reason=\"unknown_job\"} 3\n"));
        assert!(text.contains("ina_active_jobs 2\n"));
        let parsed = parse(&text).unwrap();
        let key = (
            "ina_drops_total".to_string(),
            BTreeMap::from([
                ("reason".to_string(), "bad_key".to_string()),
                ("job".to_string(), "a \"q\"\\".to_string()),
            ]),
        );
        assert_eq!(parsed[&key], 7.0);
        assert_eq!(parsed.len(), 3);
    }

    #[test]
    fn parse_rejects_garbage() {
        assert!(parse("ina_x{reason=\"a\" 3").is_err());
        assert!(parse("ina_x notanumber").is_err());
    }
}
