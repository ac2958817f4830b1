//! Runs one bench workload a fixed number of times, for deterministic
//! instruction counts under callgrind (wall-clock figures on a shared,
//! loaded machine are noisy). Only the `measured_*` functions are meant to
//! be collected:
//!
//! ```text
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='instructions::measured*' \
//!     target/release/examples/instructions core 4 64
//! ```
//! The program prints how many packets (or bytes) the collected part
//! handled; divide the reported `Ir` total by it.

use std::hint::black_box;
use std::time::Instant;

use host_agent::quantize::{clamp_limit, dequantize, quantize, scale};
use ina_benches::core_rig::Round;
use ina_benches::engine_rig::{engine, replay, take, Inputs, Kind, Log, System};
use ina_benches::random_f32;

#[inline(never)]
fn measured_core(round: &mut Round, passes: u32) -> u64 {
    (0..passes).map(|_| round.pass()).sum()
}

#[inline(never)]
fn measured_engine(e: &mut host_agent::engine::Engine, log: &Log, now: Instant) -> u64 {
    replay(e, log, now, &mut Vec::new())
}

#[inline(never)]
fn measured_quantize(data: &[f32], block: usize, q: &mut [i32], y: &mut [f32]) {
    let f = scale(4, 3);
    for (x, q) in data.chunks(block).zip(q.chunks_mut(block)) {
        quantize(x, f, clamp_limit(4), q);
    }
    for (q, y) in q.chunks(block).zip(y.chunks_mut(block)) {
        dequantize(q, f, y);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or(default.to_string());
    match arg(0, "core").as_str() {
        "core" => {
            let world: u16 = arg(1, "4").parse().expect("world");
            let elems: u16 = arg(2, "64").parse().expect("elements");
            let mut round = Round::new(world, elems);
            round.pass();
            let passes = 4;
            black_box(measured_core(&mut round, passes));
            println!("packets {}", round.packets_per_pass() * u64::from(passes));
        }
        "engine" => {
            let kind = match arg(1, "i32").as_str() {
                "f32" => Kind::F32,
                _ => Kind::I32,
            };
            let elems: u16 = arg(2, "64").parse().expect("elements");
            let now = Instant::now();
            let inputs = Inputs::new(kind);
            let mut system = System::new(&inputs, elems, now);
            let mut log = Log::default();
            system.run(Some(&mut log));
            let expected = take(&mut system.engines[0], kind);
            let mut e = engine(0, elems);
            inputs.start(&mut e, now, 0);
            let sent = measured_engine(&mut e, &log, now);
            assert_eq!(take(&mut e, kind), expected);
            println!("packets {sent}");
        }
        "quantize" => {
            let block: usize = arg(1, "64").parse().expect("block");
            let len = 1 << 20;
            let data = random_f32(len, 1);
            let (mut q, mut y) = (vec![0; len], vec![0.0; len]);
            measured_quantize(&data, block, &mut q, &mut y);
            println!("elements {len} (quantize + dequantize)");
        }
        other => eprintln!("unknown workload {other}: core | engine | quantize"),
    }
}
