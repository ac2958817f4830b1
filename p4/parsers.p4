/* Tofino (TNA) parsers and deparsers. */
#ifndef _INA_PARSERS_P4_
#define _INA_PARSERS_P4_

#include "configuration.p4"
#include "types.p4"
#include "headers.p4"

// Egress-only metadata.
struct egress_md_t {
    bool result;
}

parser IngressParser(packet_in pkt,
                     out headers_t hdr,
                     out ina_md_t md,
                     out ingress_intrinsic_metadata_t ig_intr_md) {

    state start {
        pkt.extract(ig_intr_md);
        md.drop_reason = DROP_NONE;
        md.kind = KIND_OTHER;
        md.admitted = false;
        md.in_lease = false;
        md.worker_bit = 0;
        md.start_mask = 0;
        md.world = 0;
        md.mgid = 0;
        md.job_key = 0;
        md.pool = 0;
        md.slot_index = 0;
        md.round_tag = 0;
        md.exponent = 0;
        md.max_exp = 0;
        md.seq_code = SEQ_OLD;
        md.joined_before = 0;
        md.joined_after = 0;
        md.already = 0;
        md.bitmap_before = 0;
        md.seen = 0;
        md.agg_op = AGG_NONE;
        md.has_high_lanes = false;
        // Port metadata (phase 0) is not used; skip it. Resubmission is
        // never requested by this program.
        pkt.advance(PORT_METADATA_SIZE);
        transition select(ig_intr_md.ingress_port) {
            // The pipe-local recirculation port (68 in each pipe) brings back
            // a result that is being harvested: it starts with the bridge.
            9w0x044 &&& 9w0x07f : parse_bridge;  // INA_RECIRC_PORT_LOCAL
            default : parse_ethernet;
        }
    }

    state parse_bridge {
        pkt.extract(hdr.bridge);
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
        // Only unfragmented datagrams without options carry aggregation.
        transition select(hdr.ipv4.ihl, hdr.ipv4.frag_offset, hdr.ipv4.protocol) {
            (5, 0, IP_PROTOCOL_UDP) : parse_udp;
            default : accept;
        }
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
            16w0 &&& 16w0xffc0 : parse_chunk32;  // 0..63
            default : accept;  // too many elements: admission drops it
        }
    }

    // 64 = 32 + 16 + 8 + 4 + 2 + 1 + 1.
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

    // 0..63: one chunk per set bit of elem_count, largest first.
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

control IngressDeparser(packet_out pkt,
                        inout headers_t hdr,
                        in ina_md_t md,
                        in ingress_intrinsic_metadata_for_deparser_t ig_dprsr_md) {
    apply {
        // The bridge goes first: to egress, or around the recirculation loop.
        pkt.emit(hdr);
    }
}

parser EgressParser(packet_in pkt,
                    out headers_t hdr,
                    out egress_md_t eg_md,
                    out egress_intrinsic_metadata_t eg_intr_md) {

    state start {
        pkt.extract(eg_intr_md);
        eg_md.result = false;
        // Every packet leaving ingress carries the bridge (see ina.p4).
        pkt.extract(hdr.bridge);
        transition select(hdr.bridge.kind) {
            KIND_RESULT_MCAST : parse_result;
            KIND_RESULT_UCAST : parse_result;
            default : accept;
        }
    }

    // Only the headers are rewritten; the payload passes through unparsed.
    state parse_result {
        eg_md.result = true;
        pkt.extract(hdr.ethernet);
        pkt.extract(hdr.ipv4);
        pkt.extract(hdr.udp);
        pkt.extract(hdr.agg);
        transition accept;
    }
}

control EgressDeparser(packet_out pkt,
                       inout headers_t hdr,
                       in egress_md_t eg_md,
                       in egress_intrinsic_metadata_for_deparser_t eg_dprsr_md) {

    Checksum() ipv4_checksum;

    apply {
        if (eg_md.result) {
            hdr.ipv4.hdr_checksum = ipv4_checksum.update({
                hdr.ipv4.version,
                hdr.ipv4.ihl,
                hdr.ipv4.diffserv,
                hdr.ipv4.total_len,
                hdr.ipv4.identification,
                hdr.ipv4.flags,
                hdr.ipv4.frag_offset,
                hdr.ipv4.ttl,
                hdr.ipv4.protocol,
                hdr.ipv4.src_addr,
                hdr.ipv4.dst_addr});
        }
        // The bridge was invalidated in Egress; only the frame leaves.
        pkt.emit(hdr);
    }
}

#endif  // _INA_PARSERS_P4_
