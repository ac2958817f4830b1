//! The switch's metrics, read from the core and the control plane's lease
//! figures. Names follow Prometheus conventions (`_total` for counters).

use crate::core::{DropReason, SwitchCore};

use super::exposition::{Family, Kind};

/// Lease figures the control plane owns (the core does not know names or the pool's layout).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeaseFigures {
    /// Slots in the pool.
    pub pool_slots: u64,
    /// Slots leased to jobs.
    pub leased_slots: u64,
    /// Jobs expired or failed since start.
    pub expired_jobs: u64,
}

/// Builds every metric family. `job_name` maps a job id to its name for the `job_name` label.
pub fn families(
    core: &SwitchCore,
    leases: LeaseFigures,
    job_name: &dyn Fn(u16) -> Option<String>,
) -> Vec<Family> {
    let c = core.counters();
    let mut packets = Family::new(
        "ina_packets_received_total",
        "Aggregation datagrams handed to the switch core.",
        Kind::Counter,
    );
    packets.sample(vec![], c.packets as f64);
    let mut bytes = Family::new(
        "ina_bytes_received_total",
        "Bytes of aggregation datagrams (header and payload).",
        Kind::Counter,
    );
    bytes.sample(vec![], c.bytes as f64);
    let mut drops = Family::new(
        "ina_drops_total",
        "Datagrams dropped by the switch core, by reason.",
        Kind::Counter,
    );
    for reason in DropReason::ALL {
        drops.sample(
            vec![("reason", reason.name().into())],
            c.dropped(reason) as f64,
        );
    }
    let mut results = Family::new(
        "ina_results_sent_total",
        "Results released by the core, by kind (one multicast counts once).",
        Kind::Counter,
    );
    results
        .sample(
            vec![("kind", "multicast".into())],
            c.multicast_results as f64,
        )
        .sample(vec![("kind", "unicast".into())], c.unicast_results as f64);
    let mut absorbed = Family::new(
        "ina_contributions_absorbed_total",
        "Contributions added without completing their slot.",
        Kind::Counter,
    );
    absorbed.sample(vec![], c.absorbed as f64);

    let mut job_packets = Family::new(
        "ina_job_packets_total",
        "Datagrams naming the job.",
        Kind::Counter,
    );
    let mut job_bytes = Family::new(
        "ina_job_bytes_total",
        "Bytes naming the job.",
        Kind::Counter,
    );
    let mut job_contrib = Family::new(
        "ina_job_contributions_total",
        "Contributions accepted into the job's slots.",
        Kind::Counter,
    );
    let mut job_retx = Family::new(
        "ina_job_retransmissions_total",
        "Admitted packets whose rank had already contributed.",
        Kind::Counter,
    );
    let mut job_completed = Family::new(
        "ina_job_completed_slots_total",
        "Rounds completed (results multicast) for the job.",
        Kind::Counter,
    );
    let mut job_drops = Family::new(
        "ina_job_drops_total",
        "Datagrams naming the job that were dropped, by reason.",
        Kind::Counter,
    );
    let mut job_inflight = Family::new(
        "ina_job_slots_in_flight",
        "Slots of the job with a round in progress.",
        Kind::Gauge,
    );
    let mut job_lease = Family::new(
        "ina_job_slots_leased",
        "Slots leased to the job.",
        Kind::Gauge,
    );
    let mut active = 0u64;
    for job in core.jobs() {
        active += 1;
        let Some(jc) = core.job_counters(job.id) else {
            continue;
        };
        let labels = || {
            vec![
                ("job", job.id.to_string()),
                ("job_name", job_name(job.id).unwrap_or_default()),
            ]
        };
        job_packets.sample(labels(), jc.packets as f64);
        job_bytes.sample(labels(), jc.bytes as f64);
        job_contrib.sample(labels(), jc.contributions as f64);
        job_retx.sample(labels(), jc.retransmissions as f64);
        job_completed.sample(labels(), jc.completed_slots as f64);
        job_inflight.sample(labels(), core.incomplete_slots(job.id).len() as f64);
        job_lease.sample(labels(), f64::from(job.slot_count));
        for reason in DropReason::ALL {
            let n = jc.dropped(reason);
            if n > 0 {
                let mut l = labels();
                l.push(("reason", reason.name().into()));
                job_drops.sample(l, n as f64);
            }
        }
    }
    let mut jobs = Family::new(
        "ina_active_jobs",
        "Jobs installed in the switch.",
        Kind::Gauge,
    );
    jobs.sample(vec![], active as f64);
    let mut pool = Family::new("ina_pool_slots", "Slots in the switch's pool.", Kind::Gauge);
    pool.sample(vec![], leases.pool_slots as f64);
    let mut leased = Family::new("ina_leased_slots", "Slots leased to jobs.", Kind::Gauge);
    leased.sample(vec![], leases.leased_slots as f64);
    let mut occupancy = Family::new(
        "ina_lease_occupancy_ratio",
        "Fraction of the pool leased to jobs.",
        Kind::Gauge,
    );
    let ratio = if leases.pool_slots == 0 {
        0.0
    } else {
        leases.leased_slots as f64 / leases.pool_slots as f64
    };
    occupancy.sample(vec![], ratio);
    let mut expired = Family::new(
        "ina_jobs_expired_total",
        "Jobs that failed or expired since the switch started.",
        Kind::Counter,
    );
    expired.sample(vec![], leases.expired_jobs as f64);

    vec![
        packets,
        bytes,
        drops,
        results,
        absorbed,
        jobs,
        pool,
        leased,
        occupancy,
        expired,
        job_packets,
        job_bytes,
        job_contrib,
        job_retx,
        job_completed,
        job_drops,
        job_inflight,
        job_lease,
    ]
}
