//! The bench's own inputs and checks (`host_agent::bench::inputs`): what
//! every rank of `host-agent bench`, `switch-emu demo` and `topo bench`
//! does between two timed allreduces of a 64 MiB tensor (world 4): make
//! its input, and check its share of the result's blocks. Not timed by
//! those commands, but it sets how long their runs take.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use host_agent::bench::inputs::{check_f32, check_i32, fill_f32, fill_i32, Share};

/// 64 MiB of 4-byte elements.
const LEN: usize = 16 << 20;
const WORLD: u16 = 4;
const ITERATION: u32 = 7;
/// The share rank 1 checks.
const SHARE: Share = Share {
    index: 1,
    of: WORLD,
};

fn bench(c: &mut Criterion) {
    let mut f32_sum = vec![0f32; LEN];
    let mut i32_sum = vec![0i32; LEN];
    let (mut floats, mut ints) = (vec![0f32; LEN], vec![0i32; LEN]);
    for rank in 0..WORLD {
        fill_f32(rank, ITERATION, &mut floats);
        fill_i32(rank, ITERATION, &mut ints);
        for (s, x) in f32_sum.iter_mut().zip(&floats) {
            *s += *x;
        }
        for (s, x) in i32_sum.iter_mut().zip(&ints) {
            *s = s.wrapping_add(*x);
        }
    }
    let mut group = c.benchmark_group("bench_inputs");
    // One iteration takes tens of milliseconds: few samples keep it short.
    group.sample_size(10);
    group.throughput(Throughput::Bytes((LEN * 4) as u64));
    group.bench_function("fill_f32", |b| {
        b.iter(|| fill_f32(0, black_box(ITERATION), &mut floats))
    });
    group.bench_function("fill_i32", |b| {
        b.iter(|| fill_i32(0, black_box(ITERATION), &mut ints))
    });
    // The result is the f32 sum of the inputs: within the bound of a
    // quantized one, so every block is checked to the end.
    group.bench_function("check_f32/256", |b| {
        b.iter(|| check_f32(WORLD, black_box(ITERATION), 256, SHARE, &f32_sum).unwrap())
    });
    group.bench_function("check_i32", |b| {
        b.iter(|| check_i32(WORLD, black_box(ITERATION), SHARE, &i32_sum).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
