//! `switch-emu`: the in-network aggregation switch emulator.
//!
//! Thin: argument parsing and wiring; the work is in the library. Each
//! subcommand is one variant of [`Command`] and one module of `cli/`.

use clap::{Parser, Subcommand};

mod cli;

/// Userspace in-network aggregation switch (SwitchML-style) over UDP.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the switch: aggregation over UDP and the job control plane over TCP.
    Serve(cli::serve::ServeArgs),
    /// Show a running switch's jobs, members, waiting slots and counters.
    Status(cli::status::StatusArgs),
    /// Start a switch and N workers in this process on loopback, run allreduce, verify, print the table.
    Demo(cli::demo::DemoArgs),
    // Later subcommands go here, one variant and one `cli/` module each:
    // `topo` (namespaces),
    // `p4-config` (table entries for the P4 program), `controller` (drive BMv2/Tofino).
}

fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Command::Serve(args) => cli::serve::run(args),
        Command::Status(args) => cli::status::run(args),
        Command::Demo(args) => cli::demo::run(args),
    }
}
