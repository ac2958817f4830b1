/* L2 forwarding of traffic that is not aggregation (architecture-neutral).
 *
 * Exact match on the destination MAC, one entry per host the control plane
 * knows (p4config writes one per worker); unknown destinations are dropped
 * rather than flooded, since the switch serves a closed set of hosts.
 */
#ifndef _INA_FORWARDING_P4_
#define _INA_FORWARDING_P4_

#include "configuration.p4"
#include "types.p4"
#include "headers.p4"

control Forwarding(in headers_t hdr, inout bit<9> egress_port, inout bool hit) {

    action forward(bit<9> port) {
        egress_port = port;
        hit = true;
    }

    action miss() {
        hit = false;
    }

    table l2_forward {
        key = {
            hdr.ethernet.dst_addr : exact @name("dst_addr");
        }
        actions = {
            forward;
            @defaultonly miss;
        }
        const default_action = miss();
        size = INA_L2_TABLE_SIZE;
    }

    apply {
        l2_forward.apply();
    }
}

#endif  // _INA_FORWARDING_P4_
