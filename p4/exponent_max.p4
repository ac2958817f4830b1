/* Maximum block exponent per (slot, set) (Tofino, stage 4 of 12, next to
 * the bitmap). Exponents are signed 16-bit values kept sign-extended to 32
 * bits so that the stateful ALU compares them as signed words;
 * NO_EXPONENT (i16::MIN) loses every comparison.
 *
 * Classified like the bitmap (by seq code and joined mask) rather than by
 * the seen bit, so that it does not wait a stage for the bitmap: a packet
 * joining a round in progress takes the max even if it turns out to be a
 * retransmission, which is a no-op because workers retransmit identical
 * bytes (README, "Deviations").
 */
#ifndef _INA_EXPONENT_MAX_P4_
#define _INA_EXPONENT_MAX_P4_

#include "configuration.p4"
#include "types.p4"

control ExponentMax(inout ina_md_t md) {

    Register<int<32>, pool_index_t>(INA_POOL_SIZE) max_exponent;

    RegisterAction<int<32>, pool_index_t, int<32>>(max_exponent) exponent_first = {
        void apply(inout int<32> value, out int<32> result) {
            value = md.exponent;
            result = value;
        }
    };

    RegisterAction<int<32>, pool_index_t, int<32>>(max_exponent) exponent_max = {
        void apply(inout int<32> value, out int<32> result) {
            if (md.exponent > value) {
                value = md.exponent;
            }
            result = value;
        }
    };

    RegisterAction<int<32>, pool_index_t, int<32>>(max_exponent) exponent_read = {
        void apply(inout int<32> value, out int<32> result) {
            result = value;
        }
    };

    action do_exponent_first() {
        md.max_exp = exponent_first.execute(md.pool);
    }
    action do_exponent_max() {
        md.max_exp = exponent_max.execute(md.pool);
    }
    action do_exponent_read() {
        md.max_exp = exponent_read.execute(md.pool);
    }

    table update_exponent {
        key = {
            md.seq_code : ternary;
            md.joined_before : ternary;
        }
        actions = {
            do_exponent_first;
            do_exponent_max;
            do_exponent_read;
            @defaultonly NoAction;
        }
        const entries = {
            (SEQ_NEW, _) : do_exponent_first();
            (SEQ_SAME, 0) : NoAction();
            (SEQ_SAME, JOINED_ALL) : do_exponent_read();
            (SEQ_SAME, _) : do_exponent_max();
        }
        const default_action = NoAction();
        size = 8;
    }

    apply {
        update_exponent.apply();
    }
}

#endif  // _INA_EXPONENT_MAX_P4_
