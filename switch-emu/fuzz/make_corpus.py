#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (valid packets, so that the
fuzzer starts from inputs that reach deep into the core). Run from anywhere:
    python3 switch-emu/fuzz/make_corpus.py
"""
import os
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NO_EXPONENT = -32768
KEYS = {1: 0x11111111, 2: 0x22222222}  # as in fuzz_targets/core_sequence.rs


def header(msg, job, rank, seq, slot, sset, n, exp=0, key=None, flags=0):
    key = KEYS.get(job, 0) if key is None else key
    return struct.pack(">BBBBHHIIHHhH", 1, msg, sset, flags, job, rank, key, seq, slot, n, exp, 0)


def contribution(job, rank, seq, slot, sset, elems, exp=0, key=None):
    body = b"".join(struct.pack(">i", e) for e in elems)
    return header(1, job, rank, seq, slot, sset, len(elems), exp, key) + body


def record(datagram, src=0, dt=1):
    return struct.pack(">BBH", src, dt, len(datagram)) + datagram


def write(target, name, data, crate="switch-emu"):
    path = os.path.join(ROOT, crate, "fuzz", "corpus", target)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, name), "wb") as f:
        f.write(data)


# core_sequence: records of [src][dt_ms][len BE16][datagram].
one_round = [contribution(1, r, 0, 0, 0, [1, 2, 3], exp=r) for r in range(3)]
write("core_sequence", "job1_round_and_retransmit", b"".join(
    [record(p) for p in one_round]
    + [record(one_round[1]), record(contribution(1, 0, 4, 0, 1, [4, 5, 6]))]))
write("core_sequence", "job2_stale_truncated_badkey", b"".join([
    record(contribution(2, 0, 100, 4, 1, list(range(8)))),
    record(contribution(2, 1, 99, 4, 1, list(range(8)))),
    record(contribution(2, 1, 100, 4, 1, list(range(8)))[:30]),
    record(contribution(2, 1, 100, 4, 1, list(range(8)), key=7)),
    record(contribution(2, 1, 100, 4, 1, [-1] * 8)),
    record(contribution(2, 0, 100, 4, 1, list(range(8)))),
]))
window = []
for seq in range(12):  # three windows of job 1 (W = 4), all ranks
    for rank in range(3):
        window.append(record(contribution(1, rank, seq, seq % 4, (seq // 4) % 2, [seq, rank, -seq])))
write("core_sequence", "job1_three_windows", b"".join(window))
write("core_sequence", "exponent_only_and_spoofed", b"".join([
    record(contribution(1, 0, 0xFFFFFFFF, 3, 1, [], exp=NO_EXPONENT)),
    record(contribution(1, 1, 0xFFFFFFFF, 3, 1, [], exp=5), src=0x81),
    record(contribution(1, 1, 0xFFFFFFFF, 3, 1, [], exp=5)),
    record(contribution(1, 2, 0xFFFFFFFF, 3, 1, [], exp=-3)),
]))

# parse_header: single datagrams.
write("parse_header", "contribution", contribution(1, 2, 7, 3, 1, [1, -2, 2147483647]), "packet-format")
write("parse_header", "result", header(2, 1, 2, 7, 3, 1, 1, 4) + struct.pack(">i", 42), "packet-format")
write("parse_header", "exponent_only", contribution(2, 0, 0, 4, 0, [], exp=NO_EXPONENT), "packet-format")


# parse_frame: Ethernet / IPv4 / UDP with valid checksums.
def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(">%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def frame(payload, src_ip=(127, 0, 0, 1), dst_ip=(127, 0, 0, 2), sport=40000, dport=48864,
          eth_dst=(2, 0, 0, 0, 0, 2), eth_src=(2, 0, 0, 0, 0, 1)):
    src, dst = bytes(src_ip), bytes(dst_ip)
    udp_len = 8 + len(payload)
    pseudo = src + dst + struct.pack(">BBH", 0, 17, udp_len)
    udp = struct.pack(">HHHH", sport, dport, udp_len, 0) + payload
    c = csum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack(">H", c) + udp[8:]
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 0, 0, 64, 17, 0, src, dst)
    ip = ip[:10] + struct.pack(">H", csum(ip)) + ip[12:]
    eth = bytes(eth_dst) + bytes(eth_src) + b"\x08\x00"
    return eth + ip + udp


write("parse_frame", "contribution", frame(contribution(1, 2, 7, 3, 1, [1, -2, 3])), "packet-format")
write("parse_frame", "result", frame(header(2, 1, 0, 0, 0, 0, 0), sport=48864, dport=40000), "packet-format")


# l2_frames: a mode byte (results 0: to each member, 1: to the group out of
# each member's port, 2: to the group through the replication port), then
# records [port][offload header, 10 bytes LE][len: u16 BE][frame], as the L2
# switch's ports hand them over (worker n at 10.77.0.n, port n-1).
SW = dict(dst_ip=(10, 77, 0, 254), eth_dst=(2, 0xAA, 0, 0, 0, 0xFE), dport=48864)
UDP_L4 = struct.pack("<BBHHHH", 1, 5, 42, 0, 34, 6)


def l2_record(port, offload, data):
    return struct.pack(">B", port) + offload + struct.pack(">H", len(data)) + data


def worker_frame(n, payload):
    return frame(payload, src_ip=(10, 77, 0, n), sport=40000 + n, eth_src=(2, 0, 0, 0, 0, n), **SW)


def super_frame(n, rank):
    datagrams = [contribution(1, rank, slot, slot, 0, [slot + 1, 100 * n]) for slot in range(3)]
    offload = UDP_L4[:4] + struct.pack("<H", len(datagrams[0])) + UDP_L4[6:]
    return l2_record(n - 1, offload, worker_frame(n, b"".join(datagrams)))


for mode, results in enumerate(["", "_grouped_per_port", "_grouped_replicated"]):
    write("l2_frames", "super_frames_of_both_workers" + results,
          bytes([mode]) + super_frame(1, 0) + super_frame(2, 1))
    write("l2_frames", "plain_then_super" + results, bytes([mode]) + b"".join([
        l2_record(0, bytes(10), worker_frame(1, contribution(1, 0, 0, 0, 0, [7, 8]))),
        l2_record(1, bytes(10), worker_frame(2, contribution(1, 1, 0, 0, 0, [1, 2]))),
        super_frame(1, 0), super_frame(2, 1),
    ]))
