/* In-network aggregation for Tofino (TNA, P4-16): top level.
 *
 * Implements the state machine of switch-emu's core (see p4/README.md):
 * admission, round sequence check, completion mask, seen bitmaps with the
 * set0/set1 clear rule, maximum exponent, 64 lanes of wrapping int32 sums per
 * (slot, set), multicast of a completed result, unicast of a stored result
 * to a retransmitting rank, ARP for the switch's IP and L2 forwarding.
 *
 * Build: bf-p4c --target tofino --arch tna -o build ina.p4 (see README).
 */
#include <core.p4>
#include <tna.p4>

#include "configuration.p4"
#include "types.p4"
#include "headers.p4"
#include "parsers.p4"
#include "admission.p4"
#include "round_checker.p4"
#include "worker_counter.p4"
#include "bitmap_checker.p4"
#include "exponent_max.p4"
#include "aggregation.p4"
#include "next_step.p4"
#include "result_sender.p4"
#include "arp_icmp.p4"
#include "forwarding.p4"

control Ingress(inout headers_t hdr,
                inout ina_md_t md,
                in ingress_intrinsic_metadata_t ig_intr_md,
                in ingress_intrinsic_metadata_from_parser_t ig_prsr_md,
                inout ingress_intrinsic_metadata_for_deparser_t ig_dprsr_md,
                inout ingress_intrinsic_metadata_for_tm_t ig_tm_md) {

    Admission() admission;
    RoundChecker() round_checker;
    WorkerCounter() worker_counter;
    BitmapChecker() bitmap_checker;
    ExponentMax() exponent_max;
    Aggregation() aggregation;
    NextStep() next_step;
    ArpIcmp() arp_icmp;
    Forwarding() forwarding;

    apply {
        if (hdr.bridge.isValid()) {
            // Second pass of a result (came back from the recirculation port).
            md.kind = hdr.bridge.kind;
            md.mgid = hdr.bridge.mgid;
            md.pool = hdr.bridge.pool[13:0];
            md.agg_op = AGG_HARVEST;
            aggregation.apply(hdr, md);
            next_step.apply(hdr, md, ig_intr_md, ig_dprsr_md, ig_tm_md);
        } else if (hdr.agg.isValid()) {
            hdr.bridge.setValid();
            hdr.bridge.kind = KIND_OTHER;
            hdr.bridge.drop_reason = DROP_NONE;
            hdr.bridge.mgid = 0;
            hdr.bridge.pool = 0;
            hdr.bridge.pad0 = 0;
            hdr.bridge.ingress_port = ig_intr_md.ingress_port;
            if (ig_prsr_md.parser_err != 0) {
                // The payload is shorter than elem_count announces.
                md.drop_reason = DROP_TRUNCATED;
            } else {
                admission.apply(hdr, md);
            }
            // The gate is written on the tables' own results (not on
            // drop_reason, which the admission chain computes in parallel)
            // so that the round check runs in the stage after admission.
            if (ig_prsr_md.parser_err == 0 && md.admitted && md.in_lease
                    && hdr.agg.key == md.job_key
                    && hdr.agg.elem_count <= INA_ELEMENTS_PER_PASS) {
                round_checker.apply(hdr, md);      // stage 2: rounds
                worker_counter.apply(md);          // stage 3: joined
                bitmap_checker.apply(hdr, md);     // stage 4: bitmap
                exponent_max.apply(md);            // stage 4: max_exponent
                aggregation.apply(hdr, md);        // stages 5-12: sums
            }
            hdr.bridge.drop_reason = md.drop_reason;
            next_step.apply(hdr, md, ig_intr_md, ig_dprsr_md, ig_tm_md);
        } else {
            hdr.bridge.setValid();
            hdr.bridge.kind = KIND_OTHER;
            hdr.bridge.drop_reason = DROP_NONE;
            hdr.bridge.mgid = 0;
            hdr.bridge.pool = 0;
            hdr.bridge.pad0 = 0;
            hdr.bridge.ingress_port = ig_intr_md.ingress_port;
            bit<9> port = 0;
            bool replied = false;
            bool known = false;
            arp_icmp.apply(hdr, ig_intr_md.ingress_port, port, replied);
            if (!replied) {
                forwarding.apply(hdr, port, known);
            }
            if (replied || known) {
                ig_tm_md.ucast_egress_port = port;
            } else {
                ig_dprsr_md.drop_ctl = 1;
            }
        }
    }
}

control Egress(inout headers_t hdr,
               inout egress_md_t eg_md,
               in egress_intrinsic_metadata_t eg_intr_md,
               in egress_intrinsic_metadata_from_parser_t eg_prsr_md,
               inout egress_intrinsic_metadata_for_deparser_t eg_dprsr_md,
               inout egress_intrinsic_metadata_for_output_port_t eg_oport_md) {

    ResultSender() result_sender;

    apply {
        if (eg_md.result) {
            bool drop = false;
            result_sender.apply(hdr, hdr.bridge.kind, eg_intr_md.egress_rid, drop);
            if (drop) {
                eg_dprsr_md.drop_ctl = 1;
            }
        }
        hdr.bridge.setInvalid();
    }
}

Pipeline(IngressParser(),
         Ingress(),
         IngressDeparser(),
         EgressParser(),
         Egress(),
         EgressDeparser()) pipe;

Switch(pipe) main;
