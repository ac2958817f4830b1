"""A Mininet switch that runs `switch-emu serve` on its interfaces.

Like mininet.nodelib.LinuxBridge it wraps an external program, but it runs
in its own network namespace (inNamespace=True) so that its CPU port (the
`ctl`/`pctl` veth pair carrying the switch IP and the TCP control plane)
adds nothing to the root namespace. Works with Debian's mininet under
/usr/bin/python3 and needs no OpenFlow controller (controller=None).

Hosts attached to it keep their offloads (TSO/GSO, checksum): the switch's
ports exchange each frame's offload header with the kernel, so super-frames
and partial checksums cross it intact.
"""

from mininet.node import Switch


class InaSwitch(Switch):
    "switch-emu as an L2 switch with in-network aggregation at `ip`."

    def __init__(self, name, ip='10.0.0.254', prefix=8, mac='02:77:00:00:00:fe',
                 binary='switch-emu', extra_args='', **kwargs):
        kwargs.setdefault('inNamespace', True)
        self.switch_ip, self.prefix, self.switch_mac = ip, prefix, mac
        self.binary, self.extra_args = binary, extra_args
        self.serve_pid = None
        Switch.__init__(self, name, **kwargs)

    def data_ports(self):
        "Names of the data ports (the links Mininet made)."
        return [i.name for i in self.intfList() if i.name != 'lo' and self.name in i.name]

    def start(self, _controllers):
        ports = self.data_ports()
        for port in ports:
            self.cmd('ip link set', port, 'up')
        self.cmd('ip link add ctl address', self.switch_mac, 'type veth peer name pctl')
        self.cmd('ip addr add %s/%d dev ctl' % (self.switch_ip, self.prefix))
        self.cmd('ip link set ctl up')
        self.cmd('ip link set pctl up')
        args = [self.binary, 'serve']
        for port in ports + ['pctl']:
            args += ['--port', port]
        args += ['--cpu-port', 'pctl', '--ip', self.switch_ip, '--mac', self.switch_mac,
                 '--control', '%s:48865' % self.switch_ip]
        log = '/tmp/ina-switch-%s.log' % self.name
        self.cmd(' '.join(args), self.extra_args, '>', log, '2>&1 &')
        self.serve_pid = self.cmd('echo $!').strip()

    def stop(self, deleteIntfs=True):
        if self.serve_pid:
            self.cmd('kill', self.serve_pid)
            self.cmd('wait', self.serve_pid)
            self.serve_pid = None
        self.cmd('ip link del ctl')
        super(InaSwitch, self).stop(deleteIntfs)
