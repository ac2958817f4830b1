//! `simple_switch_CLI` commands for the BMv2 twin (`p4/bmv2/ina_v1model.p4`).
//!
//! Order within a job matters: slot registers are reset and results can be
//! addressed and replicated before the admission entries make the job's
//! packets count, so a job never sees a half-configured switch. Removal
//! goes the other way round: admission first.

use super::names::{self, bmv2 as n};
use super::{HostTable, JobFile, P4ConfigError, SwitchAddr};
use crate::core::JobSpec;
use crate::dataplane::DataplaneError;

/// Switch-wide entries: the switch's addresses for results, ARP and ICMP
/// echo, and L2 forwarding to every known host.
pub fn base_commands(switch: &SwitchAddr, hosts: &HostTable) -> Vec<String> {
    let mut out = vec![
        format!(
            "table_set_default {} {} {} {}",
            n::SWITCH_IDENTITY,
            n::SET_SWITCH_IDENTITY,
            switch.mac,
            switch.ip
        ),
        format!(
            "table_add {} {} {} => {}",
            n::ARP_REPLY,
            n::REPLY_ARP,
            switch.ip,
            switch.mac
        ),
        format!(
            "table_add {} {} {} =>",
            n::ECHO_REPLY,
            n::REPLY_ECHO,
            switch.ip
        ),
    ];
    for host in hosts.values() {
        out.push(format!(
            "table_add {} {} {} => {}",
            n::L2_FORWARD,
            n::FORWARD,
            host.mac,
            host.port
        ));
    }
    out
}

/// One multicast node per rank (replication id = rank, on the rank's port).
/// BMv2 answers each with a node handle that [`job_commands`] needs.
pub fn node_create_commands(
    spec: &JobSpec,
    hosts: &HostTable,
) -> Result<Vec<String>, DataplaneError> {
    spec.members
        .iter()
        .enumerate()
        .map(|(rank, member)| {
            let host = hosts.get(member.ip()).ok_or_else(|| {
                DataplaneError::Rejected(format!("no MAC/port known for worker {}", member.ip()))
            })?;
            Ok(format!("mc_node_create {rank} {}", host.port))
        })
        .collect()
}

/// Register resets of the leased slots (both sets): a fresh lease must not
/// inherit a previous job's bitmaps, rounds or counts. (The twin keeps a
/// valid flag in `round_tag`, so 0 is the fresh state of every register.)
pub fn reset_commands(spec: &JobSpec) -> Vec<String> {
    let mut out = Vec::new();
    for slot in spec.slot_base..spec.slot_base + spec.slot_count {
        for set in 0..2u8 {
            let index = names::pool_index(slot, set);
            for register in n::SLOT_REGISTERS {
                out.push(format!("register_write {register} {index} 0"));
            }
        }
    }
    out
}

/// Everything of one job after its nodes exist: resets, result addresses,
/// the multicast group and its nodes, then admission (the lease, then the
/// workers). The table entries come out in the order result_addr (rank
/// 0..n), leases (one), workers (rank 0..n).
pub fn job_commands(
    spec: &JobSpec,
    hosts: &HostTable,
    node_handles: &[u32],
) -> Result<Vec<String>, DataplaneError> {
    if node_handles.len() != spec.members.len() {
        return Err(DataplaneError::Target(format!(
            "{} multicast nodes for {} ranks",
            node_handles.len(),
            spec.members.len()
        )));
    }
    let mgid = names::job_mgid(spec.id);
    let mut out = reset_commands(spec);
    for (rank, member) in spec.members.iter().enumerate() {
        let host = hosts.get(member.ip()).ok_or_else(|| {
            DataplaneError::Rejected(format!("no MAC/port known for worker {}", member.ip()))
        })?;
        out.push(format!(
            "table_add {} {} {} {rank} => {} {} {}",
            n::RESULT_ADDR,
            n::SET_WORKER_ADDR,
            spec.id,
            host.mac,
            member.ip(),
            member.port()
        ));
    }
    out.push(format!("mc_mgrp_create {mgid}"));
    for handle in node_handles {
        out.push(format!("mc_node_associate {mgid} {handle}"));
    }
    // Range match: `first->last` inclusive, then a priority (required by
    // simple_switch_CLI for range tables; leases of one job never overlap).
    out.push(format!(
        "table_add {} {} {} {}->{} => 1",
        n::LEASES,
        n::IN_LEASE,
        spec.id,
        spec.slot_base,
        spec.slot_base + spec.slot_count - 1
    ));
    let world = spec.members.len();
    for (rank, member) in spec.members.iter().enumerate() {
        out.push(format!(
            "table_add {} {} {} {rank} {} {} => {:#x} {:#x} {} {mgid} {:#x}",
            n::WORKERS,
            n::ADMIT,
            spec.id,
            member.ip(),
            member.port(),
            1u64 << rank,
            names::start_mask(rank, world),
            spec.world,
            spec.key
        ));
    }
    Ok(out)
}

/// Handles BMv2 returned when a job was installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobHandles {
    /// Multicast node per rank.
    pub nodes: Vec<u32>,
    /// `result_addr` entry per rank.
    pub result_addr: Vec<u32>,
    /// The job's `leases` entry.
    pub lease: u32,
    /// `workers` (admission) entry per rank.
    pub workers: Vec<u32>,
}

/// Removes a job: admission first (its packets stop counting at once), then
/// its lease, result addresses, the multicast group and its nodes.
pub fn remove_commands(job: u16, handles: &JobHandles) -> Vec<String> {
    let mgid = names::job_mgid(job);
    let mut out = Vec::new();
    for h in &handles.workers {
        out.push(format!("table_delete {} {h}", n::WORKERS));
    }
    out.push(format!("table_delete {} {}", n::LEASES, handles.lease));
    for h in &handles.result_addr {
        out.push(format!("table_delete {} {h}", n::RESULT_ADDR));
    }
    for h in &handles.nodes {
        out.push(format!("mc_node_dissociate {mgid} {h}"));
    }
    out.push(format!("mc_mgrp_destroy {mgid}"));
    for h in &handles.nodes {
        out.push(format!("mc_node_destroy {h}"));
    }
    out
}

/// A command file for a freshly started `simple_switch` (pipe it into
/// `simple_switch_CLI --thrift-port N`). It assumes the fresh switch hands
/// out multicast node handles 0, 1, 2, ... in creation order, as BMv2 does;
/// to change a running switch use [`super::bmv2_target::Bmv2Target`], which
/// reads the handles back instead.
pub fn command_file(file: &JobFile) -> Result<String, P4ConfigError> {
    let hosts = file.hosts()?;
    let invalid = |e: DataplaneError| P4ConfigError::Invalid(e.to_string());
    let mut lines = base_commands(&file.switch, &hosts);
    let mut next_node = 0u32;
    for job in &file.jobs {
        let spec = job.spec();
        let create = node_create_commands(&spec, &hosts).map_err(invalid)?;
        let handles: Vec<u32> = (next_node..next_node + create.len() as u32).collect();
        next_node += create.len() as u32;
        lines.extend(create);
        lines.extend(job_commands(&spec, &hosts, &handles).map_err(invalid)?);
    }
    let mut text = lines.join("\n");
    text.push('\n');
    Ok(text)
}
