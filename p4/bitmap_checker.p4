/* Seen bitmaps with the set0/set1 clear rule (Tofino, stage 4 of 12), and
 * the classification of the packet for the aggregation processors.
 *
 * Per slot one 64-bit word holds the seen bitmaps of set 0 (first) and
 * set 1 (second), so that setting rank r's bit in one set clears it in the
 * other in the same stateful-ALU operation. Every update is unconditional
 * (no comparison in the ALU): whether a packet may join was decided by the
 * round and completion stages before, and joining is idempotent for a
 * retransmission (its bit is set here and already clear in the other set).
 *
 * Classification by (set, seq code, joined mask before this packet):
 *   new round              -> start: bitmap = bit, clear bit in the other set; AGG_WRITE
 *   same seq, tag differs  -> length_mismatch (joined_before is 0)
 *   same seq, all joined   -> read only; AGG_READ (next_step answers if the
 *                             rank's bit is still set, else stale_sequence)
 *   same seq, in progress  -> join: set bit, clear it in the other set; AGG_ADD
 *   older seq              -> stale_sequence
 */
#ifndef _INA_BITMAP_CHECKER_P4_
#define _INA_BITMAP_CHECKER_P4_

#include "configuration.p4"
#include "types.p4"
#include "headers.p4"

control BitmapChecker(in headers_t hdr, inout ina_md_t md) {

    Register<bitmap_pair_t, slot_index_t>(INA_SLOTS) bitmap;

    RegisterAction<bitmap_pair_t, slot_index_t, worker_bitmap_t>(bitmap) start_set0 = {
        void apply(inout bitmap_pair_t value, out worker_bitmap_t before) {
            before = value.first;
            value.first = md.worker_bit;
            value.second = value.second & ~md.worker_bit;
        }
    };

    RegisterAction<bitmap_pair_t, slot_index_t, worker_bitmap_t>(bitmap) start_set1 = {
        void apply(inout bitmap_pair_t value, out worker_bitmap_t before) {
            before = value.second;
            value.first = value.first & ~md.worker_bit;
            value.second = md.worker_bit;
        }
    };

    RegisterAction<bitmap_pair_t, slot_index_t, worker_bitmap_t>(bitmap) join_set0 = {
        void apply(inout bitmap_pair_t value, out worker_bitmap_t before) {
            before = value.first;
            value.first = value.first | md.worker_bit;
            value.second = value.second & ~md.worker_bit;
        }
    };

    RegisterAction<bitmap_pair_t, slot_index_t, worker_bitmap_t>(bitmap) join_set1 = {
        void apply(inout bitmap_pair_t value, out worker_bitmap_t before) {
            before = value.second;
            value.first = value.first & ~md.worker_bit;
            value.second = value.second | md.worker_bit;
        }
    };

    RegisterAction<bitmap_pair_t, slot_index_t, worker_bitmap_t>(bitmap) read_set0 = {
        void apply(inout bitmap_pair_t value, out worker_bitmap_t before) {
            before = value.first;
        }
    };

    RegisterAction<bitmap_pair_t, slot_index_t, worker_bitmap_t>(bitmap) read_set1 = {
        void apply(inout bitmap_pair_t value, out worker_bitmap_t before) {
            before = value.second;
        }
    };

    action do_start_set0() {
        md.bitmap_before = start_set0.execute(md.slot_index);
        md.agg_op = AGG_WRITE;
    }
    action do_start_set1() {
        md.bitmap_before = start_set1.execute(md.slot_index);
        md.agg_op = AGG_WRITE;
    }
    action do_join_set0() {
        md.bitmap_before = join_set0.execute(md.slot_index);
        md.agg_op = AGG_ADD;
    }
    action do_join_set1() {
        md.bitmap_before = join_set1.execute(md.slot_index);
        md.agg_op = AGG_ADD;
    }
    action do_read_set0() {
        md.bitmap_before = read_set0.execute(md.slot_index);
        md.agg_op = AGG_READ;
    }
    action do_read_set1() {
        md.bitmap_before = read_set1.execute(md.slot_index);
        md.agg_op = AGG_READ;
    }
    action length_mismatch() {
        md.drop_reason = DROP_LENGTH_MISMATCH;
    }
    action stale() {
        md.drop_reason = DROP_STALE_SEQUENCE;
    }

    table update_bitmap {
        key = {
            hdr.agg.set : ternary;
            md.seq_code : ternary;
            md.joined_before : ternary;
        }
        actions = {
            do_start_set0;
            do_start_set1;
            do_join_set0;
            do_join_set1;
            do_read_set0;
            do_read_set1;
            length_mismatch;
            stale;
            @defaultonly NoAction;
        }
        // First match wins (entry order is priority).
        const entries = {
            (0, SEQ_NEW, _) : do_start_set0();
            (1, SEQ_NEW, _) : do_start_set1();
            (_, SEQ_SAME, 0) : length_mismatch();
            (0, SEQ_SAME, JOINED_ALL) : do_read_set0();
            (1, SEQ_SAME, JOINED_ALL) : do_read_set1();
            (0, SEQ_SAME, _) : do_join_set0();
            (1, SEQ_SAME, _) : do_join_set1();
            (_, SEQ_OLD, _) : stale();
        }
        const default_action = NoAction();
        size = 16;
    }

    apply {
        update_bitmap.apply();
        // Independent of the table above (same stage on Tofino).
        md.already = md.joined_before & md.worker_bit;
        md.joined_after = md.joined_before | md.start_mask;
    }
}

#endif  // _INA_BITMAP_CHECKER_P4_
