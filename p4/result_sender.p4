/* Result sender (egress, architecture-neutral): turns a result copy into a
 * datagram from the switch to one worker.
 *
 * Multicast copies carry the replication id of their PRE node, which the
 * control plane sets to the worker's rank; a unicast answer to a
 * retransmission goes to the rank in the header. (job, rank) -> address.
 */
#ifndef _INA_RESULT_SENDER_P4_
#define _INA_RESULT_SENDER_P4_

#include "configuration.p4"
#include "types.p4"
#include "headers.p4"

control ResultSender(inout headers_t hdr, in bit<8> kind, in bit<16> egress_rid,
                     inout bool drop) {

    bit<16> dst_rank;

    action set_switch_identity(mac_addr_t switch_mac, ipv4_addr_t switch_ip) {
        hdr.ethernet.src_addr = switch_mac;
        hdr.ipv4.src_addr = switch_ip;
    }

    // Keyless: the default action holds the switch's data-plane addresses.
    table switch_identity {
        actions = {
            set_switch_identity;
        }
        default_action = set_switch_identity(0, 0);
        size = 1;
    }

    action set_worker_addr(mac_addr_t mac, ipv4_addr_t ip, bit<16> udp_port) {
        hdr.ethernet.dst_addr = mac;
        hdr.ipv4.dst_addr = ip;
        hdr.ipv4.ttl = 64;
        hdr.udp.src_port = INA_UDP_PORT;
        hdr.udp.dst_port = udp_port;
        // The UDP checksum is optional over IPv4; the payload was rewritten.
        hdr.udp.checksum = 0;
    }

    action unknown_rank() {
        drop = true;
    }

    table result_addr {
        key = {
            hdr.agg.job_id : exact @name("job_id");
            dst_rank : exact @name("rank");
        }
        actions = {
            set_worker_addr;
            @defaultonly unknown_rank;
        }
        const default_action = unknown_rank();
        size = INA_RESULT_ADDR_TABLE_SIZE;
    }

    apply {
        if (kind == KIND_RESULT_MCAST) {
            dst_rank = egress_rid;
        } else {
            dst_rank = hdr.agg.rank;
        }
        switch_identity.apply();
        result_addr.apply();
    }
}

#endif  // _INA_RESULT_SENDER_P4_
