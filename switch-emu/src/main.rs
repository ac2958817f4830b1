//! `switch-emu`: the in-network aggregation switch emulator.
//!
//! Thin: argument parsing and wiring; the work is in the library. Each
//! subcommand is one variant of [`Command`] and one module of `cli/`.

use clap::{Parser, Subcommand};

mod cli;

/// Userspace in-network aggregation switch (SwitchML-style) over UDP or on interfaces.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the switch: aggregation over UDP (or, with --port, as an L2
    /// switch on interfaces) and the job control plane over TCP.
    Serve(cli::serve::ServeArgs),
    /// Show a running switch's jobs, members, waiting slots and counters.
    Status(cli::status::StatusArgs),
    /// Start a switch and N workers in this process on loopback, run allreduce, verify, print the table.
    Demo(cli::demo::DemoArgs),
    /// Print the P4 programs' control-plane configuration for a job file.
    P4Config(cli::p4_config::P4ConfigArgs),
    /// Run the job control plane for a BMv2 switch running the P4 twin.
    Controller(cli::controller::ControllerArgs),
    /// Emulated clusters: network namespaces, veth links, rate limits, loss.
    Topo(switch_emu::topo::cli::TopoArgs),
}

fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Command::Serve(args) => cli::serve::run(args),
        Command::Status(args) => cli::status::run(args),
        Command::Demo(args) => cli::demo::run(args),
        Command::P4Config(args) => cli::p4_config::run(args),
        Command::Controller(args) => cli::controller::run(args),
        Command::Topo(args) => {
            let code = args.execute()?;
            if code != 0 {
                std::process::exit(code);
            }
            Ok(())
        }
    }
}
