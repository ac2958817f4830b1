//! `switch-emu topo ...` arguments and their execution, so that `main.rs`
//! only adds `Topo(TopoArgs)` to its subcommands and calls [`TopoArgs::execute`].

use clap::{Args, Subcommand};

use super::run::{run_workers, SwitchProcess};
use super::{down, load, status, up, TopoSpec};

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
    /// Run the switch in the switch namespace and CMD in every worker namespace.
    Run {
        #[arg(long)]
        name: String,
        /// Extra arguments for `switch-emu serve`.
        #[arg(long, allow_hyphen_values = true)]
        serve_args: Vec<String>,
        /// Command with {rank} {world} {ip} {switch} {control} {netns}.
        #[arg(last = true, required = true)]
        cmd: Vec<String>,
    },
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
            } => {
                let t = up(&TopoSpec {
                    name: name.clone(),
                    workers,
                    rate,
                    mtu,
                    loss,
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
            TopoCommand::Status { name } => {
                print!("{}", status(&name)?);
                Ok(0)
            }
            TopoCommand::Run {
                name,
                serve_args,
                cmd,
            } => {
                let t = load(&name)?;
                let exe = std::env::current_exe()?;
                let mut switch = SwitchProcess::start(&t, &exe.to_string_lossy(), &serve_args)?;
                let outputs = run_workers(&t, &cmd)?;
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
