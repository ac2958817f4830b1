//! The embedded default: a UDP switch and N workers in one process, on
//! ephemeral loopback ports, running the allreduce benchmark of
//! [`host_agent::bench`] (every worker checks every result) and reporting
//! one table line per size for the whole job.
//!
//! The workers are threads, each with its own [`host_agent::Agent`] (own
//! sockets, own control connection), so the packets take the same path
//! through the kernel as with separate `host-agent` processes.

use std::net::SocketAddr;
use std::thread;
use std::time::Duration;

use host_agent::bench::{self, BenchConfig, SizeResult};
use host_agent::{Agent, AgentError, JoinOptions};

use crate::control::status::StatusReport;
use crate::core::Config;
use crate::udp::{Offloads, Server, ServerConfig, ServerError};

/// What the demo runs.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// Workers (threads), each one rank.
    pub workers: u16,
    /// The benchmark (type, sizes, iterations).
    pub bench: BenchConfig,
    /// Slots in flight per worker.
    pub window: u16,
    /// Int32 elements per packet (the switch is configured to allow it).
    pub elements_per_packet: u16,
    /// Probability that the switch drops a received datagram (loss injection).
    pub drop: f64,
    /// Seed of the loss injection.
    pub seed: u64,
    /// Initial retransmission timeout of the workers.
    pub retransmit_timeout: Duration,
}

/// The outcome of a demo.
#[derive(Debug)]
pub struct DemoReport {
    /// One line per size for the job: time is the slowest worker's median,
    /// packets/s and retransmissions are summed over workers, and the check
    /// fails if any worker's result was wrong.
    pub results: Vec<SizeResult>,
    /// Offloads the switch's data socket used.
    pub switch_offloads: Offloads,
    /// Offloads the workers' data sockets used (GSO, GRO).
    pub worker_offloads: (bool, bool),
    /// The switch's final status (counters per drop reason, control counters).
    pub switch_status: StatusReport,
}

impl DemoReport {
    /// Whether every worker's result was right for every size.
    pub fn ok(&self) -> bool {
        self.results.iter().all(SizeResult::ok)
    }
}

/// Why the demo could not run to the end.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The switch could not start or failed.
    #[error("switch: {0}")]
    Switch(#[from] ServerError),
    /// A worker failed.
    #[error("worker {rank}: {source}")]
    Worker {
        /// Its rank.
        rank: u16,
        /// What happened.
        source: AgentError,
    },
    /// The settings cannot work.
    #[error("{0}")]
    Invalid(String),
    /// A thread could not be started or panicked.
    #[error("thread: {0}")]
    Thread(String),
}

/// Starts the switch, runs every worker to the end, stops the switch.
pub fn run(config: &DemoConfig) -> Result<DemoReport, DemoError> {
    if config.workers == 0 {
        return Err(DemoError::Invalid("at least one worker is needed".into()));
    }
    let server = Server::bind(ServerConfig {
        core: Config {
            max_workers: Config::default().max_workers.max(config.workers),
            max_elements_per_packet: config.elements_per_packet,
            ..Config::default()
        },
        job_quota: config.window.max(1),
        drop: config.drop,
        seed: config.seed,
        log: false,
        ..ServerConfig::loopback_ephemeral()
    })?;
    let control = SocketAddr::V4(server.local_addrs().control);
    let switch_offloads = server.offloads();
    let switch = server
        .spawn()
        .map_err(|e| DemoError::Thread(e.to_string()))?;
    let outcome = run_workers(config, control);
    switch.shutdown();
    let switch_status = switch.join()?;
    let (per_worker, worker_offloads) = outcome?;
    Ok(DemoReport {
        results: combine(&per_worker),
        switch_offloads,
        worker_offloads,
        switch_status,
    })
}

/// A worker's lines and its offloads (GSO, GRO).
type WorkerResults = (Vec<SizeResult>, (bool, bool));
/// Every worker's lines and the offloads all of them used.
type WorkersResults = (Vec<Vec<SizeResult>>, (bool, bool));
type WorkerOutcome = Result<WorkerResults, AgentError>;

fn run_workers(config: &DemoConfig, control: SocketAddr) -> Result<WorkersResults, DemoError> {
    let threads: Vec<_> = (0..config.workers)
        .map(|rank| {
            let config = config.clone();
            thread::Builder::new()
                .name(format!("demo-worker-{rank}"))
                .spawn(move || -> WorkerOutcome {
                    let mut options =
                        JoinOptions::new("demo", rank, config.workers).control(control);
                    options.window = config.window;
                    options.elements_per_packet = config.elements_per_packet;
                    options.retransmit_timeout = config.retransmit_timeout;
                    options.max_retransmit_timeout = options
                        .max_retransmit_timeout
                        .max(config.retransmit_timeout);
                    let mut agent = Agent::join(options)?;
                    let offloads = agent.offloads();
                    let results = bench::run(&mut agent, &config.bench, |_| {})?;
                    agent.leave()?;
                    Ok((results, offloads))
                })
                .map_err(|e| DemoError::Thread(e.to_string()))
        })
        .collect::<Result<_, _>>()?;
    let mut per_worker = Vec::new();
    let mut offloads = (true, true);
    let mut first_error = None;
    for (rank, t) in threads.into_iter().enumerate() {
        match t.join() {
            Ok(Ok((results, o))) => {
                per_worker.push(results);
                offloads = (offloads.0 && o.0, offloads.1 && o.1);
            }
            Ok(Err(source)) => {
                first_error.get_or_insert(DemoError::Worker {
                    rank: rank as u16,
                    source,
                });
            }
            Err(_) => {
                first_error.get_or_insert(DemoError::Thread(format!("worker {rank} panicked")));
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok((per_worker, offloads)),
    }
}

/// One line per size for the whole job (see [`DemoReport::results`]).
fn combine(per_worker: &[Vec<SizeResult>]) -> Vec<SizeResult> {
    let Some(first) = per_worker.first() else {
        return Vec::new();
    };
    (0..first.len())
        .map(|i| {
            let lines: Vec<&SizeResult> = per_worker.iter().filter_map(|w| w.get(i)).collect();
            let slowest = lines
                .iter()
                .max_by_key(|r| r.time)
                .copied()
                .unwrap_or(&first[i]);
            let failure = lines
                .iter()
                .enumerate()
                .find_map(|(rank, r)| r.failure.as_ref().map(|f| format!("worker {rank}: {f}")));
            SizeResult {
                packets_per_s: lines.iter().map(|r| r.packets_per_s).sum(),
                retransmissions: lines.iter().map(|r| r.retransmissions).sum(),
                failure,
                ..slowest.clone()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use host_agent::bench::Dtype;

    #[test]
    fn small_demo_with_loss_is_verified() {
        let report = run(&DemoConfig {
            workers: 3,
            bench: BenchConfig {
                dtype: Dtype::I32,
                sizes: vec![4096, 64 << 10],
                iters: 2,
                warmup: 1,
                out_of_place: false,
            },
            window: 32,
            elements_per_packet: 64,
            drop: 0.02,
            seed: 3,
            retransmit_timeout: Duration::from_millis(5),
        })
        .unwrap();
        assert!(report.ok(), "{:?}", report.results);
        assert_eq!(report.results.len(), 2);
        assert!(report.results.iter().any(|r| r.retransmissions > 0));
        assert_eq!(report.switch_status.control.get("jobs_completed"), Some(&1));
    }

    #[test]
    fn out_of_place_demo_with_loss_is_verified() {
        let report = run(&DemoConfig {
            workers: 3,
            bench: BenchConfig {
                dtype: Dtype::F32,
                sizes: vec![64 << 10],
                iters: 2,
                warmup: 1,
                out_of_place: true,
            },
            window: 32,
            elements_per_packet: 64,
            drop: 0.02,
            seed: 5,
            retransmit_timeout: Duration::from_millis(5),
        })
        .unwrap();
        assert!(report.ok(), "{:?}", report.results);
        assert!(report.results[0].retransmissions > 0);
    }
}
