/* Admission: header checks and the worker table.
 *
 * Architecture-neutral (core P4 only), so the Tofino program and the BMv2
 * twin share it. Checks run in the order of switch-emu's core:
 * version, malformed fields, message type, worker table (job, rank and
 * source address in one exact match), key, slot lease, element count.
 */
#ifndef _INA_ADMISSION_P4_
#define _INA_ADMISSION_P4_

#include "configuration.p4"
#include "types.p4"
#include "headers.p4"

control Admission(in headers_t hdr, inout ina_md_t md) {

    // One entry per (job, rank), written by the control plane when the job
    // is installed (p4config); the parameters are the job's lease.
    action admit(worker_bitmap_t worker_bit, bit<8> world, bit<16> mgid,
                 bit<16> slot_base, bit<16> slot_count, bit<32> job_key) {
        md.admitted = true;
        md.worker_bit = worker_bit;
        md.world = world;
        md.mgid = mgid;
        md.slot_base = slot_base;
        md.slot_count = slot_count;
        md.job_key = job_key;
    }

    action reject() {
        md.admitted = false;
    }

    table workers {
        key = {
            hdr.agg.job_id : exact @name("job_id");
            hdr.agg.rank : exact @name("rank");
            hdr.ipv4.src_addr : exact @name("src_addr");
            hdr.udp.src_port : exact @name("src_port");
        }
        actions = {
            admit;
            @defaultonly reject;
        }
        const default_action = reject();
        size = INA_WORKER_TABLE_SIZE;
    }

    apply {
        if (hdr.agg.version != INA_VERSION) {
            md.drop_reason = DROP_BAD_VERSION;
        } else if (hdr.agg.msg_type != MSG_CONTRIBUTION && hdr.agg.msg_type != MSG_RESULT) {
            md.drop_reason = DROP_MALFORMED;
        } else if (hdr.agg.set != 0 && hdr.agg.set != 1) {
            md.drop_reason = DROP_MALFORMED;
        } else if (hdr.agg.msg_type != MSG_CONTRIBUTION) {
            md.drop_reason = DROP_NOT_CONTRIBUTION;
        } else {
            workers.apply();
            // slot - slot_base wraps to a large value below the base, so one
            // unsigned comparison checks both ends of the lease. The
            // comparison is done on a 17-bit difference whose top bit is the
            // borrow, which maps to a plain bit test on every target.
            md.slot_offset = hdr.agg.slot - md.slot_base;
            bit<17> lease_diff = (1w0 ++ md.slot_offset) - (1w0 ++ md.slot_count);
            if (!md.admitted) {
                md.drop_reason = DROP_UNKNOWN_WORKER;
            } else if (hdr.agg.key != md.job_key) {
                md.drop_reason = DROP_BAD_KEY;
            } else if (lease_diff[16:16] == 0) {
                md.drop_reason = DROP_SLOT_OUTSIDE_LEASE;
            } else if (hdr.agg.elem_count > INA_ELEMENTS_PER_PASS) {
                md.drop_reason = DROP_TOO_MANY_ELEMENTS;
            } else {
                // The lease lies inside [0, INA_SLOTS) (checked by the
                // control plane), so the low 13 bits are the whole slot.
                md.slot_index = hdr.agg.slot[12:0];
                md.pool = hdr.agg.set[0:0] ++ hdr.agg.slot[12:0];
                md.round_tag = ROUND_TAG_VALID | (16w0 ++ hdr.agg.elem_count);
                md.has_high_lanes = hdr.d32.isValid();
            }
        }
    }
}

#endif  // _INA_ADMISSION_P4_
