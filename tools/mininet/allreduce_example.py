#!/usr/bin/python3
"""Mininet example: N hosts on one InaSwitch run an allreduce and verify it.

Every host runs `host-agent bench` (which joins the job through the
switch's control plane, runs the allreduce over kernel UDP to the switch IP
and checks the result against the exact sum, exiting non-zero if it is
wrong); the script prints each host's report and exits 0 only if every host
verified its result.

    sudo /usr/bin/python3 tools/mininet/allreduce_example.py --hosts 4 \\
        --switch-emu target/release/switch-emu --host-agent target/release/host-agent

Debian's mininet package, /usr/bin/python3, no OpenFlow controller.
"""

import argparse
import os
import sys
import time
from functools import partial

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from mininet.log import setLogLevel  # noqa: E402
from mininet.net import Mininet  # noqa: E402
from mininet.topo import Topo  # noqa: E402

from ina_switch import InaSwitch  # noqa: E402

SWITCH_IP = '10.0.0.254'
CONTROL_PORT = 48865


class StarTopo(Topo):
    "N hosts on one switch; names start with `prefix` so that runs do not collide."

    def build(self, hosts=4, prefix=''):
        switch = self.addSwitch('%ss1' % prefix)
        for k in range(hosts):
            host = self.addHost('%sh%d' % (prefix, k + 1), ip='10.0.0.%d/8' % (k + 1))
            self.addLink(host, switch)


def wait_ready(host, timeout=20.0):
    "Waits until the switch answers ICMP and its control port accepts connections."
    deadline = time.time() + timeout
    while time.time() < deadline:
        ping = host.cmd('ping -c1 -W1 -q', SWITCH_IP, '>/dev/null 2>&1; echo $?').strip()
        tcp = host.cmd("bash -c ': </dev/tcp/%s/%d' >/dev/null 2>&1; echo $?"
                       % (SWITCH_IP, CONTROL_PORT)).strip()
        if ping.endswith('0') and tcp.endswith('0'):
            return True
        time.sleep(0.2)
    return False


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--hosts', type=int, default=4)
    parser.add_argument('--switch-emu', default='switch-emu', help='switch-emu binary')
    parser.add_argument('--host-agent', default='host-agent', help='host-agent binary')
    parser.add_argument('--dtype', default='f32', choices=['f32', 'i32'])
    parser.add_argument('--size', default='4MiB', help='tensor size per host (host-agent bench --sizes)')
    parser.add_argument('--elements', type=int, default=256, help='elements per packet')
    parser.add_argument('--window', type=int, default=64, help='slots in flight')
    parser.add_argument('--prefix', default='', help='prefix of node names (unique per run)')
    parser.add_argument('--timeout', type=float, default=120.0, help='seconds for the allreduce')
    args = parser.parse_args()

    setLogLevel('warning')
    switch = partial(InaSwitch, ip=SWITCH_IP, prefix=8, binary=args.switch_emu,
                     extra_args='--elements %d' % args.elements)
    net = Mininet(topo=StarTopo(hosts=args.hosts, prefix=args.prefix), switch=switch,
                  controller=None, autoSetMacs=True, waitConnected=False)
    ok = False
    try:
        net.start()
        if not wait_ready(net.hosts[0]):
            print('switch-emu did not come up; see /tmp/ina-switch-%s.log' % net.switches[0].name)
            return 1
        procs = []
        for rank, host in enumerate(net.hosts):
            cmd = [args.host_agent, 'bench',
                   '--control', '%s:%d' % (SWITCH_IP, CONTROL_PORT),
                   '--job', 'mininet-example', '--rank', str(rank), '--world', str(args.hosts),
                   '--dtype', args.dtype, '--sizes', args.size, '--iters', '1', '--warmup', '0',
                   '--window', str(args.window), '--elements', str(args.elements)]
            procs.append((host, host.popen(cmd)))
        failed = 0
        deadline = time.time() + args.timeout
        for host, proc in procs:
            try:
                out, err = proc.communicate(timeout=max(1.0, deadline - time.time()))
            except Exception:  # subprocess.TimeoutExpired
                proc.kill()
                out, err = proc.communicate()
                print('%s: timed out' % host.name)
            text = (out or b'').decode(errors='replace') + (err or b'').decode(errors='replace')
            for line in text.strip().splitlines():
                print('%s (%s): %s' % (host.name, host.IP(), line))
            if proc.returncode != 0:
                failed += 1
                print('%s: host-agent bench exited with %s' % (host.name, proc.returncode))
        ok = failed == 0
        if ok:
            print('allreduce of %s %s verified on all %d hosts' % (args.size, args.dtype, args.hosts))
        else:
            print('allreduce FAILED on %d of %d hosts' % (failed, args.hosts))
    finally:
        net.stop()
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
