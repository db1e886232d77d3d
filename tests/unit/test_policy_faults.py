"""The self-check's NetworkPolicy faults filter what kube-router programs: their
filters are pure, and each shim is a stand-alone program in front of the real tool."""

import subprocess
import sys

from packetwalk.lab import faults

# kube-router's set names for namespace pw-abc123, policy allow-named-port-alt-1,
# computed with Go's crypto/sha256 and encoding/base32 as policy.go does:
# its first ingress rule's first named port, and the policy's own pod set.
NAMED_PORT_SET = "KUBE-DST-4Z2OJNYMFWRFRSMD"
POD_SET = "KUBE-DST-LA6VAXEKML3BWIVO"
COMMENT = ('-m comment --comment "rule to ACCEPT traffic from all sources to dest pods selected '
           'by policy name: allow-named-port-alt-1 namespace pw-abc123"')


def test_ignoring_except_drops_only_the_nomatch_flags():
    restore = ("create TMP-X hash:net family inet hashsize 1024 maxelem 65536 timeout 0\n"
               "add TMP-X 10.244.1.0/28 timeout 0\n"
               "add TMP-X 10.244.1.7/32 timeout 0 nomatch\n"
               "swap TMP-X KUBE-SRC-X\n")
    assert faults.ignore_except(restore) == restore.replace(" nomatch", "")
    assert faults.ignore_except("") == ""


def test_ignoring_named_ports_drops_only_named_port_rules():
    named = f"-A KUBE-NWPLCY-X {COMMENT} -m set --match-set {NAMED_PORT_SET} dst -p TCP --dport 8082 -j MARK --set-xmark 0x10000/0x10000"
    numeric = f"-A KUBE-NWPLCY-X {COMMENT} -m set --match-set {POD_SET} dst -p TCP --dport 8080 -j MARK --set-xmark 0x10000/0x10000"
    other = "-A KUBE-ROUTER-FORWARD -m comment --comment \"x\" -j KUBE-POD-FW-Y"
    rules = f"*filter\n{named}\n{numeric}\n{other}\nCOMMIT\n"
    assert faults.ignore_named_ports(rules) == f"*filter\n{numeric}\n{other}\nCOMMIT\n"


def test_each_fault_is_a_shim_kube_router_finds_first(tmp_path):
    assert set(faults.ENFORCER_SHIMS) <= set(faults.FAULTS)
    real = tmp_path / "real"
    real.mkdir()
    (real / "ipset").write_text('#!/bin/sh\necho "args: $*"\ncat\n')
    (real / "ipset").chmod(0o755)
    shims = tmp_path / "shims"
    shims.mkdir()
    tool, rewrite, when = faults.ENFORCER_SHIMS["policy-ignores-except"]
    (shims / tool).write_text(faults.shim_script(tool, rewrite, when))
    (shims / tool).chmod(0o755)
    env = {"PATH": f"{shims}:{real}:/usr/bin:/bin"}

    def ipset(*args, stdin):
        return subprocess.run(["ipset", *args], input=stdin, text=True, capture_output=True,
                              env=env, check=True).stdout

    assert ipset("restore", "-exist", stdin="add X 1 timeout 0 nomatch\n") == (
        "args: restore -exist\nadd X 1 timeout 0\n")
    assert ipset("save", stdin="add X 1 nomatch\n") == "args: save\nadd X 1 nomatch\n"
    compile(faults.shim_script("iptables-restore", faults.ignore_named_ports, ""), "shim", "exec")
    assert sys.executable  # the shims run on the host's python3, as the lab does
