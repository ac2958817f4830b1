//! A [`Dataplane`] that programs a running BMv2 `simple_switch` (the v1model
//! twin) through `simple_switch_CLI` on its Thrift port.
//!
//! BMv2 names multicast nodes and table entries by handles it chooses, so
//! installing a job takes two CLI sessions (create the nodes, read their
//! handles; then everything else, reading the entry handles), and removing
//! it uses the handles kept from the install.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::bmv2::{self, JobHandles};
use super::job::spec_fits;
use super::{HostTable, SwitchAddr};
use crate::core::JobSpec;
use crate::dataplane::{Dataplane, DataplaneError};

/// Runs one `simple_switch_CLI` session: the commands in order, returning
/// what the CLI printed.
pub trait CliRunner {
    /// Runs `commands` in one session and returns its standard output.
    fn run(&mut self, commands: &[String]) -> Result<String, DataplaneError>;
}

/// The real runner: spawns `simple_switch_CLI --thrift-port N` and pipes
/// the commands into it.
#[derive(Debug, Clone)]
pub struct SimpleSwitchCli {
    program: PathBuf,
    thrift_port: u16,
}

impl SimpleSwitchCli {
    /// `simple_switch_CLI` from `PATH`, talking to the switch on `thrift_port`.
    pub fn new(thrift_port: u16) -> Self {
        Self::with_program("simple_switch_CLI", thrift_port)
    }

    /// A CLI program at a given path (e.g. inside a virtualenv).
    pub fn with_program(program: impl Into<PathBuf>, thrift_port: u16) -> Self {
        SimpleSwitchCli {
            program: program.into(),
            thrift_port,
        }
    }
}

impl CliRunner for SimpleSwitchCli {
    fn run(&mut self, commands: &[String]) -> Result<String, DataplaneError> {
        let fail = |what: &str, e: std::io::Error| {
            DataplaneError::Target(format!("{} {what}: {e}", self.program.display()))
        };
        let mut child = Command::new(&self.program)
            .arg("--thrift-port")
            .arg(self.thrift_port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| fail("could not start", e))?;
        let mut input = commands.join("\n");
        input.push('\n');
        // Written from another thread: the CLI answers every command, and a
        // long session would otherwise fill both pipes and deadlock.
        let writer = child
            .stdin
            .take()
            .map(|mut stdin| std::thread::spawn(move || stdin.write_all(input.as_bytes())));
        let output = child.wait_with_output().map_err(|e| fail("wait", e))?;
        let written = match writer.map(std::thread::JoinHandle::join) {
            None => Ok(()),
            Some(Ok(result)) => result.map_err(|e| fail("stdin", e)),
            Some(Err(_)) => Err(DataplaneError::Target("stdin writer panicked".into())),
        };
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            return Err(DataplaneError::Target(format!(
                "{} exited with {}: {}",
                self.program.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        written?;
        Ok(stdout)
    }
}

/// A stand-in for the CLI in tests: records every session and answers node
/// creations and table additions with handles counting up from 0, the way
/// a fresh `simple_switch` does.
#[derive(Debug, Default, Clone)]
pub struct RecordingRunner {
    /// Every session's commands, in order.
    pub sessions: Vec<Vec<String>>,
    next_node: u32,
    next_entry: u32,
}

impl RecordingRunner {
    /// A runner with no sessions yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// All commands of all sessions in order.
    pub fn commands(&self) -> Vec<String> {
        self.sessions.iter().flatten().cloned().collect()
    }
}

impl CliRunner for RecordingRunner {
    fn run(&mut self, commands: &[String]) -> Result<String, DataplaneError> {
        self.sessions.push(commands.to_vec());
        let mut out = String::new();
        for command in commands {
            if command.starts_with("mc_node_create ") {
                out.push_str(&format!(
                    "node was created with handle {}\n",
                    self.next_node
                ));
                self.next_node += 1;
            } else if command.starts_with("table_add ") {
                out.push_str(&format!(
                    "Entry has been added with handle {}\n",
                    self.next_entry
                ));
                self.next_entry += 1;
            }
        }
        Ok(out)
    }
}

/// Handles printed by the CLI, in order: ("node was created with handle N"
/// or "Entry has been added with handle N").
fn handles_after(output: &str, marker: &str) -> Vec<u32> {
    output
        .lines()
        .filter_map(|line| {
            let lower = line.to_ascii_lowercase();
            let at = lower.find(marker)?;
            lower[at + marker.len()..].trim().parse().ok()
        })
        .collect()
}

/// A line of CLI output that reports a failed command.
fn first_error(output: &str) -> Option<&str> {
    output.lines().find(|line| {
        let l = line.trim_start_matches("RuntimeCmd: ").trim();
        l.starts_with("Error") || l.contains("Invalid") || l.starts_with("*** Unknown syntax")
    })
}

/// Runs a session and fails on any error line of the CLI.
fn run_checked<R: CliRunner>(
    runner: &mut R,
    commands: &[String],
) -> Result<String, DataplaneError> {
    let output = runner.run(commands)?;
    if let Some(line) = first_error(&output) {
        return Err(DataplaneError::Target(format!(
            "simple_switch_CLI: {}",
            line.trim()
        )));
    }
    Ok(output)
}

const NODE_MARKER: &str = "node was created with handle";
const ENTRY_MARKER: &str = "entry has been added with handle";

/// A BMv2 `simple_switch` running `p4/bmv2/ina_v1model.p4`.
#[derive(Debug)]
pub struct Bmv2Target<R: CliRunner> {
    runner: R,
    hosts: HostTable,
    jobs: BTreeMap<u16, (JobSpec, JobHandles)>,
}

impl<R: CliRunner> Bmv2Target<R> {
    /// Writes the switch-wide entries (switch addresses, ARP reply, L2
    /// forwarding to every host of `hosts`) and returns the target.
    pub fn connect(
        mut runner: R,
        switch: SwitchAddr,
        hosts: HostTable,
    ) -> Result<Self, DataplaneError> {
        let base = bmv2::base_commands(&switch, &hosts);
        let output = run_checked(&mut runner, &base)?;
        let wanted = base.iter().filter(|c| c.starts_with("table_add ")).count();
        let added = handles_after(&output, ENTRY_MARKER).len();
        if added != wanted {
            return Err(DataplaneError::Target(format!(
                "simple_switch_CLI added {added} of {wanted} switch entries"
            )));
        }
        Ok(Bmv2Target {
            runner,
            hosts,
            jobs: BTreeMap::new(),
        })
    }

    /// The CLI runner (e.g. to inspect a recording).
    pub fn runner(&self) -> &R {
        &self.runner
    }

    /// Jobs currently installed.
    pub fn installed(&self) -> impl Iterator<Item = &JobSpec> {
        self.jobs.values().map(|(spec, _)| spec)
    }
}

impl<R: CliRunner> Dataplane for Bmv2Target<R> {
    fn install_job(&mut self, spec: &JobSpec) -> Result<(), DataplaneError> {
        spec_fits(spec).map_err(DataplaneError::Rejected)?;
        if self.jobs.contains_key(&spec.id) {
            return Err(DataplaneError::Rejected(format!(
                "job {} is already installed",
                spec.id
            )));
        }
        if spec.id == u16::MAX {
            return Err(DataplaneError::Rejected(
                "job id 65535 has no multicast group".into(),
            ));
        }
        let end = spec.slot_base + spec.slot_count;
        if let Some((other, _)) = self
            .jobs
            .values()
            .find(|(o, _)| spec.slot_base < o.slot_base + o.slot_count && o.slot_base < end)
        {
            return Err(DataplaneError::Rejected(format!(
                "lease of job {} overlaps job {}'s",
                spec.id, other.id
            )));
        }

        let create = bmv2::node_create_commands(spec, &self.hosts)?;
        let output = run_checked(&mut self.runner, &create)?;
        let nodes = handles_after(&output, NODE_MARKER);
        let commands = bmv2::job_commands(spec, &self.hosts, &nodes)?;
        let output = run_checked(&mut self.runner, &commands)?;
        let entries = handles_after(&output, ENTRY_MARKER);
        let world = spec.members.len();
        // result_addr per rank, the lease, workers per rank.
        if entries.len() != 2 * world + 1 {
            return Err(DataplaneError::Target(format!(
                "simple_switch_CLI added {} of {} entries for job {}",
                entries.len(),
                2 * world + 1,
                spec.id
            )));
        }
        let handles = JobHandles {
            nodes,
            result_addr: entries[..world].to_vec(),
            lease: entries[world],
            workers: entries[world + 1..].to_vec(),
        };
        self.jobs.insert(spec.id, (spec.clone(), handles));
        Ok(())
    }

    fn remove_job(&mut self, job: u16) -> Result<(), DataplaneError> {
        let (_, handles) = self
            .jobs
            .get(&job)
            .ok_or_else(|| DataplaneError::Rejected(format!("job {job} is not installed")))?;
        let commands = bmv2::remove_commands(job, handles);
        run_checked(&mut self.runner, &commands)?;
        self.jobs.remove(&job);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_handles_in_order() {
        let out = "RuntimeCmd: Creating node with rid 0 , port map 10 and lag map\n\
                   node was created with handle 7\n\
                   Adding entry to exact match table x\nEntry has been added with handle 16777218\n\
                   node was created with handle 9\n";
        assert_eq!(handles_after(out, NODE_MARKER), vec![7, 9]);
        assert_eq!(handles_after(out, ENTRY_MARKER), vec![16777218]);
    }

    #[test]
    fn error_lines_are_failures() {
        assert!(
            first_error("RuntimeCmd: Error: Invalid table operation (DUPLICATE_ENTRY)").is_some()
        );
        assert!(first_error("*** Unknown syntax: foo").is_some());
        assert!(first_error("Entry has been added with handle 0\nSUCCESS").is_none());
    }
}
