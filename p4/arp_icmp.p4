/* ARP and ICMP echo responders for the switch's data-plane IP
 * (architecture-neutral).
 *
 * Workers resolve the switch's IP to its MAC with ARP; the switch answers
 * itself so that no host needs a static neighbour entry. ICMP echo (ping)
 * is answered by the BMv2 twin only, as a reachability check for whoever
 * sets a switch up; the Tofino program does not apply IcmpEcho (nothing in
 * the protocol needs it, and it keeps the Tofino ingress small).
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

// Echo reply in place: swap the addresses, keep the TTL, so that the IPv4
// header checksum stays valid (a ones' complement sum does not depend on
// word order), and fix the ICMP checksum for the type change 8 -> 0
// incrementally (RFC 1624, eqn. 3: HC' = ~(~HC + ~m + m'), m = 0x0800, m' = 0).
control IcmpEcho(inout headers_t hdr, in bit<9> ingress_port,
                 inout bit<9> egress_port, inout bool replied) {

    action reply_echo() {
        mac_addr_t mac = hdr.ethernet.dst_addr;
        hdr.ethernet.dst_addr = hdr.ethernet.src_addr;
        hdr.ethernet.src_addr = mac;
        ipv4_addr_t ip = hdr.ipv4.dst_addr;
        hdr.ipv4.dst_addr = hdr.ipv4.src_addr;
        hdr.ipv4.src_addr = ip;
        hdr.icmp.type = ICMP_ECHO_REPLY;
        bit<17> sum = (1w0 ++ ~hdr.icmp.checksum) + 17w0xf7ff;
        bit<16> folded = sum[15:0] + (15w0 ++ sum[16:16]);
        hdr.icmp.checksum = ~folded;
        egress_port = ingress_port;
        replied = true;
    }

    // Keyed on the destination IP: one entry, the switch's data-plane address.
    table echo_reply {
        key = {
            hdr.ipv4.dst_addr : exact @name("dst_addr");
        }
        actions = {
            reply_echo;
            @defaultonly NoAction;
        }
        const default_action = NoAction();
        size = 4;
    }

    apply {
        if (hdr.icmp.isValid() && hdr.icmp.type == ICMP_ECHO_REQUEST && hdr.icmp.code == 0) {
            echo_reply.apply();
        }
    }
}

#endif  // _INA_ARP_ICMP_P4_
