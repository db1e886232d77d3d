"""What the running lab tells the engine, through packetwalk/aboutlab.py's file.

The engine never imports the lab: whatever a suite or report needs to know
about it (kubeconfig, outside host, underlay, nodes, CNI) is written here on
`up` and removed on `down`.
"""

from packetwalk.aboutlab import LabInfo, LabNode, write

from . import paths
from . import topology as t


def describe(lab_nodes: list[t.Node], cni: str, family: str = t.DEFAULT_IP_FAMILY) -> LabInfo:
    """IPv6-only: the nodes' InternalIPs are in the IPv6 underlay, and the outside host
    pods can reach is the IPv6 one (outside_host and outside_host6 both name it; its
    egress is masqueraded to the node's underlay IPv6, as the dual lab's IPv6 is).
    egress_nat: each family's masquerade (topology.EGRESS_NAT), for the egress test's
    expected source; an IPv4 lab's file leaves it out, as it leaves out its family."""
    six = t.ipv6_only(family)
    families = tuple(f for f, on in (("ipv4", t.has_ipv4(family)), ("ipv6", t.has_ipv6(family))) if on)
    return LabInfo(
        kubeconfig=str(paths.KUBECONFIG), cni=cni, underlay=t.UNDERLAY6 if six else t.UNDERLAY,
        outside_netns=t.OUTSIDE_NS, outside_host=str(t.OUTSIDE_HOST_IP6 if six else t.OUTSIDE_HOST_IP),
        outside_port=t.OUTSIDE_HTTP_PORT,
        # A node's network namespace carries its name.
        nodes=tuple(LabNode(n.name, n.name, str(paths.cni_conf_dir(n.name))) for n in lab_nodes),
        ip_families=families,
        outside_host6=str(t.OUTSIDE_HOST_IP6) if t.has_ipv6(family) else "",
        egress_nat={f: t.EGRESS_NAT[f] for f in families})


def publish(lab_nodes: list[t.Node], cni: str, family: str = t.DEFAULT_IP_FAMILY) -> None:
    write(describe(lab_nodes, cni, family), paths.LAB_INFO)


def withdraw() -> None:
    paths.LAB_INFO.unlink(missing_ok=True)
