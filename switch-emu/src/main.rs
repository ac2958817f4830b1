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
    /// Emulated clusters: network namespaces, veth links, rate limits, loss.
    Topo(switch_emu::topo::cli::TopoArgs),
    // Later subcommands go here, one variant and one `cli/` module each:
    // `demo` (switch + N workers in one process),
    // `p4-config` (table entries for the P4 program), `controller` (drive BMv2/Tofino).
}

fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Command::Serve(args) => cli::serve::run(args),
        Command::Status(args) => cli::status::run(args),
        Command::Topo(args) => {
            let code = args.execute()?;
            if code != 0 {
                std::process::exit(code);
            }
            Ok(())
        }
    }
}
