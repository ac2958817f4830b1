//! `host-agent`: the worker side of in-network aggregation, as a command.
//!
//! Thin: argument parsing and wiring; the work is in the library.

use std::net::{SocketAddr, SocketAddrV4};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use host_agent::agent::{DEFAULT_RETRANSMIT_TIMEOUT, DEFAULT_WINDOW};
use host_agent::bench::{self, BenchConfig, Dtype};
use host_agent::{Agent, JoinOptions};

/// Worker of an in-network aggregation job (SwitchML-style) over UDP.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Join a job as one rank and benchmark allreduce (run one process per rank).
    ///
    /// Every rank must be started with the same --job, --world, --dtype,
    /// --sizes, --iters, --warmup, --window and --elements. Inputs are a
    /// deterministic function of (rank, index, iteration), so every rank
    /// checks the whole sum itself: int32 exactly, float32 within the
    /// block fixed point bound. Prints one line per size (nccl-tests
    /// style); exits non-zero if any result is wrong.
    ///
    /// Columns: time = median of the timed iterations; algbw = bytes/time;
    /// busbw = algbw*2(n-1)/n (the per-link bandwidth a ring allreduce would
    /// need for the same time); ATE/s = elements/time (aggregated tensor
    /// elements per second); pkts/s = packets this rank sent per second;
    /// retrans = this rank's retransmissions in the timed iterations.
    Bench(BenchArgs),
}

#[derive(Debug, Args)]
struct BenchArgs {
    /// The switch's control plane (TCP).
    #[arg(long, default_value = "127.0.0.1:48865")]
    control: SocketAddr,
    /// Send aggregation packets here instead of the data address the switch announces.
    #[arg(long)]
    switch: Option<SocketAddrV4>,
    /// Local address of the data socket (default: the address that reaches the switch, any port).
    #[arg(long)]
    bind: Option<SocketAddrV4>,
    /// Job name, the same on every rank.
    #[arg(long, default_value = "bench")]
    job: String,
    /// This process's rank, 0..world.
    #[arg(long)]
    rank: u16,
    /// Number of ranks.
    #[arg(long)]
    world: u16,
    /// Element type: f32 (block fixed point) or i32 (exact).
    #[arg(long, default_value = "f32")]
    dtype: Dtype,
    /// Tensor sizes, comma-separated: bytes or with a unit (KiB, MiB, GiB, KB, MB, GB).
    #[arg(long, default_value = "1MiB,16MiB,64MiB", value_delimiter = ',', value_parser = bench::parse_size)]
    sizes: Vec<usize>,
    /// Timed iterations per size (the time reported is their median).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    iters: u32,
    /// Untimed (but checked) iterations before the timed ones.
    #[arg(long, default_value_t = 1)]
    warmup: u32,
    /// Slots in flight (the job's lease).
    #[arg(long, default_value_t = DEFAULT_WINDOW)]
    window: u16,
    /// Int32 elements per packet (at most the switch's limit, 64 by default).
    #[arg(long, default_value_t = packet_format::TOFINO_ELEMENTS_PER_PACKET)]
    elements: u16,
    /// Initial retransmission timeout (doubles per retry): 10ms, 0.5s, 2.
    /// Default: 10ms (the library default).
    #[arg(long, value_parser = parse_duration)]
    retransmit_timeout: Option<Duration>,
    /// A packet without a result this long fails the run (peer timeout).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    stall_timeout: Duration,
    /// Time to wait for every rank to join.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    join_timeout: Duration,
    /// Sum into a second buffer (`allreduce_f32_into`) instead of in place:
    /// the input is only read, so the agent keeps no copy of it.
    #[arg(long)]
    out_of_place: bool,
    /// Do not merge sends into UDP GSO messages.
    #[arg(long)]
    no_gso: bool,
    /// Do not ask for UDP GRO on receive.
    #[arg(long)]
    no_gro: bool,
}

/// Parses a duration: `3` or `2.5` (seconds), `500ms`, `3s`, `250us`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, scale) = if let Some(v) = t.strip_suffix("us") {
        (v, 1e-6)
    } else if let Some(v) = t.strip_suffix("ms") {
        (v, 1e-3)
    } else if let Some(v) = t.strip_suffix('s') {
        (v, 1.0)
    } else {
        (t, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (e.g. 3, 2.5s, 500ms)"))?;
    Duration::try_from_secs_f64(value * scale).map_err(|e| format!("'{text}': {e}"))
}

fn bench(args: BenchArgs) -> anyhow::Result<bool> {
    let mut options =
        JoinOptions::new(args.job.clone(), args.rank, args.world).control(args.control);
    options.switch_data = args.switch;
    options.bind = args.bind;
    options.window = args.window;
    options.elements_per_packet = args.elements;
    options.retransmit_timeout = args
        .retransmit_timeout
        .unwrap_or(DEFAULT_RETRANSMIT_TIMEOUT);
    options.max_retransmit_timeout = options
        .max_retransmit_timeout
        .max(options.retransmit_timeout);
    options.stall_timeout = args.stall_timeout;
    options.join_timeout = args.join_timeout;
    options.transport.gso = !args.no_gso;
    options.transport.gro = !args.no_gro;
    let mut agent = Agent::join(options).with_context(|| {
        format!(
            "joining job '{}' as rank {}/{}",
            args.job, args.rank, args.world
        )
    })?;
    let (gso, gro) = agent.offloads();
    let p = *agent.params();
    println!(
        "# host-agent bench: job '{}' (id {}) rank {}/{} dtype {} {} window {} elements/packet {} switch {} data {} results {} gso {} gro {}",
        args.job,
        p.job_id,
        args.rank,
        p.world,
        args.dtype,
        if args.out_of_place { "out of place" } else { "in place" },
        p.window,
        p.elements_per_packet,
        agent.switch_data_addr().map_or("-".into(), |a| a.to_string()),
        agent.data_addr(),
        p.result_group
            .map_or("unicast".into(), |g| format!("multicast {g}")),
        if gso { "on" } else { "off" },
        if gro { "on" } else { "off" },
    );
    println!("{}", bench::header());
    let config = BenchConfig {
        dtype: args.dtype,
        sizes: args.sizes,
        iters: args.iters,
        warmup: args.warmup,
        out_of_place: args.out_of_place,
    };
    let results = bench::run(&mut agent, &config, |r| {
        println!("{}", bench::line(r));
        if let Some(why) = &r.failure {
            eprintln!(
                "host-agent: rank {} size {} FAILED: {why}",
                args.rank, r.bytes
            );
        }
    })
    .context("allreduce failed")?;
    let stats = agent.leave().context("leaving the job")?;
    println!(
        "# rank {}: {} allreduces, {} packets sent, {} retransmissions, {} results ignored, {} send calls ({} GSO messages), {} receive calls, {} results from the group",
        args.rank,
        stats.allreduces,
        stats.engine.packets_sent,
        stats.engine.retransmissions,
        stats.engine.results_ignored,
        stats.transport.send_calls,
        stats.transport.gso_messages,
        stats.transport.recv_calls,
        stats.transport.group_datagrams_received,
    );
    Ok(results.iter().all(|r| r.ok()))
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Bench(args) => bench(args),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("host-agent: some results were wrong");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("host-agent: {e:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert!(parse_duration("x").is_err());
    }

    #[test]
    fn cli_parses() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "host-agent",
            "bench",
            "--rank",
            "1",
            "--world",
            "2",
            "--sizes",
            "4KiB,1MiB",
            "--dtype",
            "i32",
        ])
        .unwrap();
        let Command::Bench(b) = cli.command;
        assert_eq!(b.sizes, vec![4096, 1 << 20]);
        assert_eq!(b.dtype, Dtype::I32);
        assert_eq!(b.retransmit_timeout, None);
    }
}
