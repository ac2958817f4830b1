//! Parameters of one worker's engine, fixed for the life of a job.

use std::time::Duration;

use packet_format::control::JobParams;
use packet_format::TOFINO_ELEMENTS_PER_PACKET;

use super::EngineError;

/// Initial retransmission timeout of a window position.
pub const DEFAULT_RETRANSMIT_TIMEOUT: Duration = Duration::from_millis(2);
/// Cap of the exponential backoff.
pub const DEFAULT_MAX_RETRANSMIT_TIMEOUT: Duration = Duration::from_millis(100);
/// How long a packet may wait for its result before [`super::Event::Stalled`].
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(5);

/// What an engine needs to know about its job. All ranks of a job must use
/// the same values except `rank` (the switch's lease fixes the rest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Job id carried in every packet.
    pub job_id: u16,
    /// Per-job key carried in every packet.
    pub key: u32,
    /// This worker's rank, `0..world`.
    pub rank: u16,
    /// Number of workers.
    pub world: u16,
    /// First slot of the job's lease.
    pub slot_base: u16,
    /// Slots in flight (the lease's size).
    pub window: u16,
    /// Elements per packet (E).
    pub elements_per_packet: u16,
    /// Retransmission timeout before a round trip has been measured, and
    /// its floor after: measured round trips set it to srtt + 4·rttvar
    /// (RFC 6298) when that is longer, so a large window or world does not
    /// retransmit packets whose results are merely late.
    pub retransmit_timeout: Duration,
    /// Cap of the exponential backoff and of the measured timeout.
    pub max_retransmit_timeout: Duration,
    /// A packet without its result for this long raises [`super::Event::Stalled`].
    pub stall_timeout: Duration,
}

impl Default for EngineConfig {
    /// A single-worker job 0 on slots `0..64` with Tofino-sized packets and
    /// the default timeouts; meant for struct-update syntax.
    fn default() -> Self {
        EngineConfig {
            job_id: 0,
            key: 0,
            rank: 0,
            world: 1,
            slot_base: 0,
            window: 64,
            elements_per_packet: TOFINO_ELEMENTS_PER_PACKET,
            retransmit_timeout: DEFAULT_RETRANSMIT_TIMEOUT,
            max_retransmit_timeout: DEFAULT_MAX_RETRANSMIT_TIMEOUT,
            stall_timeout: DEFAULT_STALL_TIMEOUT,
        }
    }
}

impl EngineConfig {
    /// The configuration for `rank` of a job the control plane set up,
    /// with the default timeouts.
    pub fn from_params(p: &JobParams, rank: u16) -> Self {
        EngineConfig {
            job_id: p.job_id,
            key: p.key,
            rank,
            world: p.world,
            slot_base: p.slot_base,
            window: p.window,
            elements_per_packet: p.elements_per_packet,
            ..EngineConfig::default()
        }
    }

    /// Checks the values an engine relies on.
    pub fn validate(&self) -> Result<(), EngineError> {
        let invalid = |msg: &str| Err(EngineError::InvalidConfig(msg.to_string()));
        if self.world == 0 {
            return invalid("world must be at least 1");
        }
        if self.rank >= self.world {
            return invalid("rank must be below world");
        }
        if self.window == 0 {
            return invalid("window must be at least 1");
        }
        if u32::from(self.slot_base) + u32::from(self.window) > u32::from(u16::MAX) + 1 {
            return invalid("slot_base + window exceeds the 16-bit slot space");
        }
        if self.elements_per_packet == 0 {
            return invalid("elements_per_packet must be at least 1");
        }
        if self.retransmit_timeout.is_zero() {
            return invalid("retransmit_timeout must be positive");
        }
        if self.max_retransmit_timeout < self.retransmit_timeout {
            return invalid("max_retransmit_timeout must be at least retransmit_timeout");
        }
        if self.stall_timeout.is_zero() {
            return invalid("stall_timeout must be positive");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        EngineConfig::default().validate().unwrap();
    }

    #[test]
    fn from_params_copies_the_lease() {
        let p = JobParams {
            job_id: 7,
            key: 9,
            world: 4,
            slot_base: 100,
            window: 16,
            elements_per_packet: 256,
            switch_data_addr: "127.0.0.1:48864".parse().unwrap(),
            result_group: None,
        };
        let c = EngineConfig::from_params(&p, 3);
        assert_eq!((c.job_id, c.key, c.rank, c.world), (7, 9, 3, 4));
        assert_eq!(
            (c.slot_base, c.window, c.elements_per_packet),
            (100, 16, 256)
        );
        assert_eq!(c.retransmit_timeout, DEFAULT_RETRANSMIT_TIMEOUT);
        c.validate().unwrap();
    }

    #[test]
    fn invalid_values_are_rejected() {
        let base = EngineConfig::default();
        let cases = [
            EngineConfig {
                world: 0,
                ..base.clone()
            },
            EngineConfig {
                rank: 1,
                ..base.clone()
            },
            EngineConfig {
                window: 0,
                ..base.clone()
            },
            EngineConfig {
                slot_base: u16::MAX,
                window: 2,
                ..base.clone()
            },
            EngineConfig {
                elements_per_packet: 0,
                ..base.clone()
            },
            EngineConfig {
                retransmit_timeout: Duration::ZERO,
                ..base.clone()
            },
            EngineConfig {
                max_retransmit_timeout: Duration::from_micros(1),
                ..base.clone()
            },
            EngineConfig {
                stall_timeout: Duration::ZERO,
                ..base.clone()
            },
        ];
        for c in cases {
            assert!(
                matches!(c.validate(), Err(EngineError::InvalidConfig(_))),
                "{c:?}"
            );
        }
        EngineConfig {
            slot_base: u16::MAX,
            window: 1,
            ..base
        }
        .validate()
        .unwrap();
    }
}
