/* Next step (Tofino ingress): drop / absorb / multicast / unicast /
 * recirculate, and per-reason counters.
 *
 * Recirculation is needed in exactly one case: a result whose payload has
 * the 32-element chunk (elem_count >= 32) must be read back in a second
 * pass, because each pair register returns one of its two lanes per pass
 * (aggregation.p4). The packet goes to the pipe-local recirculation port
 * with egress bypassed, carrying the bridge header (pool index, multicast
 * group, original ingress port), and comes back as KIND_HARVEST_*. The
 * second pass only reads; it changes no state.
 */
#ifndef _INA_NEXT_STEP_P4_
#define _INA_NEXT_STEP_P4_

#include "configuration.p4"
#include "types.p4"
#include "headers.p4"

control NextStep(inout headers_t hdr,
                 inout ina_md_t md,
                 in ingress_intrinsic_metadata_t ig_intr_md,
                 inout ingress_intrinsic_metadata_for_deparser_t ig_dprsr_md,
                 inout ingress_intrinsic_metadata_for_tm_t ig_tm_md) {

    // Index: DROP_* (DROP_ABSORBED counts contributions that completed nothing).
    Counter<bit<32>, bit<8>>(INA_DROP_REASONS, CounterType_t.PACKETS) drops;
    // Index: KIND_* of what left the ingress pipeline.
    Counter<bit<32>, bit<8>>(8, CounterType_t.PACKETS) sent;

    action drop() {
        ig_dprsr_md.drop_ctl = 1;
    }

    action multicast() {
        ig_tm_md.mcast_grp_a = md.mgid;
        ig_tm_md.bypass_egress = 0;
        hdr.bridge.kind = KIND_RESULT_MCAST;
    }

    action unicast() {
        ig_tm_md.ucast_egress_port = hdr.bridge.ingress_port;
        ig_tm_md.bypass_egress = 0;
        hdr.bridge.kind = KIND_RESULT_UCAST;
    }

    action recirculate(bit<8> kind) {
        ig_tm_md.ucast_egress_port = ig_intr_md.ingress_port[8:7] ++ 7w0x44;  // port 68 of this pipe
        ig_tm_md.bypass_egress = 1;
        hdr.bridge.kind = kind;
        hdr.bridge.mgid = md.mgid;
        hdr.bridge.pool = 2w0 ++ md.pool;
    }

    action to_result() {
        hdr.agg.msg_type = MSG_RESULT;
        hdr.agg.reserved = 0;
        hdr.agg.exponent = (bit<16>)((bit<32>)md.max_exp);
    }

    apply {
        // The rank's bit in the set's seen bitmap (stage 5 on Tofino).
        md.seen = md.bitmap_before & md.worker_bit;

        if (md.kind == KIND_HARVEST_MCAST) {
            multicast();
        } else if (md.kind == KIND_HARVEST_UCAST) {
            unicast();
        } else if (md.drop_reason != DROP_NONE) {
            drops.count(md.drop_reason);
            drop();
        } else if (md.agg_op == AGG_WRITE || (md.agg_op == AGG_ADD && md.already == 0)) {
            // Accepted: the round is complete when every rank has joined.
            if (md.joined_after != JOINED_ALL) {
                drops.count(DROP_ABSORBED);
                drop();
            } else {
                to_result();
                if (md.has_high_lanes) {
                    recirculate(KIND_HARVEST_MCAST);
                } else {
                    multicast();
                }
            }
        } else if (md.agg_op == AGG_ADD) {
            // The rank joined this incomplete round before: a retransmission.
            drops.count(DROP_DUPLICATE_INCOMPLETE);
            drop();
        } else if (md.agg_op == AGG_READ) {
            if (md.seen != 0) {
                // Retransmission to a complete round: answer this rank.
                to_result();
                if (md.has_high_lanes) {
                    recirculate(KIND_HARVEST_UCAST);
                } else {
                    unicast();
                }
            } else {
                // The round is complete and this rank has moved on (its bit
                // was cleared by the other set): a late copy, never added.
                drops.count(DROP_STALE_SEQUENCE);
                drop();
            }
        } else {
            drops.count(DROP_INTERNAL);
            drop();
        }
        sent.count(hdr.bridge.kind);
    }
}

#endif  // _INA_NEXT_STEP_P4_
