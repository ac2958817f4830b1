/* ARP responder for the switch's data-plane IP (architecture-neutral).
 *
 * Workers resolve the switch's IP to its MAC with ARP; the switch answers
 * itself so that no host needs a static neighbour entry. (ICMP echo is not
 * answered: nothing in the protocol needs it.)
 */
#ifndef _INA_ARP_ICMP_P4_
#define _INA_ARP_ICMP_P4_

#include "types.p4"
#include "headers.p4"

control ArpIcmp(inout headers_t hdr, in bit<9> ingress_port,
                inout bit<9> egress_port, inout bool replied) {

    action reply_arp(mac_addr_t switch_mac) {
        ipv4_addr_t asked = hdr.arp.tpa;
        hdr.arp.oper = ARP_OPER_REPLY;
        hdr.arp.tha = hdr.arp.sha;
        hdr.arp.tpa = hdr.arp.spa;
        hdr.arp.sha = switch_mac;
        hdr.arp.spa = asked;
        hdr.ethernet.dst_addr = hdr.ethernet.src_addr;
        hdr.ethernet.src_addr = switch_mac;
        egress_port = ingress_port;
        replied = true;
    }

    // Keyed on the asked IP: one entry, the switch's data-plane address.
    table arp_reply {
        key = {
            hdr.arp.tpa : exact @name("target_ip");
        }
        actions = {
            reply_arp;
            @defaultonly NoAction;
        }
        const default_action = NoAction();
        size = 4;
    }

    apply {
        if (hdr.arp.isValid() && hdr.arp.oper == ARP_OPER_REQUEST) {
            arp_reply.apply();
        }
    }
}

#endif  // _INA_ARP_ICMP_P4_
