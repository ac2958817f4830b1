//! `switch-emu status`.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use switch_emu::control::status::StatusReport;
use switch_emu::udp::client;

use super::parse_duration;

/// Flags of `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Control address of the running switch.
    #[arg(long, default_value = "127.0.0.1:48865")]
    control: SocketAddr,
    /// Print the raw status document (JSON) instead of the table.
    #[arg(long)]
    json: bool,
    /// How long to wait for the switch.
    #[arg(long, default_value = "5", value_parser = parse_duration)]
    timeout: Duration,
}

/// Fetches and prints the status.
pub fn run(args: StatusArgs) -> anyhow::Result<()> {
    let value = client::status_json(args.control, args.timeout)
        .with_context(|| format!("asking the switch at {} for its status", args.control))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        let report: StatusReport = serde_json::from_value(value)
            .context("the switch sent a status document this tool cannot read")?;
        print!("{}", report.render());
    }
    Ok(())
}
