//! `switch-emu demo`.

use std::time::Duration;

use anyhow::bail;
use clap::Args;
use host_agent::agent::{DEFAULT_RETRANSMIT_TIMEOUT, DEFAULT_WINDOW};
use host_agent::bench::{self, BenchConfig, Dtype};
use switch_emu::demo::{self, DemoConfig};

use super::parse_duration;

/// Flags of `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Workers (threads in this process, one rank each, own sockets).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    workers: u16,
    /// Tensor size(s), comma-separated: bytes or with a unit (KiB, MiB, GiB, KB, MB, GB).
    #[arg(long, default_value = "64MiB", value_delimiter = ',', value_parser = bench::parse_size)]
    size: Vec<usize>,
    /// Element type: f32 (block fixed point, checked within its bound) or i32 (exact).
    #[arg(long, default_value = "f32")]
    dtype: Dtype,
    /// Timed iterations per size (the time reported is the median).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    iters: u32,
    /// Untimed (but checked) iterations before the timed ones.
    #[arg(long, default_value_t = 1)]
    warmup: u32,
    /// Slots in flight per worker (the job's lease).
    #[arg(long, default_value_t = DEFAULT_WINDOW)]
    window: u16,
    /// Int32 elements per packet (64 as on Tofino; the demo's switch allows what is asked).
    #[arg(long, default_value_t = packet_format::TOFINO_ELEMENTS_PER_PACKET)]
    elements: u16,
    /// Probability that the switch drops each received datagram (seeded loss injection).
    #[arg(long, default_value_t = 0.0)]
    drop: f64,
    /// Seed of the loss injection.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Sum into a second buffer (`allreduce_f32_into`) instead of in place.
    #[arg(long)]
    out_of_place: bool,
    /// Initial retransmission timeout of the workers (doubles per retry).
    /// Default: 10ms (the library default).
    #[arg(long, value_parser = parse_duration)]
    retransmit_timeout: Option<Duration>,
}

/// Runs the demo and prints the table; fails if any result was wrong.
pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let config = DemoConfig {
        workers: args.workers,
        bench: BenchConfig {
            dtype: args.dtype,
            sizes: args.size,
            iters: args.iters,
            warmup: args.warmup,
            out_of_place: args.out_of_place,
        },
        window: args.window,
        elements_per_packet: args.elements,
        drop: args.drop,
        seed: args.seed,
        retransmit_timeout: args
            .retransmit_timeout
            .unwrap_or(DEFAULT_RETRANSMIT_TIMEOUT),
    };
    println!(
        "# switch-emu demo: switch + {} workers on loopback, {} {}, window {}, {} elements/packet, drop {} (seed {})",
        args.workers,
        args.dtype,
        if args.out_of_place { "out of place" } else { "in place" },
        args.window,
        args.elements,
        args.drop,
        args.seed
    );
    let report = demo::run(&config)?;
    let on = |b: bool| if b { "on" } else { "off" };
    println!(
        "# offloads: switch GSO {} GRO {}, workers GSO {} GRO {}",
        on(report.switch_offloads.gso),
        on(report.switch_offloads.gro),
        on(report.worker_offloads.0),
        on(report.worker_offloads.1)
    );
    println!("# time: slowest worker's median; pkts/s and retrans: all workers together");
    println!("{}", bench::header());
    for r in &report.results {
        println!("{}", bench::line(r));
    }
    if let Some(c) = &report.switch_status.counters {
        let drops: Vec<String> = c
            .drops
            .iter()
            .filter(|(_, &v)| v > 0)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        println!(
            "# switch drops: {}",
            if drops.is_empty() {
                "none".into()
            } else {
                drops.join(" ")
            }
        );
    }
    if let Some(&loss) = report.switch_status.driver.get("injected_loss") {
        println!("# injected loss: {loss} datagrams");
    }
    let failures: Vec<&str> = report
        .results
        .iter()
        .filter_map(|r| r.failure.as_deref())
        .collect();
    if !failures.is_empty() {
        bail!("wrong results: {}", failures.join("; "));
    }
    println!(
        "# verified: every worker's result {} for every iteration",
        match args.dtype {
            Dtype::I32 => "exact",
            Dtype::F32 => "within the block fixed point bound",
        }
    );
    Ok(())
}
