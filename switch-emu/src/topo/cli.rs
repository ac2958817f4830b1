//! `switch-emu topo ...` arguments and their execution, so that `main.rs`
//! only adds `Topo(TopoArgs)` to its subcommands and calls [`TopoArgs::execute`].

use std::time::Duration;

use clap::{Args, Subcommand};

use super::bench::{run_all, BenchSpec};
use super::run::{multicast_args, run_workers, SwitchProcess};
use super::{down, load, status, up, Fabric, TopoSpec};

/// Build, use and remove an emulated cluster (root only).
#[derive(Debug, Args)]
pub struct TopoArgs {
    #[command(subcommand)]
    command: TopoCommand,
}

#[derive(Debug, Subcommand)]
enum TopoCommand {
    /// Create namespaces, links, addresses, rate limits and loss.
    Up {
        #[arg(long)]
        name: String,
        #[arg(long)]
        workers: usize,
        /// Rate of each link direction (tc syntax, e.g. 1gbit).
        #[arg(long)]
        rate: Option<String>,
        #[arg(long)]
        mtu: Option<u32>,
        /// Random loss in percent on each link direction.
        #[arg(long)]
        loss: Option<u32>,
        /// What joins the links: switch-emu as the L2 switch (with its
        /// replication port `pre`: a frame sent there is copied to every
        /// worker port), or the switch namespace's kernel bridge with
        /// switch-emu serving UDP (offloads on).
        #[arg(long, value_enum, default_value_t = Fabric::SwitchEmu)]
        fabric: Fabric,
    },
    /// Delete everything `up` created (also after a crash).
    Down {
        #[arg(long)]
        name: String,
    },
    /// Show the topology.
    Status {
        #[arg(long)]
        name: String,
    },
    /// Benchmark: for each worker count, a fresh topology (shaped, then
    /// unshaped), the switch and `host-agent bench` on every worker (float32
    /// unless --dtype i32);
    /// prints time, algbw, busbw, ATE/s, wire efficiency, the fraction of the
    /// INA bound and the ring bound. Fails if any rank fails or is wrong.
    Bench(BenchArgs),
    /// Run the switch in the switch namespace and CMD in every worker namespace.
    Run {
        #[arg(long)]
        name: String,
        /// Extra argument for `switch-emu serve`, one per flag (repeat:
        /// --serve-args=--elements --serve-args=256).
        #[arg(long, allow_hyphen_values = true)]
        serve_args: Vec<String>,
        /// Send every result to each worker by unicast instead of once to
        /// the job's multicast group (which the bridge, or on the L2 fabric
        /// the replication port, copies to the workers' ports).
        #[arg(long)]
        unicast_results: bool,
        /// Seconds the workers may run; any still running then are killed
        /// and `run` fails (default: no limit).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        timeout: Option<u64>,
        /// Command with {rank} {world} {ip} {switch} {control} {netns}.
        #[arg(last = true, required = true)]
        cmd: Vec<String>,
    },
}

/// Arguments of `topo bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Worker counts (one topology each).
    #[arg(long, value_delimiter = ',', default_value = "4,8")]
    workers: Vec<usize>,
    /// Rate of each link direction in the shaped runs (tc syntax).
    #[arg(long, default_value = "1gbit")]
    rate: String,
    /// Only the shaped runs.
    #[arg(long, conflicts_with = "unshaped_only")]
    shaped_only: bool,
    /// Only the unshaped runs.
    #[arg(long)]
    unshaped_only: bool,
    /// Tensor size (bytes or with a unit: 64MiB).
    #[arg(long, default_value = "64MiB", value_parser = host_agent::bench::parse_size)]
    size: usize,
    /// Element type: f32 (block fixed point, the benchmark) or i32
    /// (exact, no quantization: what the transport alone reaches).
    #[arg(long, default_value = "f32")]
    dtype: host_agent::bench::Dtype,
    /// Int32 elements per packet (above 256 is emulator-only; needs --mtu
    /// of at least frame_len(E) - 14).
    #[arg(long, default_value_t = 256)]
    elements: u16,
    /// Slots in flight per worker.
    #[arg(long, default_value_t = 128)]
    window: u16,
    /// MTU of every link.
    #[arg(long)]
    mtu: Option<u32>,
    /// Timed iterations per run.
    #[arg(long, default_value_t = 3)]
    iters: u32,
    /// Runs of every configuration, each in a fresh topology, taken in
    /// rounds (every configuration once, then again) so that a change in
    /// the machine's load touches all of them alike; with more than one, a
    /// median line per configuration follows the runs, with the fastest
    /// and the slowest run under it. On a shared machine single runs vary
    /// by up to 1.5x.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Initial retransmission timeout of the agents. 100 ms, not the
    /// agents' 10 ms: with 2 cores for n+1 processes and a tbf queue, a
    /// round trip often exceeds 10 ms and spurious retransmissions (up to
    /// 220 k per run at n=8) then load the switch further.
    #[arg(long, default_value = "100ms")]
    retransmit_timeout: String,
    /// The host-agent binary (default: next to this binary).
    #[arg(long)]
    host_agent: Option<std::path::PathBuf>,
    /// Extra argument for `switch-emu serve` (repeat: --serve-arg=--rx --serve-arg=recv).
    #[arg(long, allow_hyphen_values = true)]
    serve_arg: Vec<String>,
    /// Prefix of the topology names (the pid and the run are appended).
    #[arg(long, default_value = "tb")]
    name_prefix: String,
    /// What joins the links: switch-emu as the L2 switch (AF_PACKET ports),
    /// or the kernel bridge with switch-emu's UDP driver (results multicast
    /// and copied to the ports by the bridge; not an L2 switch). Both carry
    /// GSO super-frames through the veths.
    #[arg(long, value_enum, default_value_t = Fabric::SwitchEmu)]
    fabric: Fabric,
    /// Send every result to each worker by unicast instead of once to the
    /// job's multicast group (for comparison: the switch then sends a copy
    /// per member, and the kernel copies each one's bytes).
    #[arg(long)]
    unicast_results: bool,
    /// The agents sum into a second buffer (`allreduce_f32_into`) instead
    /// of in place, so they keep no copy of the input.
    #[arg(long)]
    out_of_place: bool,
    /// Seconds one run may take; workers still running then are killed and
    /// the benchmark fails (the agents' own timeouts end most stuck runs
    /// sooner).
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,
}

impl TopoArgs {
    /// Runs the subcommand; returns the process exit code.
    pub fn execute(self) -> anyhow::Result<i32> {
        match self.command {
            TopoCommand::Up {
                name,
                workers,
                rate,
                mtu,
                loss,
                fabric,
            } => {
                let t = up(&TopoSpec {
                    name: name.clone(),
                    workers,
                    rate,
                    mtu,
                    loss,
                    fabric,
                })?;
                println!("{}", serde_json::to_string_pretty(&t)?);
                Ok(0)
            }
            TopoCommand::Down { name } => {
                for ns in down(&name)? {
                    println!("deleted {ns}");
                }
                Ok(0)
            }
            TopoCommand::Bench(a) => {
                let exe = std::env::current_exe()?;
                let host_agent = a
                    .host_agent
                    .unwrap_or_else(|| exe.with_file_name("host-agent"));
                let spec = BenchSpec {
                    workers: a.workers,
                    rate: (!a.unshaped_only).then_some(a.rate),
                    unshaped: !a.shaped_only,
                    size: a.size,
                    dtype: a.dtype,
                    elements: a.elements,
                    window: a.window,
                    mtu: a.mtu,
                    iters: a.iters,
                    runs: a.runs,
                    retransmit_timeout: Some(a.retransmit_timeout),
                    host_agent,
                    switch_emu: exe,
                    name_prefix: a.name_prefix,
                    serve_args: a.serve_arg,
                    fabric: a.fabric,
                    unicast_results: a.unicast_results,
                    out_of_place: a.out_of_place,
                    timeout: Duration::from_secs(a.timeout),
                };
                run_all(&spec)?;
                Ok(0)
            }
            TopoCommand::Status { name } => {
                print!("{}", status(&name)?);
                Ok(0)
            }
            TopoCommand::Run {
                name,
                mut serve_args,
                unicast_results,
                timeout,
                cmd,
            } => {
                let t = load(&name)?;
                serve_args.splice(0..0, multicast_args(&t, unicast_results));
                let exe = std::env::current_exe()?;
                let mut switch = SwitchProcess::start(&t, &exe.to_string_lossy(), &serve_args)?;
                let outputs = run_workers(&t, &cmd, timeout.map(Duration::from_secs))?;
                switch.stop();
                let mut code = 0;
                for (rank, out) in outputs.iter().enumerate() {
                    for line in String::from_utf8_lossy(&out.stdout).lines() {
                        println!("[{rank}] {line}");
                    }
                    for line in String::from_utf8_lossy(&out.stderr).lines() {
                        eprintln!("[{rank}] {line}");
                    }
                    if !out.status.success() {
                        eprintln!("[{rank}] exited with {}", out.status);
                        code = 1;
                    }
                }
                Ok(code)
            }
        }
    }
}
