//! `switch-emu p4-config`: the P4 programs' control-plane configuration
//! from a job file.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use switch_emu::p4config::{self, Target};

/// Flags of `p4-config`.
#[derive(Debug, Args)]
pub struct P4ConfigArgs {
    /// `bmv2` (simple_switch_CLI commands) or `tofino` (bfrt_python script).
    #[arg(long, value_parser = parse_target)]
    target: Target,
    /// Job description file (JSON; see switch-emu/tests/golden/job4.json).
    jobfile: PathBuf,
    /// Write the configuration here instead of standard output.
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
}

fn parse_target(text: &str) -> Result<Target, String> {
    text.parse()
        .map_err(|e: p4config::P4ConfigError| e.to_string())
}

/// Prints (or writes) the generated configuration.
pub fn run(args: P4ConfigArgs) -> anyhow::Result<()> {
    let json = std::fs::read_to_string(&args.jobfile)
        .with_context(|| format!("reading {}", args.jobfile.display()))?;
    let text = p4config::generate_from_json(&json, args.target)
        .with_context(|| format!("{}", args.jobfile.display()))?;
    match &args.output {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?
        }
        None => print!("{text}"),
    }
    Ok(())
}
