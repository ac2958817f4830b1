/* Completion per (slot, set) (Tofino, stage 3 of 12): which ranks joined
 * the round, and its element count.
 *
 * The core counts contributions and compares the count with the world
 * size. A stateful ALU cannot count without knowing whether the rank was
 * seen, which the bitmap (a later stage) tells, and the core's amended
 * rule needs completion *before* the bitmap: a late copy from a rank that
 * moved on (its seen bit already cleared by the other set) must neither be
 * added nor set bits again. So completion is kept as a mask of the ranks
 * that joined, which a retransmission or a late copy leaves unchanged
 * (OR is idempotent) and which is never cleared by the other set. It
 * starts as start_mask = worker_bit | bits of the absent ranks >= world,
 * so "all joined" is all ones for every world size; joining ORs in
 * start_mask (the absent bits are already set). Equal to the core's
 * count == world for members that follow the window rule (README).
 *
 * The tag (ROUND_TAG_VALID | elem_count) shares the word: a packet of the
 * current seq whose tag differs gets joined_before = 0 (no round in
 * progress ever has an empty mask) and changes nothing.
 */
#ifndef _INA_WORKER_COUNTER_P4_
#define _INA_WORKER_COUNTER_P4_

#include "configuration.p4"
#include "types.p4"

control WorkerCounter(inout ina_md_t md) {

    Register<round_mask_t, pool_index_t>(INA_POOL_SIZE) joined;

    RegisterAction<round_mask_t, pool_index_t, worker_bitmap_t>(joined) start_round = {
        void apply(inout round_mask_t value) {
            value.tag = md.round_tag;
            value.joined = md.start_mask;
        }
    };

    RegisterAction<round_mask_t, pool_index_t, worker_bitmap_t>(joined) join_round = {
        void apply(inout round_mask_t value, out worker_bitmap_t before) {
            before = 0;
            if (value.tag == md.round_tag) {
                before = value.joined;
                value.joined = value.joined | md.start_mask;
            }
        }
    };

    action do_start_round() {
        start_round.execute(md.pool);
        md.joined_before = 0;
    }

    action do_join_round() {
        md.joined_before = join_round.execute(md.pool);
    }

    table count_workers {
        key = {
            md.seq_code : exact;
        }
        actions = {
            do_start_round;
            do_join_round;
            @defaultonly NoAction;
        }
        const entries = {
            SEQ_NEW : do_start_round();
            SEQ_SAME : do_join_round();
        }
        const default_action = NoAction();
        size = 4;
    }

    apply {
        count_workers.apply();
    }
}

#endif  // _INA_WORKER_COUNTER_P4_
