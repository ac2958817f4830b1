//! What the core counts: every datagram ends in exactly one of absorbed,
//! multicast, unicast or one drop reason, so the counters add up.

/// Why a datagram changed nothing. The order is the order of the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// Shorter than the header or than the payload it announces.
    Truncated,
    /// Unknown protocol version.
    BadVersion,
    /// A header field holds a forbidden value (unknown message type, set > 1).
    Malformed,
    /// A well-formed packet that is not a contribution (e.g. a result).
    NotContribution,
    /// No installed job has this id.
    UnknownJob,
    /// Rank >= the job's world size.
    UnknownRank,
    /// The source address is not the one registered for this rank.
    WrongSource,
    /// The key is not the job's key.
    BadKey,
    /// The slot is outside the job's leased range.
    SlotOutsideLease,
    /// More elements than the switch is configured for.
    TooManyElements,
    /// The element count differs from the round's first contribution.
    LengthMismatch,
    /// The sequence number is not the slot's current round (a delayed copy).
    StaleSequence,
    /// A retransmission to a slot that is not complete yet.
    DuplicateIncomplete,
}

impl DropReason {
    /// Number of reasons.
    pub const COUNT: usize = 13;

    /// Every reason, in check order (the index of [`DropReason::index`]).
    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::Truncated,
        DropReason::BadVersion,
        DropReason::Malformed,
        DropReason::NotContribution,
        DropReason::UnknownJob,
        DropReason::UnknownRank,
        DropReason::WrongSource,
        DropReason::BadKey,
        DropReason::SlotOutsideLease,
        DropReason::TooManyElements,
        DropReason::LengthMismatch,
        DropReason::StaleSequence,
        DropReason::DuplicateIncomplete,
    ];

    /// Stable snake_case name, used in metrics and logs.
    pub const fn name(self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::BadVersion => "bad_version",
            DropReason::Malformed => "malformed",
            DropReason::NotContribution => "not_contribution",
            DropReason::UnknownJob => "unknown_job",
            DropReason::UnknownRank => "unknown_rank",
            DropReason::WrongSource => "wrong_source",
            DropReason::BadKey => "bad_key",
            DropReason::SlotOutsideLease => "slot_outside_lease",
            DropReason::TooManyElements => "too_many_elements",
            DropReason::LengthMismatch => "length_mismatch",
            DropReason::StaleSequence => "stale_sequence",
            DropReason::DuplicateIncomplete => "duplicate_incomplete",
        }
    }

    /// Position in [`DropReason::ALL`] and in the `drops` arrays.
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for DropReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Switch-wide counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Datagrams handed to the core.
    pub packets: u64,
    /// Their bytes (aggregation header and payload).
    pub bytes: u64,
    /// Drops, indexed by [`DropReason::index`].
    pub drops: [u64; DropReason::COUNT],
    /// Contributions added without completing their slot.
    pub absorbed: u64,
    /// Results multicast (one per completed round).
    pub multicast_results: u64,
    /// Results unicast to a retransmitting worker.
    pub unicast_results: u64,
}

impl Counters {
    /// Drops for one reason.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()]
    }

    /// Drops for all reasons.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }
}

/// Counters of one job: every datagram that named an installed job (and so
/// passed parsing) is counted here as well as in [`Counters`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobCounters {
    /// Datagrams naming this job.
    pub packets: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Contributions accepted into a slot (absorbed or completing).
    pub contributions: u64,
    /// Admitted packets whose rank bit was already set (unicast, stale or duplicate).
    pub retransmissions: u64,
    /// Rounds completed (results multicast).
    pub completed_slots: u64,
    /// Results unicast to a retransmitting worker.
    pub unicast_results: u64,
    /// Drops, indexed by [`DropReason::index`] (only job-level reasons occur).
    pub drops: [u64; DropReason::COUNT],
}

impl JobCounters {
    /// Drops for one reason.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_in_index_order_with_unique_names() {
        for (i, reason) in DropReason::ALL.iter().enumerate() {
            assert_eq!(reason.index(), i);
        }
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
        assert_eq!(DropReason::UnknownJob.name(), "unknown_job");
        assert_eq!(
            DropReason::SlotOutsideLease.to_string(),
            "slot_outside_lease"
        );
    }
}
