"""What asking each DNS server pod directly says about a failed lookup. Pure.

A lookup through the kube-dns Service reaches one DNS server pod at random.
When some of them cannot be reached, names fail only some of the time and the
Service's own narrowing (its ClusterIP, one pod IP) says nothing stable. Each
server asked directly, over both transports, with the run's own server on each
of their nodes, names the server, its node, and the path to it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Asked:
    """One DNS server pod, asked directly from the failing client."""

    name: str
    ip: str
    node: str
    answered: bool  # over the failed probe's transport
    other: bool | None = None  # over the other transport; None: not asked


def _names(servers: list[Asked]) -> str:
    return ", ".join(f"{s.name} ({s.ip}) on {s.node}" for s in servers)


def conclude(asked: list[Asked], nodes_answer: dict[str, bool], where: str, transport: str,
             direct: bool, run_pods_answer: bool | None) -> str | None:
    """One sentence, or None when the servers' answers add nothing.

    `nodes_answer`: node -> whether the run's server on that node answered (over HTTP).
    `where`: the client's node. `direct`: the failed probe asked a server pod
    itself (not through the Service). `run_pods_answer`: whether the run's own
    pods behind the looked-up Service answered (None: not asked).
    """
    if not asked:
        return None
    failing = [s for s in asked if not s.answered]
    answering = [s for s in asked if s.answered]
    proto, other = transport.upper(), ("TCP" if transport == "udp" else "UDP")
    if not failing:
        if direct:
            return (f"every DNS server pod answers when asked again ({_names(asked)}): "
                    "the failure did not repeat (intermittent)")
        return (f"every DNS server pod answers directly ({_names(asked)}), the lookup through "
                f"the DNS Service does not: Service translation on {where}")
    if not answering:
        if all(s.other for s in failing):
            return (f"no DNS server pod answers over {proto}, every one answers over {other}: "
                    f"something drops {proto} (a firewall rule, a policy port, conntrack)")
        if run_pods_answer or any(nodes_answer.values()):
            return (f"no DNS server pod answers ({_names(failing)}) while the run's pods do: "
                    "cluster DNS is at fault (the DNS pods, or a policy selecting them)")
        return None
    # Some answer, some do not: name those that do not, and what sits between.
    nodes = sorted({s.node for s in failing})
    only = f"only the DNS server{'s' if len(failing) > 1 else ''} {_names(failing)} fail"
    only += f"{'' if len(failing) > 1 else 's'} from {where}; {_names(answering)} answer"
    only += "s" if len(answering) == 1 else ""
    remote = [n for n in nodes if n != where]
    if remote and all(nodes_answer.get(n) is False for n in remote):
        return f"{only}: the path from {where} to {', '.join(remote)} (the run's pods there fail too)"
    if remote and all(nodes_answer.get(n) for n in remote):
        return f"{only}: those DNS pods themselves (the run's pods on {', '.join(remote)} answer)"
    if remote and not any(s.node == where for s in failing):
        return f"{only}: the path between the nodes, or those DNS pods"
    return f"{only}: those DNS pods or their node"
