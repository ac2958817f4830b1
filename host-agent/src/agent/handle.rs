//! The non-blocking form of the API: an [`Agent`] on a background thread,
//! fed through a channel. Operations run one after another in the order
//! they were submitted (all ranks must submit the same sequence).

use std::sync::mpsc;
use std::thread::JoinHandle;

use super::{Agent, AgentError, AgentStats};
use packet_format::control::JobParams;

type Reply<T> = mpsc::Sender<Result<T, AgentError>>;

enum Command {
    I32(Vec<i32>, Reply<Vec<i32>>),
    F32(Vec<f32>, Reply<Vec<f32>>),
    Stats(Reply<AgentStats>),
}

/// The result of an operation submitted to an [`AgentHandle`], not yet known.
#[derive(Debug)]
pub struct Pending<T> {
    rx: mpsc::Receiver<Result<T, AgentError>>,
    ready: Option<Result<T, AgentError>>,
}

impl<T> Pending<T> {
    fn new(rx: mpsc::Receiver<Result<T, AgentError>>) -> Self {
        Pending { rx, ready: None }
    }

    /// Whether the result is in (then [`Pending::wait`] returns at once).
    pub fn is_ready(&mut self) -> bool {
        if self.ready.is_none() {
            match self.rx.try_recv() {
                Ok(result) => self.ready = Some(result),
                Err(mpsc::TryRecvError::Empty) => return false,
                Err(mpsc::TryRecvError::Disconnected) => self.ready = Some(Err(gone())),
            }
        }
        true
    }

    /// Blocks until the result is in.
    pub fn wait(self) -> Result<T, AgentError> {
        match self.ready {
            Some(result) => result,
            None => self.rx.recv().unwrap_or_else(|_| Err(gone())),
        }
    }
}

fn gone() -> AgentError {
    AgentError::Ended("the agent's background thread has stopped".into())
}

/// An [`Agent`] running on its own thread (from [`Agent::spawn`]).
/// Dropping the handle waits for the submitted operations, then leaves the job.
#[derive(Debug)]
pub struct AgentHandle {
    tx: Option<mpsc::Sender<Command>>,
    thread: Option<JoinHandle<Result<AgentStats, AgentError>>>,
    params: JobParams,
    rank: u16,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::I32(v, _) => write!(f, "I32({} elements)", v.len()),
            Command::F32(v, _) => write!(f, "F32({} elements)", v.len()),
            Command::Stats(_) => write!(f, "Stats"),
        }
    }
}

impl AgentHandle {
    pub(super) fn spawn(mut agent: Agent) -> AgentHandle {
        let (tx, rx) = mpsc::channel::<Command>();
        let params = *agent.params();
        let rank = agent.rank();
        let thread = std::thread::Builder::new()
            .name(format!("ina-agent-{rank}"))
            .spawn(move || {
                for command in rx {
                    // A receiver that hung up no longer wants the result.
                    match command {
                        Command::I32(mut data, reply) => {
                            let result = agent.allreduce_i32(&mut data).map(|()| data);
                            let _ = reply.send(result);
                        }
                        Command::F32(mut data, reply) => {
                            let result = agent.allreduce_f32(&mut data).map(|()| data);
                            let _ = reply.send(result);
                        }
                        Command::Stats(reply) => {
                            let _ = reply.send(Ok(agent.stats()));
                        }
                    }
                }
                agent.leave()
            })
            .expect("spawning a thread");
        AgentHandle {
            tx: Some(tx),
            thread: Some(thread),
            params,
            rank,
        }
    }

    fn submit<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Pending<T> {
        let (reply, rx) = mpsc::channel();
        if let Some(tx) = &self.tx {
            // If the thread is gone the command (and its reply sender) is
            // dropped, and the pending result reports that.
            let _ = tx.send(make(reply));
        }
        Pending::new(rx)
    }

    /// Submits an i32 allreduce (wrapping sum); the result comes back in the vector.
    pub fn allreduce_i32(&self, data: Vec<i32>) -> Pending<Vec<i32>> {
        self.submit(|reply| Command::I32(data, reply))
    }

    /// Submits an f32 allreduce (block fixed point, see [`Agent::allreduce_f32`]).
    pub fn allreduce_f32(&self, data: Vec<f32>) -> Pending<Vec<f32>> {
        self.submit(|reply| Command::F32(data, reply))
    }

    /// The agent's counters once the operations submitted before are done.
    pub fn stats(&self) -> Pending<AgentStats> {
        self.submit(Command::Stats)
    }

    /// The job's parameters.
    pub fn params(&self) -> &JobParams {
        &self.params
    }

    /// This worker's rank.
    pub fn rank(&self) -> u16 {
        self.rank
    }

    /// Waits for the submitted operations, leaves the job and returns the counters.
    pub fn leave(mut self) -> Result<AgentStats, AgentError> {
        self.finish()
    }

    fn finish(&mut self) -> Result<AgentStats, AgentError> {
        drop(self.tx.take());
        match self.thread.take() {
            Some(thread) => thread.join().unwrap_or_else(|_| Err(gone())),
            None => Err(gone()),
        }
    }
}

impl Drop for AgentHandle {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.finish();
        }
    }
}
