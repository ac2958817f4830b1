//! Names of the P4 objects the control plane writes, as the compilers name
//! them: `p4c-bm2-ss` prefixes an object with the path of control instances
//! (`IngressImpl.admission.workers`); BF Runtime does the same below
//! `pipe` (`pipe.Ingress.admission.workers`). Each name here is declared in
//! `p4/` (checked by `tests/p4config_golden.rs`).

/// Names in `p4/bmv2/ina_v1model.p4`.
pub mod bmv2 {
    /// Worker (admission) table and its action.
    pub const WORKERS: &str = "IngressImpl.admission.workers";
    /// Admits one rank of a job.
    pub const ADMIT: &str = "IngressImpl.admission.admit";
    /// Lease table: (job id, slot range), one entry per job.
    pub const LEASES: &str = "IngressImpl.admission.leases";
    /// Marks a slot as inside the job's lease.
    pub const IN_LEASE: &str = "IngressImpl.admission.in_lease";
    /// ICMP echo responder table (the twin only).
    pub const ECHO_REPLY: &str = "IngressImpl.icmp_echo.echo_reply";
    /// Answers an echo request to the switch's IP.
    pub const REPLY_ECHO: &str = "IngressImpl.icmp_echo.reply_echo";
    /// (job, rank) -> worker address, in egress.
    pub const RESULT_ADDR: &str = "EgressImpl.result_sender.result_addr";
    /// Rewrites a result copy's destination.
    pub const SET_WORKER_ADDR: &str = "EgressImpl.result_sender.set_worker_addr";
    /// Keyless table holding the switch's data-plane addresses.
    pub const SWITCH_IDENTITY: &str = "EgressImpl.result_sender.switch_identity";
    /// Sets the source addresses of results.
    pub const SET_SWITCH_IDENTITY: &str = "EgressImpl.result_sender.set_switch_identity";
    /// ARP responder table.
    pub const ARP_REPLY: &str = "IngressImpl.arp_icmp.arp_reply";
    /// Answers an ARP request for the switch's IP.
    pub const REPLY_ARP: &str = "IngressImpl.arp_icmp.reply_arp";
    /// L2 forwarding table.
    pub const L2_FORWARD: &str = "IngressImpl.forwarding.l2_forward";
    /// Forwards to one port.
    pub const FORWARD: &str = "IngressImpl.forwarding.forward";
    /// Registers reset for every leased (slot, set), index set * 8192 + slot.
    pub const SLOT_REGISTERS: [&str; 5] = [
        "IngressImpl.bitmap",
        "IngressImpl.round_seq",
        "IngressImpl.round_tag",
        "IngressImpl.worker_count",
        "IngressImpl.max_exponent",
    ];
}

/// Names in `p4/ina.p4` below `bfrt.<program>.pipe`.
pub mod tofino {
    /// P4 program name (the `bfrt.<name>` node).
    pub const PROGRAM: &str = "ina";
    /// Worker (admission) table.
    pub const WORKERS: &str = "Ingress.admission.workers";
    /// Admits one rank of a job.
    pub const ADMIT: &str = "admit";
    /// Lease table: (job id, slot range), one entry per job.
    pub const LEASES: &str = "Ingress.admission.leases";
    /// Marks a slot as inside the job's lease.
    pub const IN_LEASE: &str = "in_lease";
    /// (job, rank) -> worker address, in egress.
    pub const RESULT_ADDR: &str = "Egress.result_sender.result_addr";
    /// Rewrites a result copy's destination.
    pub const SET_WORKER_ADDR: &str = "set_worker_addr";
    /// Keyless table holding the switch's data-plane addresses.
    pub const SWITCH_IDENTITY: &str = "Egress.result_sender.switch_identity";
    /// Sets the source addresses of results.
    pub const SET_SWITCH_IDENTITY: &str = "set_switch_identity";
    /// ARP responder table.
    pub const ARP_REPLY: &str = "Ingress.arp_icmp.arp_reply";
    /// Answers an ARP request for the switch's IP.
    pub const REPLY_ARP: &str = "reply_arp";
    /// L2 forwarding table.
    pub const L2_FORWARD: &str = "Ingress.forwarding.l2_forward";
    /// Forwards to one port.
    pub const FORWARD: &str = "forward";
    /// Round seq per (slot, set), index set * 8192 + slot; reset to
    /// [`ROUND_RESET`].
    pub const ROUNDS: &str = "Ingress.round_checker.rounds";
    /// Value of a fresh round register: "one before seq 0".
    pub const ROUND_RESET: u32 = 0xffff_ffff;
    /// Seen bitmaps (set 0, set 1) per slot, index slot.
    pub const BITMAP: &str = "Ingress.bitmap_checker.bitmap";
    /// (tag, joined mask) per (slot, set).
    pub const JOINED: &str = "Ingress.worker_counter.joined";
    /// Maximum exponents per (slot, set).
    pub const MAX_EXPONENT: &str = "Ingress.exponent_max.max_exponent";
}

/// Multicast group of a job's results: job id + 1 (group 0 means "none").
pub fn job_mgid(job_id: u16) -> u32 {
    u32::from(job_id) + 1
}

/// The admission table's `start_mask` of a rank: its own bit and the bits of
/// the ranks a job of `world` does not have, so that a complete round's
/// joined mask is all ones (p4/worker_counter.p4).
pub fn start_mask(rank: usize, world: usize) -> u32 {
    let present = if world >= 32 {
        u32::MAX
    } else {
        (1u32 << world) - 1
    };
    (1u32 << rank) | !present
}

/// Index of the state of (slot, set) in the per-(slot, set) registers.
pub fn pool_index(slot: u16, set: u8) -> u32 {
    u32::from(set) * u32::from(packet_format::TOFINO_SLOTS) + u32::from(slot)
}
