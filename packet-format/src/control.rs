//! Control-plane messages: joins, leases, status, failure notices.
//!
//! Transport: one TCP connection per worker to the switch's
//! [`crate::CONTROL_PORT`], carrying newline-delimited JSON, one message a
//! line. The connection is the worker's membership: when it closes, the
//! worker has left and its job fails on the other workers. Tools (`status`)
//! open a connection, send one request, and read one reply.

use serde::{Deserialize, Serialize};
use std::net::SocketAddrV4;

/// A message from a client (worker or tool) to the switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Join job `job` as `rank` of `world`; the switch answers with
    /// [`Reply::Joined`] once every rank has joined.
    Join(JoinRequest),
    /// Leave the job cleanly; the lease is released when every rank has left.
    Leave,
    /// Ask for the switch's state (jobs, slots, counters).
    Status,
}

/// Parameters of a join.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    /// Job name chosen by the user; all ranks of a job use the same name.
    pub job: String,
    /// This worker's rank, `0..world`.
    pub rank: u16,
    /// Number of workers in the job.
    pub world: u16,
    /// Address the worker sends aggregation packets from and receives results on.
    pub data_addr: SocketAddrV4,
    /// Slots the worker wants in flight (the window); all ranks must agree.
    pub window: u16,
    /// Elements per packet; all ranks must agree.
    pub elements_per_packet: u16,
}

/// A message from the switch to a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// Every rank has joined: the job's parameters.
    Joined(JobParams),
    /// The request was refused.
    Error(ControlError),
    /// The job has failed (a worker left or went silent); no further results will come.
    JobFailed {
        /// Why, for the user.
        reason: String,
        /// Ranks that left or went silent, where known.
        ranks: Vec<u16>,
    },
    /// The answer to [`Request::Status`], as a JSON document.
    Status(serde_json::Value),
    /// Acknowledges [`Request::Leave`].
    Left,
}

/// What the switch assigned to a job, identical for all of its ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobParams {
    /// Job id carried in every packet.
    pub job_id: u16,
    /// Random key carried in every contribution.
    pub key: u32,
    /// World size.
    pub world: u16,
    /// First slot of the job's lease.
    pub slot_base: u16,
    /// Number of slots leased (the window).
    pub window: u16,
    /// Elements per packet.
    pub elements_per_packet: u16,
    /// Where aggregation packets go (the switch's data-plane address).
    pub switch_data_addr: SocketAddrV4,
    /// The IP multicast group (and port) the switch sends this job's
    /// results to, if it multicasts them: every rank joins it, and the
    /// kernel copies each result to the members instead of the switch
    /// sending one datagram per rank. The answer to a retransmitted
    /// contribution still comes by unicast to the rank's `data_addr`.
    /// Absent (`None`): every result comes by unicast.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_group: Option<SocketAddrV4>,
}

/// Why a control request was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct ControlError {
    /// Machine-readable reason.
    pub kind: ControlErrorKind,
    /// Human-readable explanation.
    pub message: String,
}

/// Machine-readable reasons for refusing a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlErrorKind {
    /// Another connection already holds this rank of this job.
    RankTaken,
    /// The rank is not below the world size.
    RankOutOfRange,
    /// World size, window or packet size differ from the job's first joiner.
    ParametersDiffer,
    /// The world size exceeds the switch's worker limit, or window/packet size its limits.
    LimitExceeded,
    /// Not enough free slots for the job's lease.
    PoolExhausted,
    /// The data address is already used by another worker.
    AddressInUse,
    /// The message could not be understood.
    BadRequest,
    /// The job failed before every rank joined.
    JobFailed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_is_one_json_line() {
        let req = Request::Join(JoinRequest {
            job: "resnet".into(),
            rank: 1,
            world: 4,
            data_addr: "127.0.0.1:5000".parse().unwrap(),
            window: 64,
            elements_per_packet: 64,
        });
        let text = serde_json::to_string(&req).unwrap();
        assert!(!text.contains('\n'));
        assert!(text.starts_with(r#"{"op":"join","job":"resnet""#), "{text}");
        assert_eq!(serde_json::from_str::<Request>(&text).unwrap(), req);
        let status: Request = serde_json::from_str(r#"{"op":"status"}"#).unwrap();
        assert_eq!(status, Request::Status);
    }

    #[test]
    fn result_group_is_optional_on_the_wire() {
        let mut params = JobParams {
            job_id: 1,
            key: 2,
            world: 4,
            slot_base: 0,
            window: 8,
            elements_per_packet: 64,
            switch_data_addr: "10.0.0.254:48864".parse().unwrap(),
            result_group: None,
        };
        let unicast = serde_json::to_string(&Reply::Joined(params)).unwrap();
        assert!(!unicast.contains("result_group"), "{unicast}");
        // A reply from a switch that predates the field still parses.
        assert_eq!(
            serde_json::from_str::<Reply>(&unicast).unwrap(),
            Reply::Joined(params)
        );
        params.result_group = Some("239.72.0.1:48864".parse().unwrap());
        let text = serde_json::to_string(&Reply::Joined(params)).unwrap();
        assert!(
            text.contains(r#""result_group":"239.72.0.1:48864""#),
            "{text}"
        );
        assert_eq!(
            serde_json::from_str::<Reply>(&text).unwrap(),
            Reply::Joined(params)
        );
    }
}
