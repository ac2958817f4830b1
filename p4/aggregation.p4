/* Aggregation processors (Tofino): the sums of every (slot, set), 64 lanes.
 *
 * A Tofino 1 stateful ALU updates a 64-bit register word (two 32-bit lanes)
 * per pass but returns only one 32-bit value. 32 pair registers therefore
 * add all 64 lanes in one pass (4 per stage, stages 5-12 of 12) but can
 * only hand back half of a result: the "first" lane of each pair in the pass that
 * completes the slot (or answers a retransmission) and the "second" lane in
 * a second pass after recirculation (AGG_HARVEST). The pairing puts the
 * 32-element chunk (d32) in the second lanes, so payloads of fewer than 32
 * elements (no d32) never need the second pass.
 *
 * Pair k: first = lane k of d16 d8 d4 d2 d1 d1x (k = 0..31 in that order),
 * second = d32.e<k>.
 */
#ifndef _INA_AGGREGATION_P4_
#define _INA_AGGREGATION_P4_

#include "configuration.p4"
#include "types.p4"
#include "headers.p4"

control Processor(inout value_t first, inout value_t second, in ina_md_t md) {

    Register<value_pair_t, pool_index_t>(INA_POOL_SIZE) sums;

    // First contribution of a round: overwrite (the old round's sums are dead).
    RegisterAction<value_pair_t, pool_index_t, value_t>(sums) sum_write = {
        void apply(inout value_pair_t value, out value_t read_first) {
            value.first = first;
            value.second = second;
            read_first = value.first;
        }
    };

    // Later contributions: wrapping 32-bit addition of the big-endian words.
    RegisterAction<value_pair_t, pool_index_t, value_t>(sums) sum_add = {
        void apply(inout value_pair_t value, out value_t read_first) {
            value.first = value.first + first;
            value.second = value.second + second;
            read_first = value.first;
        }
    };

    RegisterAction<value_pair_t, pool_index_t, value_t>(sums) sum_read_first = {
        void apply(inout value_pair_t value, out value_t read_first) {
            read_first = value.first;
        }
    };

    RegisterAction<value_pair_t, pool_index_t, value_t>(sums) sum_read_second = {
        void apply(inout value_pair_t value, out value_t read_second) {
            read_second = value.second;
        }
    };

    action do_write() {
        first = sum_write.execute(md.pool);
    }
    action do_add() {
        first = sum_add.execute(md.pool);
    }
    action do_read() {
        first = sum_read_first.execute(md.pool);
    }
    action do_harvest() {
        second = sum_read_second.execute(md.pool);
    }

    // A joining packet adds only if its rank had not joined the round yet
    // (already == 0); a retransmission into an incomplete round is then
    // dropped by next_step without touching the sums.
    table process {
        key = {
            md.agg_op : ternary;
            md.already : ternary;
        }
        actions = {
            do_write;
            do_add;
            do_read;
            do_harvest;
            @defaultonly NoAction;
        }
        const entries = {
            (AGG_WRITE, _) : do_write();
            (AGG_ADD, 0) : do_add();
            (AGG_READ, _) : do_read();
            (AGG_HARVEST, _) : do_harvest();
        }
        const default_action = NoAction();
        size = 8;
    }

    apply {
        process.apply();
    }
}

control Aggregation(inout headers_t hdr, in ina_md_t md) {
    Processor() sum00;
    Processor() sum01;
    Processor() sum02;
    Processor() sum03;
    Processor() sum04;
    Processor() sum05;
    Processor() sum06;
    Processor() sum07;
    Processor() sum08;
    Processor() sum09;
    Processor() sum10;
    Processor() sum11;
    Processor() sum12;
    Processor() sum13;
    Processor() sum14;
    Processor() sum15;
    Processor() sum16;
    Processor() sum17;
    Processor() sum18;
    Processor() sum19;
    Processor() sum20;
    Processor() sum21;
    Processor() sum22;
    Processor() sum23;
    Processor() sum24;
    Processor() sum25;
    Processor() sum26;
    Processor() sum27;
    Processor() sum28;
    Processor() sum29;
    Processor() sum30;
    Processor() sum31;

    apply {
        sum00.apply(hdr.d16.e00, hdr.d32.e00, md);
        sum01.apply(hdr.d16.e01, hdr.d32.e01, md);
        sum02.apply(hdr.d16.e02, hdr.d32.e02, md);
        sum03.apply(hdr.d16.e03, hdr.d32.e03, md);
        sum04.apply(hdr.d16.e04, hdr.d32.e04, md);
        sum05.apply(hdr.d16.e05, hdr.d32.e05, md);
        sum06.apply(hdr.d16.e06, hdr.d32.e06, md);
        sum07.apply(hdr.d16.e07, hdr.d32.e07, md);
        sum08.apply(hdr.d16.e08, hdr.d32.e08, md);
        sum09.apply(hdr.d16.e09, hdr.d32.e09, md);
        sum10.apply(hdr.d16.e10, hdr.d32.e10, md);
        sum11.apply(hdr.d16.e11, hdr.d32.e11, md);
        sum12.apply(hdr.d16.e12, hdr.d32.e12, md);
        sum13.apply(hdr.d16.e13, hdr.d32.e13, md);
        sum14.apply(hdr.d16.e14, hdr.d32.e14, md);
        sum15.apply(hdr.d16.e15, hdr.d32.e15, md);
        sum16.apply(hdr.d8.e00, hdr.d32.e16, md);
        sum17.apply(hdr.d8.e01, hdr.d32.e17, md);
        sum18.apply(hdr.d8.e02, hdr.d32.e18, md);
        sum19.apply(hdr.d8.e03, hdr.d32.e19, md);
        sum20.apply(hdr.d8.e04, hdr.d32.e20, md);
        sum21.apply(hdr.d8.e05, hdr.d32.e21, md);
        sum22.apply(hdr.d8.e06, hdr.d32.e22, md);
        sum23.apply(hdr.d8.e07, hdr.d32.e23, md);
        sum24.apply(hdr.d4.e00, hdr.d32.e24, md);
        sum25.apply(hdr.d4.e01, hdr.d32.e25, md);
        sum26.apply(hdr.d4.e02, hdr.d32.e26, md);
        sum27.apply(hdr.d4.e03, hdr.d32.e27, md);
        sum28.apply(hdr.d2.e00, hdr.d32.e28, md);
        sum29.apply(hdr.d2.e01, hdr.d32.e29, md);
        sum30.apply(hdr.d1.e00, hdr.d32.e30, md);
        sum31.apply(hdr.d1x.e00, hdr.d32.e31, md);
    }
}

#endif  // _INA_AGGREGATION_P4_
