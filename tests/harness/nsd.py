"""A private NSD (Debian's nsd, an authoritative DNS server) on 127.0.0.1 serving test zones,
for `mailgate check`. Started in the foreground (-d) with its own config, pid file and zone
list in a temporary directory, no chroot and no user switch (so it runs as whoever runs the
tests), stopped by its PID.

NSD answers authoritatively and follows CNAMEs inside its zones, which is all the tests need:
every name the checked records lead to lives in the zones served here."""
import os
import subprocess

from .procs import LOCALHOST, free_port, stop_process, wait_until

CONF = """server:
  ip-address: {host}@{port}
  port: {port}
  username: ""
  chroot: ""
  zonesdir: "{dir}"
  database: ""
  pidfile: "{dir}/nsd.pid"
  xfrdfile: "{dir}/xfrd.state"
  zonelistfile: "{dir}/zone.list"
  logfile: "{dir}/nsd.log"
  server-count: 1
  verbosity: 1
  hide-version: yes
remote-control:
  control-enable: no
"""
ZONE_HEADER = """$ORIGIN {name}.
$TTL 300
@ IN SOA ns.{name}. hostmaster.{name}. 1 3600 600 86400 300
@ IN NS ns.{name}.
ns IN A 127.0.0.1
"""


class Nsd:
    """zones: {zone name: records in zone-file syntax (absolute names or relative to it)}."""

    def __init__(self, directory, zones):
        self.dir = os.path.abspath(directory)
        self.zones = zones
        self.port = free_port()
        self.proc = None

    @property
    def address(self):
        return f"{LOCALHOST}:{self.port}"

    def log_text(self):
        try:
            with open(os.path.join(self.dir, "nsd.log")) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        conf = CONF.format(host=LOCALHOST, port=self.port, dir=self.dir)
        for name, records in self.zones.items():
            with open(os.path.join(self.dir, f"{name}.zone"), "w") as f:
                f.write(ZONE_HEADER.format(name=name) + records + "\n")
            conf += f"zone:\n  name: {name}\n  zonefile: {name}.zone\n"
        path = os.path.join(self.dir, "nsd.conf")
        with open(path, "w") as f:
            f.write(conf)
        check = subprocess.run(["nsd-checkconf", path], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self.proc = subprocess.Popen(["nsd", "-c", path, "-d"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT)
        loaded = [f"zone {name} read with success" for name in self.zones]
        wait_until(lambda: self.proc.poll() is not None or
                   ("nsd started" in self.log_text()
                    and all(z in self.log_text() for z in loaded)),
                   timeout=20, what="nsd to load its zones")
        assert self.proc.poll() is None, "nsd exited:\n" + self.log_text()
        return self

    def stop(self):
        stop_process(self.proc)
        self.proc = None
