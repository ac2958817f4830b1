//! Wire format: aggregation header parse (`Packet::new_checked` +
//! `Repr::parse`), `Repr::emit_to_vec` (header and payload), and the
//! Ethernet/IPv4/UDP framing (`frame::parse_udp` / `frame::emit_udp`, both
//! with checksums). Throughput is in packets.

use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ina_benches::random_i32;
use packet_format::frame::{
    emit_udp, emit_udp_no_checksum, parse_udp, parse_udp_no_checksum, Endpoint,
};
use packet_format::{Flags, MsgType, Packet, Repr, UDP_PORT};

/// Element counts measured: Tofino single pass, folded pipes, emulator-only.
const ELEMENTS: [u16; 3] = [64, 256, 1024];

fn repr(elem_count: u16) -> Repr {
    Repr {
        msg_type: MsgType::Contribution,
        set: true,
        flags: Flags::FLOAT,
        job_id: 7,
        rank: 3,
        key: 0xdead_beef,
        seq: 123_456,
        slot: 17,
        elem_count,
        exponent: -3,
    }
}

fn header(c: &mut Criterion) {
    let mut group = c.benchmark_group("wire/header");
    group.throughput(Throughput::Elements(1));
    let mut bytes = Vec::new();
    repr(64).emit_to_vec(&random_i32(64, 1), &mut bytes);
    group.bench_function("parse", |b| {
        b.iter(|| {
            let packet = Packet::new_checked(black_box(&bytes[..])).unwrap();
            black_box(Repr::parse(&packet).unwrap())
        })
    });
    for elems in ELEMENTS {
        let values = random_i32(usize::from(elems), 2);
        let r = repr(elems);
        let mut out = Vec::with_capacity(r.buffer_len());
        group.bench_with_input(BenchmarkId::new("emit_to_vec", elems), &elems, |b, _| {
            b.iter(|| {
                out.clear();
                black_box(&r).emit_to_vec(black_box(&values), &mut out);
                black_box(out.len())
            })
        });
    }
    group.finish();
}

fn frame(c: &mut Criterion) {
    let src = Endpoint {
        mac: [2, 0, 0, 0, 0, 1],
        ip: Ipv4Addr::new(10, 0, 0, 1),
        port: 40_000,
    };
    let dst = Endpoint {
        mac: [2, 0, 0, 0, 0, 0xfe],
        ip: Ipv4Addr::new(10, 0, 0, 254),
        port: UDP_PORT,
    };
    let mut group = c.benchmark_group("wire/frame");
    group.throughput(Throughput::Elements(1));
    for elems in [64u16, 256] {
        let mut payload = Vec::new();
        repr(elems).emit_to_vec(&random_i32(usize::from(elems), 3), &mut payload);
        let mut frame = Vec::new();
        emit_udp(src, dst, &payload, &mut frame);
        assert_eq!(parse_udp(&frame).unwrap().payload, &payload[..]);
        let mut out = Vec::with_capacity(frame.len());
        group.bench_with_input(BenchmarkId::new("emit_udp", elems), &elems, |b, _| {
            b.iter(|| {
                out.clear();
                emit_udp(src, dst, black_box(&payload), &mut out);
                black_box(out.len())
            })
        });
        // What the L2 switch writes for each result it sends to a member.
        group.bench_with_input(
            BenchmarkId::new("emit_udp_no_checksum", elems),
            &elems,
            |b, _| {
                b.iter(|| {
                    out.clear();
                    emit_udp_no_checksum(src, dst, black_box(&payload), &mut out);
                    black_box(out.len())
                })
            },
        );
        group.bench_with_input(BenchmarkId::new("parse_udp", elems), &elems, |b, _| {
            b.iter(|| black_box(parse_udp(black_box(&frame)).unwrap().payload.len()))
        });
        // What the L2 switch parses: no pass over the payload.
        group.bench_with_input(
            BenchmarkId::new("parse_udp_no_checksum", elems),
            &elems,
            |b, _| {
                b.iter(|| {
                    black_box(
                        parse_udp_no_checksum(black_box(&frame))
                            .unwrap()
                            .payload
                            .len(),
                    )
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, header, frame);
criterion_main!(benches);
