//! `switch-emu topo bench`: the emulated-cluster benchmark of issue 6.
//!
//! For every worker count it builds a topology with a unique name (rate
//! limited, then again without limits), runs the L2 switch and one
//! `host-agent bench` per worker namespace, tears the topology down (also on
//! error, through `TopoGuard`) and prints one line per run: the slowest
//! rank's median time, algbw, busbw, ATE/s, wire efficiency and, when
//! shaped, the fraction of the INA bound next to the ring bound. With
//! several runs per configuration it takes them in rounds and ends with
//! each configuration's median run and the range of its runs.

use std::path::PathBuf;
use std::time::Duration;

use host_agent::bench::Dtype;
use packet_format::{frame_len, ELEMENT_LEN};

use super::run::{multicast_args, run_workers, SwitchProcess};
use super::{down, up, Fabric, TopoError, TopoSpec};

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchSpec {
    /// Worker counts, one topology each.
    pub workers: Vec<usize>,
    /// Per-link rate of the shaped runs (tc syntax), `None`: unshaped only.
    pub rate: Option<String>,
    /// Whether to also run without rate limits.
    pub unshaped: bool,
    /// Tensor bytes.
    pub size: usize,
    /// Element type: float32 (the benchmark) or int32, which needs
    /// no quantization and so shows what the transport alone reaches.
    pub dtype: Dtype,
    /// Elements per packet (the switch allows exactly this many).
    pub elements: u16,
    /// Slots in flight.
    pub window: u16,
    /// Link MTU (`None`: the veth default, 1500).
    pub mtu: Option<u32>,
    /// Timed iterations per run.
    pub iters: u32,
    /// Runs of every configuration (at least 1).
    pub runs: u32,
    /// Initial retransmission timeout passed to the agents (`None`: their default).
    pub retransmit_timeout: Option<String>,
    /// The `host-agent` binary.
    pub host_agent: PathBuf,
    /// The `switch-emu` binary (run in the switch namespace).
    pub switch_emu: PathBuf,
    /// Prefix of the topology names (made unique per run).
    pub name_prefix: String,
    /// Extra arguments for `switch-emu serve`.
    pub serve_args: Vec<String>,
    /// What joins the links (the L2 switch, or a kernel bridge and the UDP driver).
    pub fabric: Fabric,
    /// One unicast result per member instead of one multicast per result
    /// ([`super::run::multicast_args`]).
    pub unicast_results: bool,
    /// The agents' allreduce writes to a second buffer (`host-agent bench --out-of-place`).
    pub out_of_place: bool,
    /// Time one run may take before its workers are killed.
    pub timeout: Duration,
}

/// The outcome of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchResult {
    /// Workers.
    pub workers: usize,
    /// Per-link rate in bytes/s, `None` when unshaped.
    pub rate_bytes: Option<f64>,
    /// Slowest rank's median allreduce time.
    pub time: Duration,
    /// Retransmissions summed over ranks.
    pub retransmissions: u64,
}

/// Deletes the topology when dropped (also on error paths and panics).
struct TopoGuard(String);

impl Drop for TopoGuard {
    fn drop(&mut self) {
        if let Err(e) = down(&self.0) {
            eprintln!("topo bench: removing {}: {e}", self.0);
        }
    }
}

/// Errors of a bench run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Building or running the topology failed.
    #[error(transparent)]
    Topo(#[from] TopoError),
    /// A rank failed, printed no result, or reported a wrong result.
    #[error("rank {rank}: {why}")]
    Rank {
        /// The rank.
        rank: usize,
        /// What went wrong (with its output).
        why: String,
    },
    /// Bad parameters.
    #[error("{0}")]
    BadSpec(String),
}

/// Parses a tc rate (`1gbit`, `500mbit`, `100kbit`, `8bit`, also `Xbps` bytes)
/// into bytes per second (tc units: k = 1000).
pub fn rate_bytes_per_s(rate: &str) -> Option<f64> {
    let r = rate.trim().to_ascii_lowercase();
    let split = r.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (num, unit) = r.split_at(split);
    let x: f64 = num.parse().ok()?;
    let bits = match unit {
        "bit" => 1.0,
        "kbit" => 1e3,
        "mbit" => 1e6,
        "gbit" => 1e9,
        "bps" => 8.0,
        "kbps" => 8e3,
        "mbps" => 8e6,
        "gbps" => 8e9,
        _ => return None,
    };
    Some(x * bits / 8.0)
}

/// Runs every configuration and prints a line per run; fails on the first
/// failed run (after tearing its topology down).
pub fn run_all(spec: &BenchSpec) -> Result<Vec<BenchResult>, BenchError> {
    if spec.size == 0
        || !spec.size.is_multiple_of(4)
        || spec.elements == 0
        || spec.workers.is_empty()
        || spec.runs == 0
    {
        return Err(BenchError::BadSpec(
            "size must be a positive multiple of 4; elements, workers and runs non-empty".into(),
        ));
    }
    let mut rates: Vec<Option<String>> = Vec::new();
    if let Some(r) = &spec.rate {
        if rate_bytes_per_s(r).is_none() {
            return Err(BenchError::BadSpec(format!("cannot parse rate {r:?}")));
        }
        rates.push(Some(r.clone()));
    }
    if spec.unshaped {
        rates.push(None);
    }
    println!("{}", header(spec));
    let configs: Vec<(Option<&str>, usize)> = rates
        .iter()
        .flat_map(|rate| spec.workers.iter().map(move |&n| (rate.as_deref(), n)))
        .collect();
    let mut results = Vec::new();
    for _ in 0..spec.runs {
        for &(rate, n) in &configs {
            let r = run_one(spec, n, rate)?;
            println!("{}", line(spec, &r));
            results.push(r);
        }
    }
    if spec.runs > 1 {
        println!(
            "# median of {} runs per configuration (the slower middle run when even):",
            spec.runs
        );
        for i in 0..configs.len() {
            let runs: Vec<&BenchResult> = results.iter().skip(i).step_by(configs.len()).collect();
            println!("{}", line(spec, median_run(&runs)));
            println!("{}", spread_line(spec, &runs));
        }
    }
    Ok(results)
}

/// A comment line under a configuration's median: the fastest and the
/// slowest of its runs, so that a reader sees how far one run can be
/// trusted on this machine. `runs` must not be empty.
fn spread_line(spec: &BenchSpec, runs: &[&BenchResult]) -> String {
    let secs = |r: &BenchResult| r.time.as_secs_f64();
    let fastest = runs.iter().map(|r| secs(r)).fold(f64::INFINITY, f64::min);
    let slowest = runs.iter().map(|r| secs(r)).fold(0.0, f64::max);
    let size = spec.size as f64;
    let mut out = format!(
        "#   its {} runs: time {:.1}-{:.1} ms, algbw {:.1}-{:.1} MB/s",
        runs.len(),
        fastest * 1e3,
        slowest * 1e3,
        size / slowest / 1e6,
        size / fastest / 1e6,
    );
    if let Some(rate) = runs[0].rate_bytes {
        let bound = size / wire_efficiency(spec.elements) / rate;
        out += &format!(", fraction {:.3}-{:.3}", bound / slowest, bound / fastest);
    }
    out
}

/// The run whose time is the median; of an even count, the slower of the
/// two middle runs (a measured run, and the less flattering one). `runs`
/// must not be empty.
fn median_run<'a>(runs: &[&'a BenchResult]) -> &'a BenchResult {
    let mut sorted = runs.to_vec();
    sorted.sort_by_key(|r| r.time);
    sorted[sorted.len() / 2]
}

fn run_one(spec: &BenchSpec, n: usize, rate: Option<&str>) -> Result<BenchResult, BenchError> {
    let name = format!(
        "{}{}{}{n}",
        spec.name_prefix,
        std::process::id(),
        if rate.is_some() { "s" } else { "u" }
    );
    let topo = up(&TopoSpec {
        name: name.clone(),
        workers: n,
        rate: rate.map(str::to_owned),
        mtu: spec.mtu,
        loss: None,
        fabric: spec.fabric,
    })?;
    let _guard = TopoGuard(name);
    let mut serve_args = vec!["--elements".to_owned(), spec.elements.to_string()];
    serve_args.extend(multicast_args(&topo, spec.unicast_results));
    serve_args.extend(spec.serve_args.iter().cloned());
    // The switch's output (its counters at exit) goes to a log, not the table.
    let log = std::env::temp_dir().join(format!("ina-topo-bench-{}.log", topo.spec.name));
    let mut switch =
        SwitchProcess::start_logged(&topo, &spec.switch_emu.to_string_lossy(), &serve_args, &log)?;
    let mut cmd: Vec<String> = vec![
        spec.host_agent.to_string_lossy().into_owned(),
        "bench".into(),
        "--control".into(),
        "{control}".into(),
        "--rank".into(),
        "{rank}".into(),
        "--world".into(),
        "{world}".into(),
        "--job".into(),
        "topobench".into(),
        "--dtype".into(),
        spec.dtype.to_string(),
        "--sizes".into(),
        spec.size.to_string(),
        "--iters".into(),
        spec.iters.to_string(),
        "--window".into(),
        spec.window.to_string(),
        "--elements".into(),
        spec.elements.to_string(),
    ];
    if let Some(t) = &spec.retransmit_timeout {
        cmd.extend(["--retransmit-timeout".into(), t.clone()]);
    }
    if spec.out_of_place {
        cmd.push("--out-of-place".into());
    }
    let outputs = run_workers(&topo, &cmd, Some(spec.timeout))?;
    switch.stop();
    let mut worst = Duration::ZERO;
    let mut retrans = 0u64;
    for (rank, out) in outputs.iter().enumerate() {
        let stdout = String::from_utf8_lossy(&out.stdout);
        let fail = |why: &str| BenchError::Rank {
            rank,
            why: format!(
                "{why} ({}); output:\n{stdout}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ),
        };
        if !out.status.success() {
            return Err(fail("host-agent bench failed"));
        }
        let row = stdout
            .lines()
            .find_map(parse_row)
            .ok_or_else(|| fail("no result line"))?;
        if !row.ok {
            return Err(fail("wrong result"));
        }
        if row.dtype != spec.dtype.to_string() {
            return Err(fail(&format!(
                "a result of {}, not {}",
                row.dtype, spec.dtype
            )));
        }
        worst = worst.max(row.time);
        retrans += row.retransmissions;
    }
    Ok(BenchResult {
        workers: n,
        rate_bytes: rate.and_then(rate_bytes_per_s),
        time: worst,
        retransmissions: retrans,
    })
}

/// The fields of a `host-agent bench` result line this command uses.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Row<'a> {
    dtype: &'a str,
    time: Duration,
    retransmissions: u64,
    ok: bool,
}

/// Parses a `host-agent bench` table line (see `host_agent::bench::line`):
/// size, count, type, time (us), algbw, busbw, ATE/s, pkts/s, retrans, check.
fn parse_row(line: &str) -> Option<Row<'_>> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() != 10 || line.trim_start().starts_with('#') {
        return None;
    }
    let us: f64 = f[3].parse().ok()?;
    Some(Row {
        dtype: f[2],
        time: Duration::from_secs_f64(us / 1e6),
        retransmissions: f[8].parse().ok()?,
        ok: f[9] == "OK",
    })
}

/// Payload bytes / frame bytes of one packet with `elements` elements.
pub fn wire_efficiency(elements: u16) -> f64 {
    let e = usize::from(elements);
    (e * ELEMENT_LEN) as f64 / frame_len(e) as f64
}

fn header(spec: &BenchSpec) -> String {
    format!(
        "# topo bench: {} {} B {}, {} elements/packet (frame {} B, wire efficiency {:.3}), window {}, mtu {}, {} timed iterations, fabric {}; time = slowest rank's median\n# {:>7} {:>3} {:>10} {:>9} {:>9} {:>8} {:>8} {:>10} {:>8} {:>10} {:>8}\n# {:>7} {:>3} {:>10} {:>9} {:>9} {:>8} {:>8} {:>10} {:>8} {:>10} {:>8}",
        spec.dtype,
        spec.size,
        if spec.out_of_place { "out of place" } else { "in place" },
        spec.elements,
        frame_len(usize::from(spec.elements)),
        wire_efficiency(spec.elements),
        spec.window,
        spec.mtu.map_or("default".to_owned(), |m| m.to_string()),
        spec.iters,
        match (spec.fabric, spec.unicast_results) {
            (Fabric::SwitchEmu, false) => "switch-emu (L2), results multicast through the replication port",
            (Fabric::SwitchEmu, true) => "switch-emu (L2), results unicast",
            (Fabric::KernelBridge, false) => "kernel bridge + switch-emu UDP, results multicast",
            (Fabric::KernelBridge, true) => "kernel bridge + switch-emu UDP, results unicast",
        },
        "rate", "n", "time", "algbw", "busbw", "ATE/s", "wire_eff", "INA_bound", "fraction", "ring_bound", "retrans",
        "", "", "(ms)", "(MB/s)", "(MB/s)", "(G)", "", "(ms)", "", "(ms)", "(sum)",
    )
}

fn line(spec: &BenchSpec, r: &BenchResult) -> String {
    let s = spec.size as f64;
    let t = r.time.as_secs_f64();
    let n = r.workers as f64;
    let algbw = s / t;
    let eff = wire_efficiency(spec.elements);
    let (rate, bound, fraction, ring) = match r.rate_bytes {
        Some(rate) => {
            let bound = s / eff / rate;
            (
                format!("{:.0}M", rate * 8.0 / 1e6),
                format!("{:.1}", bound * 1e3),
                format!("{:.3}", bound / t),
                format!("{:.1}", 2.0 * (n - 1.0) / n * s / rate * 1e3),
            )
        }
        None => ("none".into(), "-".into(), "-".into(), "-".into()),
    };
    format!(
        "  {:>7} {:>3} {:>10.1} {:>9.1} {:>9.1} {:>8.3} {:>8.3} {:>10} {:>8} {:>10} {:>8}",
        rate,
        r.workers,
        t * 1e3,
        algbw / 1e6,
        algbw * 2.0 * (n - 1.0) / n / 1e6,
        s / 4.0 / t / 1e9,
        eff,
        bound,
        fraction,
        ring,
        r.retransmissions
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!(rate_bytes_per_s("1gbit"), Some(125e6));
        assert_eq!(rate_bytes_per_s("500mbit"), Some(62.5e6));
        assert_eq!(rate_bytes_per_s("1mbps"), Some(1e6));
        assert_eq!(rate_bytes_per_s("fast"), None);
        assert_eq!(rate_bytes_per_s("1xbit"), None);
    }

    #[test]
    fn rows_parse() {
        let l = "     67108864    16777216  float32    688993.4       0.097       0.146      24.35      0.011      251     OK";
        let r = parse_row(l).unwrap();
        assert_eq!(r.retransmissions, 251);
        assert_eq!(r.dtype, "float32");
        assert!(r.ok);
        assert!((r.time.as_secs_f64() - 0.6889934).abs() < 1e-9);
        assert!(parse_row(&l.replace(" OK", " FAIL")).is_some_and(|r| !r.ok));
        assert_eq!(parse_row("#        size       count"), None);
    }

    /// 64 MiB, 256 elements, n=4 at 1 Gbit/s.
    fn spec() -> BenchSpec {
        BenchSpec {
            workers: vec![4],
            rate: Some("1gbit".into()),
            unshaped: false,
            size: 64 << 20,
            dtype: Dtype::F32,
            elements: 256,
            window: 128,
            mtu: None,
            iters: 1,
            runs: 1,
            retransmit_timeout: None,
            host_agent: "host-agent".into(),
            switch_emu: "switch-emu".into(),
            name_prefix: "t".into(),
            serve_args: vec![],
            fabric: Fabric::SwitchEmu,
            unicast_results: false,
            out_of_place: false,
            timeout: Duration::from_secs(600),
        }
    }

    #[test]
    fn line_has_fraction_and_bounds() {
        let spec = spec();
        let bound = (64 << 20) as f64 / wire_efficiency(256) / 125e6;
        let r = BenchResult {
            workers: 4,
            rate_bytes: Some(125e6),
            time: Duration::from_secs_f64(bound * 2.0),
            retransmissions: 7,
        };
        let f: Vec<String> = line(&spec, &r)
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        assert_eq!(f[0], "1000M");
        assert_eq!(f[8], "0.500");
        // Ring bound: 2*3/4 * 64 MiB / 125 MB/s = 805.3 ms.
        assert_eq!(f[9], "805.3");
        assert_eq!(f[10], "7");
        let unshaped = BenchResult {
            rate_bytes: None,
            ..r
        };
        assert!(line(&spec, &unshaped).contains("none"));
    }

    #[test]
    fn median_run_is_a_measured_run() {
        let run = |ms| BenchResult {
            workers: 4,
            rate_bytes: None,
            time: Duration::from_millis(ms),
            retransmissions: ms,
        };
        let (a, b, c, d) = (run(30), run(10), run(20), run(40));
        assert_eq!(median_run(&[&a, &b, &c]).time, Duration::from_millis(20));
        assert_eq!(
            median_run(&[&a, &b, &c, &d]).time,
            Duration::from_millis(30)
        );
        assert_eq!(median_run(&[&b]).retransmissions, 10);
    }

    #[test]
    fn spread_shows_the_fastest_and_the_slowest_run() {
        let spec = spec();
        let run = |ms| BenchResult {
            workers: 4,
            rate_bytes: Some(125e6),
            time: Duration::from_millis(ms),
            retransmissions: 0,
        };
        let (a, b, c) = (run(600), run(500), run(1000));
        let spread = spread_line(&spec, &[&a, &b, &c]);
        let bound = spec.size as f64 / wire_efficiency(spec.elements) / 125e6;
        let mb = |ms: f64| spec.size as f64 / (ms / 1e3) / 1e6;
        assert_eq!(
            spread,
            format!(
                "#   its 3 runs: time 500.0-1000.0 ms, algbw {:.1}-{:.1} MB/s, fraction {:.3}-{:.3}",
                mb(1000.0),
                mb(500.0),
                bound,
                bound / 0.5
            )
        );
        let unshaped = BenchResult {
            rate_bytes: None,
            ..a
        };
        assert!(!spread_line(&spec, &[&unshaped]).contains("fraction"));
    }

    #[test]
    fn efficiency_uses_frame_len() {
        let e = wire_efficiency(256);
        assert!((e - 1024.0 / frame_len(256) as f64).abs() < 1e-12);
        assert!(e < 1.0 && e > 0.9);
    }
}
