//! Quantizer: `block_exponent`, `quantize` and `dequantize` over a 64 MiB
//! float32 tensor, block by block as the engine calls them (per-block
//! sizes 64 and 256, world 4). Throughput is in bytes of the float32
//! tensor (input for the first two, output for `dequantize`); each also
//! writes an i32/f32 array of the same size (except `block_exponent`).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use host_agent::quantize::{block_exponent, clamp_limit, dequantize, quantize, scale};
use ina_benches::random_f32;
use packet_format::NO_EXPONENT;

/// 64 MiB of float32.
const LEN: usize = 16 << 20;
const BLOCKS: [usize; 2] = [64, 256];
const WORLD: u16 = 4;

fn scale_of(e: i16) -> f64 {
    if e == NO_EXPONENT {
        1.0
    } else {
        scale(WORLD, e)
    }
}

fn bench(c: &mut Criterion) {
    let data = random_f32(LEN, 7);
    let mut quantized = vec![0i32; LEN];
    let mut restored = vec![0f32; LEN];
    let limit = clamp_limit(WORLD);
    let mut group = c.benchmark_group("quantize");
    // One iteration takes milliseconds: few samples keep the run short.
    group.sample_size(10);
    group.throughput(Throughput::Bytes((LEN * 4) as u64));
    for block in BLOCKS {
        let exponents: Vec<i16> = data.chunks(block).map(block_exponent).collect();
        group.bench_with_input(
            BenchmarkId::new("block_exponent", block),
            &block,
            |b, &block| {
                b.iter(|| {
                    black_box(&data)
                        .chunks(block)
                        .map(block_exponent)
                        .fold(0i32, |acc, e| acc.wrapping_add(i32::from(e)))
                })
            },
        );
        group.bench_with_input(BenchmarkId::new("quantize", block), &block, |b, &block| {
            b.iter(|| {
                for ((x, q), &e) in black_box(&data)
                    .chunks(block)
                    .zip(quantized.chunks_mut(block))
                    .zip(&exponents)
                {
                    quantize(x, scale_of(e), limit, q);
                }
                black_box(quantized[LEN - 1])
            })
        });
        group.bench_with_input(
            BenchmarkId::new("dequantize", block),
            &block,
            |b, &block| {
                b.iter(|| {
                    for ((q, y), &e) in black_box(&quantized)
                        .chunks(block)
                        .zip(restored.chunks_mut(block))
                        .zip(&exponents)
                    {
                        dequantize(q, scale_of(e), y);
                    }
                    black_box(restored[LEN - 1])
                })
            },
        );
    }
    group.finish();
}

/// A memcpy of the same 64 MiB: the memory speed the quantizer is compared with.
fn baseline(c: &mut Criterion) {
    let data = random_f32(LEN, 7);
    let mut copy = vec![0f32; LEN];
    let mut group = c.benchmark_group("quantize");
    group.sample_size(10);
    group.throughput(Throughput::Bytes((LEN * 4) as u64));
    group.bench_function("memcpy", |b| {
        b.iter(|| {
            copy.copy_from_slice(black_box(&data));
            black_box(copy[LEN - 1])
        })
    });
    group.finish();
}

criterion_group!(benches, bench, baseline);
criterion_main!(benches);
