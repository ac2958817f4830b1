//! One worker's whole float32 allreduce of 64 MiB against a loopback
//! (world 1, every packet answered by itself), for each way the engine can
//! hold the caller's tensor: owned (copied at the start), in place (copied
//! block by block as first sent) and out of place (never copied). Only the
//! allreduce is timed; before each one the caller's buffer gets the input
//! (in place) and a 64 MiB scratch buffer is read so that every way starts
//! with the tensor out of the cache, as after a backward pass.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ina_benches::random_f32;
use ina_benches::tensor_rig::{Loopback, Storage};

/// 64 MiB of float32.
const LEN: usize = 16 << 20;

/// Elements per packet and window: the emulator-only 64 KiB packets of the
/// unshaped topology runs, and the 1 KiB packets of the default.
const SHAPES: [(u16, u16); 2] = [(16370, 8), (256, 128)];

fn bench(c: &mut Criterion) {
    let input = random_f32(LEN, 1);
    let scratch = random_f32(LEN, 2);
    let mut output = vec![0f32; LEN];
    let mut group = c.benchmark_group("engine/tensor");
    group.sample_size(10);
    group.throughput(Throughput::Bytes((LEN * 4) as u64));
    for (elements, window) in SHAPES {
        for storage in Storage::ALL {
            let mut rig = Loopback::new(elements, window);
            let id = BenchmarkId::new(storage.name(), elements);
            group.bench_function(id, |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        if storage == Storage::InPlace {
                            output.copy_from_slice(&input);
                        }
                        black_box(scratch.iter().sum::<f32>());
                        let started = Instant::now();
                        rig.allreduce(storage, &input, &mut output);
                        total += started.elapsed();
                    }
                    total
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
