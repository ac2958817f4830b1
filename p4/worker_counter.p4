/* Contributions per (slot, set) (Tofino): the slot is complete when the
 * count reaches the job's world size. The count is kept next to the bitmap
 * (rather than counting bits) because a stateful ALU cannot count bits.
 */
#ifndef _INA_WORKER_COUNTER_P4_
#define _INA_WORKER_COUNTER_P4_

#include "configuration.p4"
#include "types.p4"

control WorkerCounter(inout ina_md_t md) {

    Register<bit<32>, pool_index_t>(INA_POOL_SIZE) worker_count;

    RegisterAction<bit<32>, pool_index_t, bit<32>>(worker_count) count_first = {
        void apply(inout bit<32> value, out bit<32> count) {
            value = 1;
            count = value;
        }
    };

    RegisterAction<bit<32>, pool_index_t, bit<32>>(worker_count) count_add = {
        void apply(inout bit<32> value, out bit<32> count) {
            value = value + 1;
            count = value;
        }
    };

    RegisterAction<bit<32>, pool_index_t, bit<32>>(worker_count) count_read = {
        void apply(inout bit<32> value, out bit<32> count) {
            count = value;
        }
    };

    action do_count_first() {
        md.count = (bit<8>)count_first.execute(md.pool);
    }
    action do_count_add() {
        md.count = (bit<8>)count_add.execute(md.pool);
    }
    action do_count_read() {
        md.count = (bit<8>)count_read.execute(md.pool);
    }

    table count_workers {
        key = {
            md.agg_op : exact;
        }
        actions = {
            do_count_first;
            do_count_add;
            do_count_read;
            @defaultonly NoAction;
        }
        const entries = {
            AGG_WRITE : do_count_first();
            AGG_ADD : do_count_add();
            AGG_READ : do_count_read();
        }
        const default_action = NoAction();
        size = 4;
    }

    apply {
        count_workers.apply();
        md.complete = (md.count == md.world);
        if (md.agg_op == AGG_READ && !md.complete) {
            md.drop_reason = DROP_DUPLICATE_INCOMPLETE;
        }
    }
}

#endif  // _INA_WORKER_COUNTER_P4_
