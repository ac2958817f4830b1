/* Admission: header checks, the worker table and the lease table.
 *
 * Architecture-neutral (core P4 plus the `range` match kind, which both
 * tna.p4 and v1model.p4 declare), so the Tofino program and the BMv2 twin
 * share it. Checks run in the order of switch-emu's core: version,
 * malformed fields, message type, worker table (job, rank and source
 * address in one exact match), key, slot lease, element count.
 *
 * On Tofino both tables sit in the first stage and every other field set
 * here depends on the packet alone, so the round check can start in the
 * second stage (README, "Resource estimate").
 */
#ifndef _INA_ADMISSION_P4_
#define _INA_ADMISSION_P4_

#include "configuration.p4"
#include "types.p4"
#include "headers.p4"

control Admission(in headers_t hdr, inout ina_md_t md) {

    // One entry per (job, rank), written by the control plane when the job
    // is installed (p4config). start_mask = worker_bit | the bits of ranks
    // world..31 (used by the Tofino completion mask).
    action admit(worker_bitmap_t worker_bit, worker_bitmap_t start_mask, bit<8> world,
                 bit<16> mgid, bit<32> job_key) {
        md.admitted = true;
        md.worker_bit = worker_bit;
        md.start_mask = start_mask;
        md.world = world;
        md.mgid = mgid;
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

    action in_lease() {
        md.in_lease = true;
    }

    action outside_lease() {
        md.in_lease = false;
    }

    // One entry per job: its leased slots [slot_base, slot_base + count - 1].
    table leases {
        key = {
            hdr.agg.job_id : exact @name("job_id");
            hdr.agg.slot : range @name("slot");
        }
        actions = {
            in_lease;
            @defaultonly outside_lease;
        }
        const default_action = outside_lease();
        size = INA_LEASE_TABLE_SIZE;
    }

    apply {
        // Packet-only fields first (no table result needed). The lease lies
        // inside [0, INA_SLOTS) (checked by the control plane), so the low
        // 13 bits are the whole slot of an admitted packet.
        md.slot_index = hdr.agg.slot[12:0];
        md.pool = hdr.agg.set[0:0] ++ hdr.agg.slot[12:0];
        md.round_tag = ROUND_TAG_VALID | (16w0 ++ hdr.agg.elem_count);
        md.exponent = (int<32>)((int<16>)hdr.agg.exponent);
        md.has_high_lanes = hdr.d32.isValid();

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
            leases.apply();
            if (!md.admitted) {
                md.drop_reason = DROP_UNKNOWN_WORKER;
            } else if (hdr.agg.key != md.job_key) {
                md.drop_reason = DROP_BAD_KEY;
            } else if (!md.in_lease) {
                md.drop_reason = DROP_SLOT_OUTSIDE_LEASE;
            } else if (hdr.agg.elem_count > INA_ELEMENTS_PER_PASS) {
                md.drop_reason = DROP_TOO_MANY_ELEMENTS;
            }
        }
    }
}

#endif  // _INA_ADMISSION_P4_
