/* Round sequence check and contribution bitmaps (Tofino).
 *
 * State per (slot, set) in `rounds`: the round's seq and a tag that is 0
 * while the state is invalid (reset at lease) and otherwise
 * ROUND_TAG_VALID | elem_count. State per slot in `bitmap`: the seen
 * bitmaps of set 0 (first) and set 1 (second) in one 64-bit word, so that
 * setting rank r's bit in one set clears it in the other in the same
 * stateful ALU operation (the set0/set1 clear rule).
 *
 * The core's order is bitmap first, then sequence; a Tofino register can be
 * touched once per pass, so here the sequence register comes first and
 * starts a round as soon as a valid-and-newer (or first) seq arrives. That
 * equals the core whenever the set's bitmap is empty when a newer seq
 * arrives, which holds for every member that follows the protocol: rank r
 * sends round p+2W only after the result of p+W, and every rank's p+W
 * contribution cleared its bit of p's set. See p4/README.md ("Deviations").
 */
#ifndef _INA_BITMAP_CHECKER_P4_
#define _INA_BITMAP_CHECKER_P4_

#include "configuration.p4"
#include "types.p4"
#include "headers.p4"

control BitmapChecker(in headers_t hdr, inout ina_md_t md) {

    Register<round_t, pool_index_t>(INA_POOL_SIZE) rounds;

    RegisterAction<round_t, pool_index_t, bit<32>>(rounds) check_round = {
        void apply(inout round_t value, out bit<32> code) {
            code = (bit<32>)SEQ_OLD;
            if (value.tag == 0 || (int<32>)(hdr.agg.seq - value.seq) > 0) {
                // First use since the lease, or serial-newer: a round starts.
                value.seq = hdr.agg.seq;
                value.tag = md.round_tag;
                code = (bit<32>)SEQ_NEW;
            } else if (value.seq == hdr.agg.seq) {
                if (value.tag == md.round_tag) {
                    code = (bit<32>)SEQ_SAME;
                } else {
                    code = (bit<32>)SEQ_SAME_OTHER_LEN;
                }
            }
        }
    };

    Register<bitmap_pair_t, slot_index_t>(INA_SLOTS) bitmap;

    // New round: only an empty bitmap may start one (the core's rule).
    RegisterAction<bitmap_pair_t, slot_index_t, worker_bitmap_t>(bitmap) start_set0 = {
        void apply(inout bitmap_pair_t value, out worker_bitmap_t before) {
            before = value.first;
            if (value.first == 0) {
                value.first = md.worker_bit;
                value.second = value.second & ~md.worker_bit;
            }
        }
    };

    RegisterAction<bitmap_pair_t, slot_index_t, worker_bitmap_t>(bitmap) start_set1 = {
        void apply(inout bitmap_pair_t value, out worker_bitmap_t before) {
            before = value.second;
            if (value.second == 0) {
                value.second = md.worker_bit;
                value.first = value.first & ~md.worker_bit;
            }
        }
    };

    // Round in progress: a rank not yet seen joins (join_bit is 0 when the
    // element count differs, which makes the update a no-op). A
    // retransmission (bit already set) changes nothing, not even the other set.
    RegisterAction<bitmap_pair_t, slot_index_t, worker_bitmap_t>(bitmap) join_set0 = {
        void apply(inout bitmap_pair_t value, out worker_bitmap_t before) {
            before = value.first;
            if (value.first != 0 && (value.first & md.worker_bit) == 0) {
                value.first = value.first | md.join_bit;
                value.second = value.second & ~md.join_bit;
            }
        }
    };

    RegisterAction<bitmap_pair_t, slot_index_t, worker_bitmap_t>(bitmap) join_set1 = {
        void apply(inout bitmap_pair_t value, out worker_bitmap_t before) {
            before = value.second;
            if (value.second != 0 && (value.second & md.worker_bit) == 0) {
                value.second = value.second | md.join_bit;
                value.first = value.first & ~md.join_bit;
            }
        }
    };

    action do_check_round() {
        md.seq_code = (bit<8>)check_round.execute(md.pool);
    }

    action do_start_set0() {
        md.bitmap_before = start_set0.execute(md.slot_index);
    }
    action do_start_set1() {
        md.bitmap_before = start_set1.execute(md.slot_index);
    }
    action do_join_set0() {
        md.bitmap_before = join_set0.execute(md.slot_index);
    }
    action do_join_set1() {
        md.bitmap_before = join_set1.execute(md.slot_index);
    }

    table update_bitmap {
        key = {
            hdr.agg.set : exact;
            md.seq_code : exact;
        }
        actions = {
            do_start_set0;
            do_start_set1;
            do_join_set0;
            do_join_set1;
            @defaultonly NoAction;
        }
        const entries = {
            (0, SEQ_NEW) : do_start_set0();
            (1, SEQ_NEW) : do_start_set1();
            (0, SEQ_SAME) : do_join_set0();
            (1, SEQ_SAME) : do_join_set1();
            (0, SEQ_SAME_OTHER_LEN) : do_join_set0();
            (1, SEQ_SAME_OTHER_LEN) : do_join_set1();
        }
        const default_action = NoAction();
        size = 8;
    }

    apply {
        do_check_round();
        if (md.seq_code == SEQ_OLD) {
            md.drop_reason = DROP_STALE_SEQUENCE;
        } else {
            if (md.seq_code == SEQ_SAME) {
                md.join_bit = md.worker_bit;
            } else {
                md.join_bit = 0;
            }
            update_bitmap.apply();
            md.seen = md.bitmap_before & md.worker_bit;

            if (md.seq_code == SEQ_NEW) {
                if (md.bitmap_before == 0) {
                    md.agg_op = AGG_WRITE;
                } else {
                    // A newer seq while the set is still in use (see above).
                    md.drop_reason = DROP_STALE_SEQUENCE;
                }
            } else if (md.seen != 0) {
                if (md.seq_code == SEQ_SAME) {
                    // Retransmission: answered if the slot is complete
                    // (worker_counter.p4 decides).
                    md.agg_op = AGG_READ;
                } else {
                    // A retransmission whose length differs from the
                    // stored round cannot carry the stored result.
                    md.drop_reason = DROP_LENGTH_MISMATCH;
                }
            } else if (md.bitmap_before == 0) {
                // Same seq on an emptied set: a stale copy of an old round.
                md.drop_reason = DROP_STALE_SEQUENCE;
            } else if (md.seq_code == SEQ_SAME_OTHER_LEN) {
                md.drop_reason = DROP_LENGTH_MISMATCH;
            } else {
                md.agg_op = AGG_ADD;
            }
        }
    }
}

#endif  // _INA_BITMAP_CHECKER_P4_
