/* Round sequence check (Tofino, stage 2 of 12): the seq of the current
 * round per (slot, set).
 *
 * One 32-bit register, two comparisons (serial-newer and equal), which is
 * what one stateful ALU evaluates. A serial-newer seq starts a round at
 * once; the core starts one only on an empty bitmap, which is the same
 * for members that follow the protocol (README, "Deviations").
 *
 * There is no valid flag: the control plane resets a leased entry to
 * 0xffffffff, "one before 0". Workers number packets from 0 and first
 * reach (slot, set) at a seq below 2 x window, which is serial-newer.
 */
#ifndef _INA_ROUND_CHECKER_P4_
#define _INA_ROUND_CHECKER_P4_

#include "configuration.p4"
#include "types.p4"
#include "headers.p4"

control RoundChecker(in headers_t hdr, inout ina_md_t md) {

    Register<bit<32>, pool_index_t>(INA_POOL_SIZE, 32w0xffffffff) rounds;

    RegisterAction<bit<32>, pool_index_t, bit<32>>(rounds) check_round = {
        void apply(inout bit<32> value, out bit<32> code) {
            code = (bit<32>)SEQ_OLD;
            if ((int<32>)(hdr.agg.seq - value) > 0) {
                value = hdr.agg.seq;
                code = (bit<32>)SEQ_NEW;
            } else if (hdr.agg.seq == value) {
                code = (bit<32>)SEQ_SAME;
            }
        }
    };

    action do_check_round() {
        md.seq_code = (bit<8>)check_round.execute(md.pool);
    }

    apply {
        do_check_round();
    }
}

#endif  // _INA_ROUND_CHECKER_P4_
