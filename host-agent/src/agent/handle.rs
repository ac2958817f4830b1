//! The non-blocking form of the API: an [`Agent`] on a background thread,
//! fed through a channel. Operations run one after another in the order
//! they were submitted (all ranks must submit the same sequence).
//!
//! A buffer is anything that lends out a mutable slice and can move to the
//! agent's thread (`Vec<f32>`, or a language binding's view of memory it
//! pins for the duration): the agent reduces it in place and hands it back,
//! so no copy is made on the way in or out.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::{Agent, AgentError, AgentStats};
use packet_format::control::JobParams;

/// One operation for the agent's thread; it sends its own reply.
type Command = Box<dyn FnOnce(&mut Agent) + Send>;

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

    /// Waits at most `timeout` for the result; true if it is in.
    pub fn wait_timeout(&mut self, timeout: Duration) -> bool {
        if self.ready.is_none() {
            match self.rx.recv_timeout(timeout) {
                Ok(result) => self.ready = Some(result),
                Err(mpsc::RecvTimeoutError::Timeout) => return false,
                Err(mpsc::RecvTimeoutError::Disconnected) => self.ready = Some(Err(gone())),
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

impl AgentHandle {
    pub(super) fn spawn(mut agent: Agent) -> AgentHandle {
        let (tx, rx) = mpsc::channel::<Command>();
        let params = *agent.params();
        let rank = agent.rank();
        let thread = std::thread::Builder::new()
            .name(format!("ina-agent-{rank}"))
            .spawn(move || {
                for command in rx {
                    command(&mut agent);
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

    fn submit<T: Send + 'static>(
        &self,
        operation: impl FnOnce(&mut Agent) -> Result<T, AgentError> + Send + 'static,
    ) -> Pending<T> {
        let (reply, rx) = mpsc::channel();
        if let Some(tx) = &self.tx {
            // A receiver that hung up no longer wants the result. If the
            // thread is gone the command (and its reply sender) is dropped,
            // and the pending result reports that.
            let _ = tx.send(Box::new(move |agent: &mut Agent| {
                let _ = reply.send(operation(agent));
            }));
        }
        Pending::new(rx)
    }

    /// Submits an i32 allreduce (wrapping sum) of `data` in place; the
    /// buffer comes back with the result.
    pub fn allreduce_i32<B>(&self, mut data: B) -> Pending<B>
    where
        B: AsMut<[i32]> + Send + 'static,
    {
        self.submit(move |agent| agent.allreduce_i32(data.as_mut()).map(|()| data))
    }

    /// Submits an f32 allreduce (block fixed point, see [`Agent::allreduce_f32`])
    /// of `data` in place; the buffer comes back with the result.
    pub fn allreduce_f32<B>(&self, mut data: B) -> Pending<B>
    where
        B: AsMut<[f32]> + Send + 'static,
    {
        self.submit(move |agent| agent.allreduce_f32(data.as_mut()).map(|()| data))
    }

    /// Submits an i32 allreduce of `input` into `output` (out of place, see
    /// [`Agent::allreduce_i32_into`]); both buffers come back, `output`
    /// with the result.
    pub fn allreduce_i32_into<I, O>(&self, input: I, mut output: O) -> Pending<(I, O)>
    where
        I: AsRef<[i32]> + Send + 'static,
        O: AsMut<[i32]> + Send + 'static,
    {
        self.submit(move |agent| {
            agent
                .allreduce_i32_into(input.as_ref(), output.as_mut())
                .map(|()| (input, output))
        })
    }

    /// Submits an f32 allreduce of `input` into `output` (out of place, see
    /// [`Agent::allreduce_f32_into`]); both buffers come back, `output`
    /// with the result.
    pub fn allreduce_f32_into<I, O>(&self, input: I, mut output: O) -> Pending<(I, O)>
    where
        I: AsRef<[f32]> + Send + 'static,
        O: AsMut<[f32]> + Send + 'static,
    {
        self.submit(move |agent| {
            agent
                .allreduce_f32_into(input.as_ref(), output.as_mut())
                .map(|()| (input, output))
        })
    }

    /// The agent's counters once the operations submitted before are done.
    pub fn stats(&self) -> Pending<AgentStats> {
        self.submit(|agent| Ok(agent.stats()))
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
