/* Maximum block exponent per (slot, set) (Tofino). Exponents are signed
 * 16-bit values; NO_EXPONENT (i16::MIN) loses every comparison, so packets
 * without an exponent do not change the maximum. Kept sign-extended to 32
 * bits so that the stateful ALU compares them as signed words.
 */
#ifndef _INA_EXPONENT_MAX_P4_
#define _INA_EXPONENT_MAX_P4_

#include "configuration.p4"
#include "types.p4"
#include "headers.p4"

control ExponentMax(inout headers_t hdr, in ina_md_t md) {

    Register<int<32>, pool_index_t>(INA_POOL_SIZE) max_exponent;

    int<32> exponent;

    RegisterAction<int<32>, pool_index_t, int<32>>(max_exponent) exponent_first = {
        void apply(inout int<32> value, out int<32> result) {
            value = exponent;
            result = value;
        }
    };

    RegisterAction<int<32>, pool_index_t, int<32>>(max_exponent) exponent_max = {
        void apply(inout int<32> value, out int<32> result) {
            if (exponent > value) {
                value = exponent;
            }
            result = value;
        }
    };

    RegisterAction<int<32>, pool_index_t, int<32>>(max_exponent) exponent_read = {
        void apply(inout int<32> value, out int<32> result) {
            result = value;
        }
    };

    int<32> result;

    action do_exponent_first() {
        result = exponent_first.execute(md.pool);
    }
    action do_exponent_max() {
        result = exponent_max.execute(md.pool);
    }
    action do_exponent_read() {
        result = exponent_read.execute(md.pool);
    }

    table update_exponent {
        key = {
            md.agg_op : exact;
        }
        actions = {
            do_exponent_first;
            do_exponent_max;
            do_exponent_read;
            @defaultonly NoAction;
        }
        const entries = {
            AGG_WRITE : do_exponent_first();
            AGG_ADD : do_exponent_max();
            AGG_READ : do_exponent_read();
        }
        const default_action = NoAction();
        size = 4;
    }

    apply {
        exponent = (int<32>)((int<16>)hdr.agg.exponent);
        result = exponent;
        update_exponent.apply();
        // Only results leave the switch, and they carry the maximum.
        hdr.agg.exponent = (bit<16>)((bit<32>)result);
    }
}

#endif  // _INA_EXPONENT_MAX_P4_
