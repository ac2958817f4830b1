//! The workload of `benches/engine_tensor.rs` (see README.md): one worker's
//! whole allreduce of a large float32 tensor, with each of the engine's
//! three ways to hold its input, against a loopback that answers every
//! packet with itself (world 1). The kernel's copies are left out; what is
//! left is the agent's own CPU work per allreduce: the exponent pass, any
//! copy of the input, quantize, dequantize and the bookkeeping.

use std::time::Instant;

use host_agent::engine::{Engine, EngineConfig, Input, Output};
use packet_format::{MsgType, Packet};

/// How the caller hands its tensor to the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    /// `start_f32` (the engine copies the input) and `take_f32`.
    Owned,
    /// `start_f32_in_place`: the caller's buffer is input and output.
    InPlace,
    /// `start_f32_out_of_place`: input and output apart.
    OutOfPlace,
}

impl Storage {
    /// All three, in the order the bench reports them.
    pub const ALL: [Storage; 3] = [Storage::Owned, Storage::InPlace, Storage::OutOfPlace];

    /// The benchmark id's part for this way.
    pub fn name(self) -> &'static str {
        match self {
            Storage::Owned => "owned",
            Storage::InPlace => "in_place",
            Storage::OutOfPlace => "out_of_place",
        }
    }
}

/// One worker's engine and a loopback switch; the engine is reused from
/// one allreduce to the next, as an agent's is.
#[derive(Debug)]
pub struct Loopback {
    engine: Engine,
    /// One datagram buffer per window position (reused).
    datagrams: Vec<Vec<u8>>,
}

impl Loopback {
    /// An idle world-1 engine with `elements` per packet and `window` slots.
    pub fn new(elements: u16, window: u16) -> Loopback {
        let engine = Engine::new(EngineConfig {
            world: 1,
            window,
            slot_base: 0,
            elements_per_packet: elements,
            ..EngineConfig::default()
        })
        .expect("engine config");
        Loopback {
            engine,
            datagrams: vec![Vec::new(); usize::from(window)],
        }
    }

    /// One allreduce of `input`; the sum (world 1: the input in block fixed
    /// point) ends in `output`. In place, `output` must hold the input.
    pub fn allreduce(&mut self, storage: Storage, input: &[f32], output: &mut [f32]) {
        let now = Instant::now();
        let started = match storage {
            Storage::Owned => self.engine.start_f32(now, input),
            Storage::InPlace => self.engine.start_f32_in_place(now, output),
            Storage::OutOfPlace => self.engine.start_f32_out_of_place(now, input),
        };
        started.expect("start");
        while self.engine.is_busy() {
            let mut sent = 0;
            for datagram in &mut self.datagrams {
                let more = match storage {
                    Storage::Owned => self.engine.poll_transmit(now, datagram),
                    Storage::InPlace => {
                        datagram.clear();
                        self.engine
                            .poll_transmit_into(now, datagram, Output::F32(output))
                    }
                    Storage::OutOfPlace => {
                        datagram.clear();
                        self.engine
                            .poll_transmit_from(now, datagram, Input::F32(input))
                    }
                };
                if !more {
                    break;
                }
                // The switch's answer for one worker: the same packet as a result.
                Packet::new_unchecked(&mut datagram[..]).set_msg_type(MsgType::Result);
                sent += 1;
            }
            assert!(sent > 0, "the loopback exchange made no progress");
            for datagram in &self.datagrams[..sent] {
                match storage {
                    Storage::Owned => self.engine.handle_packet(now, datagram),
                    _ => self
                        .engine
                        .handle_packet_into(now, datagram, Output::F32(output)),
                }
            }
        }
        match storage {
            Storage::Owned => self.engine.take_f32(output),
            _ => self.engine.finish_in_place(),
        }
        .expect("finished");
        assert_eq!(self.engine.stats().results_ignored, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random_f32;

    #[test]
    fn every_storage_gives_the_same_sum() {
        let input = random_f32(3 * 16370 + 100, 9);
        let mut expected = vec![0f32; input.len()];
        Loopback::new(16370, 8).allreduce(Storage::Owned, &input, &mut expected);
        assert_ne!(expected, vec![0f32; input.len()]);
        let mut rig = Loopback::new(16370, 8);
        for storage in Storage::ALL {
            for _ in 0..2 {
                let mut output = if storage == Storage::InPlace {
                    input.clone()
                } else {
                    vec![f32::NAN; input.len()]
                };
                rig.allreduce(storage, &input, &mut output);
                assert_eq!(
                    output.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                    expected.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                    "{storage:?}"
                );
            }
        }
    }
}
