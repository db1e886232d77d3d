"""What the running lab made, recorded so `down` and `status` can find it.

`down` also sweeps by naming convention (pw-* namespaces and links, the
packetwalk cgroups), so a lab whose state file was lost still comes down.
"""

import json
from dataclasses import asdict, dataclass, field, fields

from . import paths
from .cni import DEFAULT_CNI


@dataclass
class Proc:
    name: str
    node: str
    pid: int
    starttime: int  # from /proc/PID/stat, so a recycled pid is never killed
    argv: list[str]


@dataclass
class State:
    workers: int = 0
    cni: str = DEFAULT_CNI  # the pod network's module in cni/ (a state file without it: bridge)
    proxy_mode: str = "iptables"  # kube-proxy's --proxy-mode (a state file without it: iptables)
    ip_family: str = "ipv4"  # lab up --ip-family: ipv4, dual or ipv6 (a state file without it: ipv4)
    procs: list[Proc] = field(default_factory=list)
    created_dirs: list[str] = field(default_factory=list)  # host mountpoints we made
    mounted_hugetlb: bool = False
    made_netns_mount: bool = False  # `ip netns add` mounts /run/netns on first use
    sysctls: dict[str, str] = field(default_factory=dict)  # host values to restore on down
    faults: dict[str, dict] = field(default_factory=dict)
    pod_security: str = "privileged"  # lab up --pod-security (podsecurity.py); older files: the default
    cni_version: str = ""  # the CNI agent's version after `lab upgrade` ("": the pinned one)
    cni_settings: dict[str, str] = field(default_factory=dict)  # an upgrade's changed settings

    def save(self) -> None:
        paths.RUN_DIR.mkdir(parents=True, exist_ok=True)
        tmp = paths.STATE_FILE.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1))
        tmp.replace(paths.STATE_FILE)


def load() -> State:
    try:
        raw = json.loads(paths.STATE_FILE.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return State()
    raw["procs"] = [Proc(**p) for p in raw.get("procs", [])]
    # A field another version of packetwalk wrote is left out, not a TypeError.
    known = {f.name for f in fields(State)}
    return State(**{k: v for k, v in raw.items() if k in known})
