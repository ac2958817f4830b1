//! The emulator's [`Dataplane`]: the control plane programs the same
//! [`SwitchCore`] that the drivers feed with packets.

use crate::core::{DropReason, JobCounters, JobSpec, SwitchCore};
use crate::dataplane::{CounterSet, Dataplane, DataplaneError, JobActivity};

/// A [`SwitchCore`] as a control-plane target.
#[derive(Debug)]
pub struct EmulatedDataplane {
    core: SwitchCore,
}

impl EmulatedDataplane {
    /// Wraps a core.
    pub fn new(core: SwitchCore) -> Self {
        EmulatedDataplane { core }
    }

    /// The core, for reading.
    pub fn core(&self) -> &SwitchCore {
        &self.core
    }

    /// The core, for feeding packets.
    pub fn core_mut(&mut self) -> &mut SwitchCore {
        &mut self.core
    }
}

fn drops(drops: &[u64; DropReason::COUNT]) -> std::collections::BTreeMap<String, u64> {
    DropReason::ALL
        .iter()
        .map(|r| (r.name().to_string(), drops[r.index()]))
        .collect()
}

fn job_counters(c: &JobCounters) -> CounterSet {
    CounterSet {
        totals: [
            ("packets", c.packets),
            ("bytes", c.bytes),
            ("contributions", c.contributions),
            ("retransmissions", c.retransmissions),
            ("completed_slots", c.completed_slots),
            ("unicast_results", c.unicast_results),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
        drops: drops(&c.drops),
    }
}

impl Dataplane for EmulatedDataplane {
    fn install_job(&mut self, spec: &JobSpec) -> Result<(), DataplaneError> {
        self.core
            .install_job(spec.clone())
            .map_err(|e| DataplaneError::Rejected(e.to_string()))
    }

    fn remove_job(&mut self, job: u16) -> Result<(), DataplaneError> {
        self.core
            .remove_job(job)
            .map(drop)
            .ok_or_else(|| DataplaneError::Target(format!("job {job} is not installed")))
    }

    fn activity(&self, job: u16) -> Option<JobActivity> {
        Some(JobActivity {
            last_heard: self.core.last_heard(job)?.to_vec(),
            incomplete: self.core.incomplete_slots(job),
            counters: job_counters(self.core.job_counters(job)?),
        })
    }

    fn counters(&self) -> Option<CounterSet> {
        let c = self.core.counters();
        Some(CounterSet {
            totals: [
                ("packets", c.packets),
                ("bytes", c.bytes),
                ("absorbed", c.absorbed),
                ("multicast_results", c.multicast_results),
                ("unicast_results", c.unicast_results),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
            drops: drops(&c.drops),
        })
    }
}
