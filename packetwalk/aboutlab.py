"""What the lab tells the engine about itself: the one door between them.

The lab's `up` writes a small JSON file once the lab is healthy and its
`down` removes it; the engine reads it here and never imports the lab.
Its absence means "not the lab". A file that cannot be used is treated as
absent, with the reason kept for the one place it matters (no cluster found).

Pure data and file reading: no Kubernetes client, nothing from the lab package.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path

from packetwalk.families import FAMILIES

# The lab's state root; PACKETWALK_LAB_ROOT moves it (a cold-build benchmark
# does). The lab takes its paths from here, so each is spelled once.
LAB_ROOT = Path(os.environ.get("PACKETWALK_LAB_ROOT", "/var/lib/packetwalk"))
LAB_INFO = LAB_ROOT / "run" / "lab.json"
FORMAT = 1


class LabInfoError(ValueError):
    """The lab-info file exists but cannot be used; the message says why."""


@dataclass(frozen=True)
class LabNode:
    name: str
    netns: str  # its network namespace on this machine
    cni_conf_dir: str  # its CNI configuration directory, as seen from the host


@dataclass(frozen=True)
class LabInfo:
    kubeconfig: str
    cni: str
    underlay: IPv4Network | IPv6Network  # every node's InternalIP is in it (IPv6-only lab: IPv6)
    outside_netns: str  # the outside world's namespace: the vantage point
    outside_host: str  # an HTTP server there answering /clientip
    outside_port: int
    nodes: tuple[LabNode, ...]
    # The families the lab carries: ("ipv4",), ("ipv4", "ipv6") for `lab up
    # --ip-family dual`, whose outside host also has an IPv6 address (same port), or
    # ("ipv6",) for `--ip-family ipv6`, whose outside_host is that IPv6 address too. An
    # IPv4 lab's file leaves both out, as before they existed; a file without them
    # is an IPv4 lab.
    ip_families: tuple[str, ...] = ("ipv4",)
    outside_host6: str = ""
    # Whether the nodes masquerade pods' traffic leaving the cluster, per family: the
    # egress test then expects the node's address, else the pod's own. Written by a
    # dual or IPv6-only lab; a file without it (an IPv4 lab, or older) reads as every
    # family NATed, which every lab so far does (lab/network.masquerade_to_outside).
    egress_nat: dict[str, bool] = field(default_factory=dict)

    def nats_egress(self, family: str) -> bool:
        """Whether pods' egress in `family` leaves with the node's address."""
        return self.egress_nat.get(family, True)

    def node(self, name: str) -> LabNode | None:
        return next((n for n in self.nodes if n.name == name), None)

    def to_json(self) -> str:
        data = asdict(self)
        data["underlay"] = str(self.underlay)
        if self.ip_families == ("ipv4",) and self.nats_egress("ipv4"):
            del data["ip_families"], data["outside_host6"], data["egress_nat"]
        else:
            data["ip_families"] = list(self.ip_families)
        return json.dumps({"format": FORMAT, **data}, indent=1)


def parse(text: str) -> LabInfo:
    """The file's text -> LabInfo; LabInfoError naming what is wrong (pure)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise LabInfoError(f"not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise LabInfoError("not a JSON object")
    if data.get("format") != FORMAT:
        raise LabInfoError(f"format {data.get('format')!r}, expected {FORMAT}")
    try:
        return LabInfo(
            kubeconfig=str(data["kubeconfig"]), cni=str(data["cni"]),
            underlay=ip_network(data["underlay"]), outside_netns=str(data["outside_netns"]),
            outside_host=str(data["outside_host"]), outside_port=int(data["outside_port"]),
            nodes=tuple(LabNode(str(n["name"]), str(n["netns"]), str(n["cni_conf_dir"]))
                        for n in data["nodes"]),
            ip_families=tuple(str(f) for f in data.get("ip_families", ["ipv4"])),
            outside_host6=str(data.get("outside_host6", "")),
            egress_nat=_egress_nat(data.get("egress_nat", {})))
    except KeyError as exc:
        raise LabInfoError(f"missing {exc}") from None
    except LabInfoError:
        raise  # already names the field (a LabInfoError is a ValueError too)
    except (TypeError, ValueError) as exc:
        raise LabInfoError(f"bad value ({exc})") from None


def _egress_nat(value: object) -> dict[str, bool]:
    """{"ipv4": true, "ipv6": false}: each family's a boolean, nothing else. A key that
    is no family ("IPv6") is refused: read as it is, that family would quietly be NATed."""
    if not isinstance(value, dict) or not all(isinstance(v, bool) for v in value.values()):
        raise LabInfoError(f"egress_nat {value!r}: expected {{family: true|false}}")
    unknown = sorted(str(k) for k in value if k not in FAMILIES)
    if unknown:
        raise LabInfoError(f"egress_nat {value!r}: unknown family {', '.join(map(repr, unknown))} "
                           f"(expected {' or '.join(FAMILIES)})")
    return dict(value)


def load(path: Path = LAB_INFO) -> LabInfo | None:
    """The running lab's info; None when there is no file (no lab), LabInfoError
    when there is one that cannot be used."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LabInfoError(f"lab info {path}: {exc.strerror}") from None
    try:
        return parse(text)
    except LabInfoError as exc:
        raise LabInfoError(f"lab info {path}: {exc}") from None


def read(path: Path = LAB_INFO) -> LabInfo | None:
    """The running lab's info, or None: no file and an unusable one both mean "not the lab"."""
    try:
        return load(path)
    except LabInfoError:
        return None


def write(info: LabInfo, path: Path = LAB_INFO) -> None:
    """Written whole, then renamed: a reader never sees half a file. Readable by
    everyone: it holds no secret, and suites may run as any user."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(info.to_json())
    tmp.chmod(0o644)
    tmp.replace(path)
