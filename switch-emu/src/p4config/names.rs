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
    /// Round (seq, tag) pairs per (slot, set), index set * 8192 + slot.
    pub const ROUNDS: &str = "Ingress.bitmap_checker.rounds";
    /// Seen bitmaps (set 0, set 1) per slot, index slot.
    pub const BITMAP: &str = "Ingress.bitmap_checker.bitmap";
    /// Contribution counts per (slot, set).
    pub const WORKER_COUNT: &str = "Ingress.worker_counter.worker_count";
    /// Maximum exponents per (slot, set).
    pub const MAX_EXPONENT: &str = "Ingress.exponent_max.max_exponent";
}

/// Multicast group of a job's results: job id + 1 (group 0 means "none").
pub fn job_mgid(job_id: u16) -> u32 {
    u32::from(job_id) + 1
}

/// Index of the state of (slot, set) in the per-(slot, set) registers.
pub fn pool_index(slot: u16, set: u8) -> u32 {
    u32::from(set) * u32::from(packet_format::TOFINO_SLOTS) + u32::from(slot)
}
