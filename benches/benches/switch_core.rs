//! Switch core: cost of `SwitchCore::handle_packet` per packet, by element
//! count (64, 256, 1024) and world size (4, 32).
//!
//! One iteration is a pass of one round over every slot of a 256-slot lease:
//! for each slot, every rank's contribution (the last one completes the slot
//! and writes the result into `out`, as a driver would multicast it). Each
//! rank has one packet buffer whose slot, set and seq fields are rewritten
//! before each call (three stores, counted in the figure), so that the
//! sequence advances as a real job's does and every packet is accepted. The
//! buffers stay in cache, as a batch just copied in by `recvmmsg` would.
//! The same workload is reported twice: in packets and in elements.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ina_benches::core_rig::{Round, SLOTS};

const ELEMENTS: [u16; 3] = [64, 256, 1024];
const WORLDS: [u16; 2] = [4, 32];
fn bench(c: &mut Criterion, unit: &str) {
    let mut group = c.benchmark_group(format!("switch_core/{unit}"));
    for world in WORLDS {
        for elems in ELEMENTS {
            let mut round = Round::new(world, elems);
            // Two warm passes check that every slot completes exactly once
            // per pass (the sequence and set rotation are right).
            assert_eq!(round.pass(), u64::from(SLOTS));
            assert_eq!(round.pass(), u64::from(SLOTS));
            let packets = round.packets_per_pass();
            group.throughput(Throughput::Elements(match unit {
                "packets" => packets,
                _ => packets * u64::from(elems),
            }));
            group.bench_with_input(
                BenchmarkId::new(format!("world{world}"), elems),
                &elems,
                |b, _| b.iter(|| black_box(round.pass())),
            );
        }
    }
    group.finish();
}

fn packets(c: &mut Criterion) {
    bench(c, "packets");
}

fn elements(c: &mut Criterion) {
    bench(c, "elements");
}

criterion_group!(benches, packets, elements);
criterion_main!(benches);
