//! The switch-core workload of `benches/switch_core.rs` (see README.md).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

use packet_format::{Flags, MsgType, Packet, Repr};
use switch_emu::core::{Config, JobSpec, SwitchCore, Verdict};

use crate::random_i32;

/// Slots leased to the job, each visited once per iteration.
pub const SLOTS: u16 = 256;

/// A job installed on a core, and one contribution buffer per rank.
#[derive(Debug)]
pub struct Round {
    core: SwitchCore,
    members: Vec<SocketAddrV4>,
    packets: Vec<Vec<u8>>,
    out: Vec<u8>,
    now: Instant,
    /// Global packet counter of the next round (sequence of the job).
    counter: u64,
}

impl Round {
    pub fn new(world: u16, elems: u16) -> Round {
        let config = Config {
            max_workers: 32,
            slots: SLOTS,
            max_elements_per_packet: elems,
        };
        let mut core = SwitchCore::new(config).expect("config");
        let members: Vec<SocketAddrV4> = (0..world)
            .map(|r| SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1 + r as u8), 40_000))
            .collect();
        let key = 0x5eed_cafe;
        core.install_job(JobSpec {
            id: 1,
            key,
            slot_base: 0,
            slot_count: SLOTS,
            world,
            members: members.clone(),
        })
        .expect("job");
        let packets = (0..world)
            .map(|rank| {
                let repr = Repr {
                    msg_type: MsgType::Contribution,
                    set: false,
                    flags: Flags::default(),
                    job_id: 1,
                    rank,
                    key,
                    seq: 0,
                    slot: 0,
                    elem_count: elems,
                    exponent: 0,
                };
                let mut bytes = Vec::new();
                let values = random_i32(usize::from(elems), u64::from(rank));
                repr.emit_to_vec(&values, &mut bytes);
                bytes
            })
            .collect();
        Round {
            core,
            members,
            packets,
            out: Vec::with_capacity(usize::from(elems) * 4 + 64),
            now: Instant::now(),
            counter: 0,
        }
    }

    /// Packets handled by one [`Round::pass`].
    pub fn packets_per_pass(&self) -> u64 {
        u64::from(SLOTS) * self.packets.len() as u64
    }

    /// One round on every slot; returns the number of results multicast.
    pub fn pass(&mut self) -> u64 {
        let window = u64::from(SLOTS);
        let mut results = 0;
        for _ in 0..SLOTS {
            let c = self.counter;
            self.counter += 1;
            for (packet, src) in self.packets.iter_mut().zip(&self.members) {
                let mut view = Packet::new_unchecked(&mut packet[..]);
                view.set_slot((c % window) as u16);
                view.set_set(((c / window) % 2) as u8);
                view.set_seq(c as u32);
                match self
                    .core
                    .handle_packet(self.now, *src, packet, &mut self.out)
                {
                    Verdict::Multicast { .. } => results += 1,
                    Verdict::Absorbed => {}
                    other => panic!("unexpected verdict {other:?}"),
                }
            }
        }
        results
    }
}
