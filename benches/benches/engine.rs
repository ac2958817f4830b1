//! Worker engine: cost per packet of `poll_transmit` + `handle_packet` over a
//! full allreduce of 1 MiB (i32 and f32), world 4, window 64, 64 and 256
//! elements per packet.
//!
//! `engine/worker`: rank 0's engine alone. The results it receives were
//! produced once, before timing, by a real `SwitchCore` fed by four engines
//! in memory (lockstep: every engine sends what its window allows, the
//! switch answers, the results are delivered); the bench replays rank 0's
//! side of that exchange into a fresh engine (same schedule, so every result
//! is accepted: checked). The recorded results lie back to back in one
//! buffer, read in order, as a receive ring would hold them. Engine creation and `start_*` (which copies the
//! tensor and, for f32, computes block exponents) are outside the timing.
//! Throughput is in packets sent (each also takes one result).
//!
//! `engine/system`: the whole in-memory exchange, four engines and the
//! switch core, timed together; throughput in packets through the switch.

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use ina_benches::engine_rig::{engine, replay, take, Inputs, Kind, Log, System, WORLD};

const ELEMENTS: [u16; 2] = [64, 256];

fn bench(c: &mut Criterion) {
    let now = Instant::now();
    for kind in [Kind::I32, Kind::F32] {
        let inputs = Inputs::new(kind);
        for elems in ELEMENTS {
            // Record rank 0's results from a real exchange.
            let mut system = System::new(&inputs, elems, now);
            let mut log = Log::default();
            system.run(Some(&mut log));
            let packets = system.engines[0].stats().packets_sent;
            let expected = take(&mut system.engines[0], kind);

            // The replay reproduces the exchange exactly.
            let mut buf = Vec::new();
            let mut e = engine(0, elems);
            inputs.start(&mut e, now, 0);
            assert_eq!(replay(&mut e, &log, now, &mut buf), packets);
            assert!(e.is_done());
            assert_eq!(e.stats().results_ignored, 0);
            assert_eq!(take(&mut e, kind), expected);

            let name = format!("{kind:?}").to_lowercase();
            let mut group = c.benchmark_group("engine/worker");
            group.throughput(Throughput::Elements(packets));
            group.bench_with_input(BenchmarkId::new(&name, elems), &elems, |b, &elems| {
                b.iter_batched(
                    || {
                        let mut e = engine(0, elems);
                        inputs.start(&mut e, now, 0);
                        e
                    },
                    |mut e| {
                        black_box(replay(&mut e, &log, now, &mut buf));
                        e
                    },
                    BatchSize::LargeInput,
                )
            });
            group.finish();

            let mut group = c.benchmark_group("engine/system");
            group.throughput(Throughput::Elements(packets * u64::from(WORLD)));
            group.bench_with_input(BenchmarkId::new(&name, elems), &elems, |b, &elems| {
                b.iter_batched(
                    || System::new(&inputs, elems, now),
                    |mut s| {
                        black_box(s.run(None));
                        s
                    },
                    BatchSize::LargeInput,
                )
            });
            group.finish();
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
