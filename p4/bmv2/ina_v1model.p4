/* In-network aggregation for BMv2 simple_switch (v1model): the twin of
 * ../ina.p4 with the same semantics.
 *
 * Shares configuration, types, headers and the architecture-neutral
 * controls (admission, ARP, L2 forwarding, result sender) with the Tofino
 * program, and also answers ICMP echo requests to the switch's IP (the
 * Tofino program answers ARP only). BMv2 registers can be read and written any number of times per
 * packet, so this twin follows switch-emu's core step by step (bitmap
 * first, then sequence) and needs no recirculation; a stored result is
 * re-emitted with the stored element count.
 *
 * Build: p4c-bm2-ss --std p4-16 --arch v1model -o ina_v1model.json ina_v1model.p4
 */
#include <core.p4>
#include <v1model.p4>

#include "../configuration.p4"
#include "../types.p4"
#include "../headers.p4"
#include "../admission.p4"
#include "../arp_icmp.p4"
#include "../forwarding.p4"
#include "../result_sender.p4"

// Lanes per (slot, set) in the sums register (INA_ELEMENTS_PER_PASS).
#define INA_LANE_SHIFT 6
// INA_POOL_SIZE * INA_ELEMENTS_PER_PASS
#define INA_SUMS_SIZE 1048576

parser ParserImpl(packet_in pkt,
                  out headers_t hdr,
                  inout ina_md_t md,
                  inout standard_metadata_t sm) {

    state start {
        md.drop_reason = DROP_NONE;
        md.kind = KIND_OTHER;
        md.admitted = false;
        md.in_lease = false;
        md.agg_op = AGG_NONE;
        md.has_high_lanes = false;
        transition parse_ethernet;
    }

    state parse_ethernet {
        pkt.extract(hdr.ethernet);
        transition select(hdr.ethernet.ether_type) {
            ETHERTYPE_ARP : parse_arp;
            ETHERTYPE_IPV4 : parse_ipv4;
            default : accept;
        }
    }

    state parse_arp {
        pkt.extract(hdr.arp);
        transition accept;
    }

    state parse_ipv4 {
        pkt.extract(hdr.ipv4);
        transition select(hdr.ipv4.ihl, hdr.ipv4.frag_offset, hdr.ipv4.protocol) {
            (5, 0, IP_PROTOCOL_UDP) : parse_udp;
            (5, 0, IP_PROTOCOL_ICMP) : parse_icmp;
            default : accept;
        }
    }

    state parse_icmp {
        pkt.extract(hdr.icmp);
        transition accept;
    }

    state parse_udp {
        pkt.extract(hdr.udp);
        transition select(hdr.udp.dst_port) {
            INA_UDP_PORT : parse_agg;
            default : accept;
        }
    }

    state parse_agg {
        pkt.extract(hdr.agg);
        transition select(hdr.agg.elem_count) {
            INA_ELEMENTS_PER_PASS : parse_full;
            16w0 &&& 16w0xffc0 : parse_chunk32;
            default : accept;
        }
    }

    state parse_full {
        pkt.extract(hdr.d32);
        pkt.extract(hdr.d16);
        pkt.extract(hdr.d8);
        pkt.extract(hdr.d4);
        pkt.extract(hdr.d2);
        pkt.extract(hdr.d1);
        pkt.extract(hdr.d1x);
        transition accept;
    }

    state parse_chunk32 {
        transition select(hdr.agg.elem_count[5:5]) {
            1 : extract_chunk32;
            default : parse_chunk16;
        }
    }
    state extract_chunk32 {
        pkt.extract(hdr.d32);
        transition parse_chunk16;
    }
    state parse_chunk16 {
        transition select(hdr.agg.elem_count[4:4]) {
            1 : extract_chunk16;
            default : parse_chunk8;
        }
    }
    state extract_chunk16 {
        pkt.extract(hdr.d16);
        transition parse_chunk8;
    }
    state parse_chunk8 {
        transition select(hdr.agg.elem_count[3:3]) {
            1 : extract_chunk8;
            default : parse_chunk4;
        }
    }
    state extract_chunk8 {
        pkt.extract(hdr.d8);
        transition parse_chunk4;
    }
    state parse_chunk4 {
        transition select(hdr.agg.elem_count[2:2]) {
            1 : extract_chunk4;
            default : parse_chunk2;
        }
    }
    state extract_chunk4 {
        pkt.extract(hdr.d4);
        transition parse_chunk2;
    }
    state parse_chunk2 {
        transition select(hdr.agg.elem_count[1:1]) {
            1 : extract_chunk2;
            default : parse_chunk1;
        }
    }
    state extract_chunk2 {
        pkt.extract(hdr.d2);
        transition parse_chunk1;
    }
    state parse_chunk1 {
        transition select(hdr.agg.elem_count[0:0]) {
            1 : extract_chunk1;
            default : accept;
        }
    }
    state extract_chunk1 {
        pkt.extract(hdr.d1);
        transition accept;
    }
}

control VerifyChecksumImpl(inout headers_t hdr, inout ina_md_t md) {
    apply { }
}

// One lane: overwrite (first contribution), add (later ones) or read
// (retransmission to a complete slot); the header field receives the sum.
#define INA_LANE(LANE, FIELD) \
    if (md.agg_op == AGG_WRITE) { \
        lane = FIELD; \
        sums.write(base + LANE, lane); \
    } else if (md.agg_op == AGG_ADD) { \
        sums.read(lane, base + LANE); \
        lane = lane + FIELD; \
        sums.write(base + LANE, lane); \
    } else { \
        sums.read(lane, base + LANE); \
    } \
    FIELD = lane;

control IngressImpl(inout headers_t hdr,
                    inout ina_md_t md,
                    inout standard_metadata_t sm) {

    // State per (slot, set), index set ++ slot (INA_POOL_SIZE entries).
    register<bit<32>>(INA_POOL_SIZE) bitmap;
    register<bit<32>>(INA_POOL_SIZE) round_seq;
    // 0 while invalid (after reset / lease), else ROUND_TAG_VALID | elem_count.
    register<bit<32>>(INA_POOL_SIZE) round_tag;
    register<bit<32>>(INA_POOL_SIZE) worker_count;
    // Sign-extended i16 exponent.
    register<bit<32>>(INA_POOL_SIZE) max_exponent;
    // Lane l of (slot, set) p at p * 64 + l; lanes as the Tofino pairs:
    // 0..31 = d16 d8 d4 d2 d1 d1x, 32..63 = d32.
    register<bit<32>>(INA_SUMS_SIZE) sums;

    counter(INA_DROP_REASONS, CounterType.packets) drops;
    counter(8, CounterType.packets) sent;

    Admission() admission;
    ArpIcmp() arp_icmp;
    IcmpEcho() icmp_echo;
    Forwarding() forwarding;

    bit<32> base;
    bit<32> lane;

    // Makes the chunks of a stored element count valid, so that a stored
    // result is re-emitted with its own length.
    action set_chunks(bit<16> elem_count) {
        hdr.d32.setInvalid();
        hdr.d16.setInvalid();
        hdr.d8.setInvalid();
        hdr.d4.setInvalid();
        hdr.d2.setInvalid();
        hdr.d1.setInvalid();
        hdr.d1x.setInvalid();
        hdr.agg.elem_count = elem_count;
        hdr.ipv4.total_len = 16w52 + (elem_count << 2);  // IPv4 20 + UDP 8 + agg 24
        hdr.udp.length = 16w32 + (elem_count << 2);      // UDP 8 + agg 24
    }

    apply {
        if (!hdr.agg.isValid()) {
            bit<9> port = 0;
            bool replied = false;
            bool known = false;
            arp_icmp.apply(hdr, sm.ingress_port, port, replied);
            if (!replied) {
                icmp_echo.apply(hdr, sm.ingress_port, port, replied);
            }
            if (!replied) {
                forwarding.apply(hdr, port, known);
            }
            if (replied || known) {
                sm.egress_spec = port;
            } else {
                mark_to_drop(sm);
            }
            return;
        }

        if (sm.parser_error != error.NoError) {
            md.drop_reason = DROP_TRUNCATED;
        } else {
            admission.apply(hdr, md);
        }

        bit<14> other_pool = (~hdr.agg.set[0:0]) ++ md.slot_index;
        bit<32> b = 0;
        bit<32> seq = 0;
        bit<32> tag = 0;
        bit<32> count = 0;
        bit<32> exp_max = 0;
        bit<32> exp = (bit<32>)((int<32>)((int<16>)hdr.agg.exponent));
        bool accepted = false;

        if (md.drop_reason == DROP_NONE) {
            bitmap.read(b, (bit<32>)md.pool);
            round_seq.read(seq, (bit<32>)md.pool);
            round_tag.read(tag, (bit<32>)md.pool);
            worker_count.read(count, (bit<32>)md.pool);
            max_exponent.read(exp_max, (bit<32>)md.pool);

            if ((b & md.worker_bit) != 0) {
                // Retransmission: changes no state.
                if (hdr.agg.seq == seq && count == (bit<32>)md.world) {
                    md.agg_op = AGG_READ;
                } else if (hdr.agg.seq != seq) {
                    md.drop_reason = DROP_STALE_SEQUENCE;
                } else {
                    md.drop_reason = DROP_DUPLICATE_INCOMPLETE;
                }
            } else if (b != 0) {
                // Round in progress.
                if (hdr.agg.seq != seq) {
                    md.drop_reason = DROP_STALE_SEQUENCE;
                } else if (count == (bit<32>)md.world) {
                    // The round is already complete: a delayed copy from a
                    // rank that moved on (its bit cleared by the other set)
                    // must not be added.
                    md.drop_reason = DROP_STALE_SEQUENCE;
                } else if (md.round_tag != tag) {
                    md.drop_reason = DROP_LENGTH_MISMATCH;
                } else {
                    md.agg_op = AGG_ADD;
                    accepted = true;
                    count = count + 1;
                    if ((int<32>)exp > (int<32>)exp_max) {
                        exp_max = exp;
                    }
                    b = b | md.worker_bit;
                }
            } else if (tag != 0 && !((int<32>)(hdr.agg.seq - seq) > 0)) {
                // A stale copy of an old round must never start a new one.
                md.drop_reason = DROP_STALE_SEQUENCE;
            } else {
                md.agg_op = AGG_WRITE;
                accepted = true;
                seq = hdr.agg.seq;
                tag = md.round_tag;
                count = 1;
                exp_max = exp;
                b = md.worker_bit;
            }
        }

        if (accepted) {
            bit<32> other = 0;
            bitmap.read(other, (bit<32>)other_pool);
            bitmap.write((bit<32>)other_pool, other & ~md.worker_bit);
            bitmap.write((bit<32>)md.pool, b);
            round_seq.write((bit<32>)md.pool, seq);
            round_tag.write((bit<32>)md.pool, tag);
            worker_count.write((bit<32>)md.pool, count);
            max_exponent.write((bit<32>)md.pool, exp_max);
        }

        if (md.agg_op == AGG_READ) {
            set_chunks(tag[15:0]);
            if (tag[15:0] == INA_ELEMENTS_PER_PASS) {
                hdr.d32.setValid();
                hdr.d16.setValid();
                hdr.d8.setValid();
                hdr.d4.setValid();
                hdr.d2.setValid();
                hdr.d1.setValid();
                hdr.d1x.setValid();
            } else {
                if (tag[5:5] == 1) { hdr.d32.setValid(); }
                if (tag[4:4] == 1) { hdr.d16.setValid(); }
                if (tag[3:3] == 1) { hdr.d8.setValid(); }
                if (tag[2:2] == 1) { hdr.d4.setValid(); }
                if (tag[1:1] == 1) { hdr.d2.setValid(); }
                if (tag[0:0] == 1) { hdr.d1.setValid(); }
            }
        }

        if (md.agg_op != AGG_NONE) {
            base = ((bit<32>)md.pool) << INA_LANE_SHIFT;
            if (hdr.d16.isValid()) {
                INA_LANE(0, hdr.d16.e00)
                INA_LANE(1, hdr.d16.e01)
                INA_LANE(2, hdr.d16.e02)
                INA_LANE(3, hdr.d16.e03)
                INA_LANE(4, hdr.d16.e04)
                INA_LANE(5, hdr.d16.e05)
                INA_LANE(6, hdr.d16.e06)
                INA_LANE(7, hdr.d16.e07)
                INA_LANE(8, hdr.d16.e08)
                INA_LANE(9, hdr.d16.e09)
                INA_LANE(10, hdr.d16.e10)
                INA_LANE(11, hdr.d16.e11)
                INA_LANE(12, hdr.d16.e12)
                INA_LANE(13, hdr.d16.e13)
                INA_LANE(14, hdr.d16.e14)
                INA_LANE(15, hdr.d16.e15)
            }
            if (hdr.d8.isValid()) {
                INA_LANE(16, hdr.d8.e00)
                INA_LANE(17, hdr.d8.e01)
                INA_LANE(18, hdr.d8.e02)
                INA_LANE(19, hdr.d8.e03)
                INA_LANE(20, hdr.d8.e04)
                INA_LANE(21, hdr.d8.e05)
                INA_LANE(22, hdr.d8.e06)
                INA_LANE(23, hdr.d8.e07)
            }
            if (hdr.d4.isValid()) {
                INA_LANE(24, hdr.d4.e00)
                INA_LANE(25, hdr.d4.e01)
                INA_LANE(26, hdr.d4.e02)
                INA_LANE(27, hdr.d4.e03)
            }
            if (hdr.d2.isValid()) {
                INA_LANE(28, hdr.d2.e00)
                INA_LANE(29, hdr.d2.e01)
            }
            if (hdr.d1.isValid()) {
                INA_LANE(30, hdr.d1.e00)
            }
            if (hdr.d1x.isValid()) {
                INA_LANE(31, hdr.d1x.e00)
            }
            if (hdr.d32.isValid()) {
                INA_LANE(32, hdr.d32.e00)
                INA_LANE(33, hdr.d32.e01)
                INA_LANE(34, hdr.d32.e02)
                INA_LANE(35, hdr.d32.e03)
                INA_LANE(36, hdr.d32.e04)
                INA_LANE(37, hdr.d32.e05)
                INA_LANE(38, hdr.d32.e06)
                INA_LANE(39, hdr.d32.e07)
                INA_LANE(40, hdr.d32.e08)
                INA_LANE(41, hdr.d32.e09)
                INA_LANE(42, hdr.d32.e10)
                INA_LANE(43, hdr.d32.e11)
                INA_LANE(44, hdr.d32.e12)
                INA_LANE(45, hdr.d32.e13)
                INA_LANE(46, hdr.d32.e14)
                INA_LANE(47, hdr.d32.e15)
                INA_LANE(48, hdr.d32.e16)
                INA_LANE(49, hdr.d32.e17)
                INA_LANE(50, hdr.d32.e18)
                INA_LANE(51, hdr.d32.e19)
                INA_LANE(52, hdr.d32.e20)
                INA_LANE(53, hdr.d32.e21)
                INA_LANE(54, hdr.d32.e22)
                INA_LANE(55, hdr.d32.e23)
                INA_LANE(56, hdr.d32.e24)
                INA_LANE(57, hdr.d32.e25)
                INA_LANE(58, hdr.d32.e26)
                INA_LANE(59, hdr.d32.e27)
                INA_LANE(60, hdr.d32.e28)
                INA_LANE(61, hdr.d32.e29)
                INA_LANE(62, hdr.d32.e30)
                INA_LANE(63, hdr.d32.e31)
            }
        }

        if (md.drop_reason != DROP_NONE) {
            drops.count((bit<32>)md.drop_reason);
            mark_to_drop(sm);
        } else if (md.agg_op == AGG_READ) {
            hdr.agg.msg_type = MSG_RESULT;
            hdr.agg.reserved = 0;
            hdr.agg.exponent = exp_max[15:0];
            md.kind = KIND_RESULT_UCAST;
            sm.egress_spec = sm.ingress_port;
        } else if (accepted && count == (bit<32>)md.world) {
            hdr.agg.msg_type = MSG_RESULT;
            hdr.agg.reserved = 0;
            hdr.agg.exponent = exp_max[15:0];
            md.kind = KIND_RESULT_MCAST;
            sm.mcast_grp = md.mgid;
        } else if (accepted) {
            drops.count((bit<32>)DROP_ABSORBED);
            mark_to_drop(sm);
        } else {
            drops.count((bit<32>)DROP_INTERNAL);
            mark_to_drop(sm);
        }
        sent.count((bit<32>)md.kind);
    }
}

control EgressImpl(inout headers_t hdr,
                   inout ina_md_t md,
                   inout standard_metadata_t sm) {

    ResultSender() result_sender;

    apply {
        if (md.kind == KIND_RESULT_MCAST || md.kind == KIND_RESULT_UCAST) {
            bool drop = false;
            result_sender.apply(hdr, md.kind, sm.egress_rid, drop);
            if (drop) {
                mark_to_drop(sm);
            }
        }
    }
}

control ComputeChecksumImpl(inout headers_t hdr, inout ina_md_t md) {
    apply {
        update_checksum(
            hdr.ipv4.isValid() && (md.kind == KIND_RESULT_MCAST || md.kind == KIND_RESULT_UCAST),
            { hdr.ipv4.version,
              hdr.ipv4.ihl,
              hdr.ipv4.diffserv,
              hdr.ipv4.total_len,
              hdr.ipv4.identification,
              hdr.ipv4.flags,
              hdr.ipv4.frag_offset,
              hdr.ipv4.ttl,
              hdr.ipv4.protocol,
              hdr.ipv4.src_addr,
              hdr.ipv4.dst_addr },
            hdr.ipv4.hdr_checksum,
            HashAlgorithm.csum16);
    }
}

control DeparserImpl(packet_out pkt, in headers_t hdr) {
    apply {
        pkt.emit(hdr);
    }
}

V1Switch(ParserImpl(),
         VerifyChecksumImpl(),
         IngressImpl(),
         EgressImpl(),
         ComputeChecksumImpl(),
         DeparserImpl()) main;
