"""The `packetwalk` command: the lab, and the images a run may use; suites run through pytest."""

import argparse
import sys

from .lab.errors import LabError
from .tiers import DEFAULT_IMAGE, check_registry, run_images


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="packetwalk", description=__doc__)
    sub = p.add_subparsers(dest="area", required=True)
    lab = sub.add_parser("lab", help="the Docker-less multi-node cluster on this machine")
    verbs = lab.add_subparsers(dest="verb", required=True)
    up = verbs.add_parser("up", help="build what is missing and start the cluster")
    up.add_argument("--workers", type=int, default=2, help="schedulable worker nodes (default 2)")
    _cni_option(up)
    up.add_argument("--pod-security", choices=("privileged", "baseline", "restricted"),
                    default="privileged",
                    help="the Pod Security level the API server enforces by default, with "
                         "weaker namespace labels refused (default privileged: Kubernetes' "
                         "own default; a lab up with another setting is brought up again)")
    # Not argparse choices either: the lab's one line names them.
    up.add_argument("--proxy-mode", default="iptables", metavar="MODE",
                    help="kube-proxy's mode: iptables or nftables (default iptables)")
    up.add_argument("--ip-family", default="ipv4", metavar="FAMILY",
                    help="ipv4 (default: the lab as it always was), dual (IPv4 and IPv6 "
                         "everywhere) or ipv6 (a single-stack IPv6 cluster); dual and ipv6 on "
                         "the bridge CNI only so far (docs/ipv6.md)")
    verbs.add_parser("down", help="stop everything and leave the host as it was")
    verbs.add_parser("status", help="nodes, components and versions")
    verbs.add_parser("kubeconfig", help="print the admin kubeconfig's path")
    fault = verbs.add_parser("fault", help="break one layer on purpose (see --list)")
    fault.add_argument("name", nargs="?", help="the fault to inject")
    fault.add_argument("--node", help="the node, for per-node faults (default: the first worker)")
    fault.add_argument("--list", action="store_true", help="list the faults and exit")
    verbs.add_parser("heal", help="undo every active fault")
    restart = verbs.add_parser("restart", help="restart a node agent as its DaemonSet would "
                                               "(same binary and flags; journalled for a watch)")
    restart.add_argument("component", help="kube-proxy, kube-router or flanneld")
    restart.add_argument("--node", help="the node (default: the first worker)")
    upgrade = verbs.add_parser("upgrade", help="replace the running CNI's agent with another "
                                               "version, node by node (a DaemonSet rollout)")
    upgrade.add_argument("--cni", required=True, metavar="NAME@VERSION",
                         help="e.g. flannel@v0.28.10 (and flannel@v0.28.4 back)")
    upgrade.add_argument("--vxlan-port", type=int, metavar="PORT",
                         help="also change the VXLAN port in the agent's configuration (flannel), "
                              "as a broken upgrade might: nodes upgraded and not yet upgraded "
                              "then disagree")
    upgrade.add_argument("--nodes", metavar="NODE[,NODE]",
                         help="only these nodes: a canary, or a rollout paused half way")
    tag = verbs.add_parser("import-image", help="make an image of the lab known under another "
                                                "name on every node (e.g. a mirror's)")
    tag.add_argument("src", help="an image the lab has, e.g. registry.k8s.io/e2e-test-images/agnhost:2.66.1")
    tag.add_argument("dst", help="its new name, e.g. mirror.example/pw/e2e-test-images/agnhost:2.66.1")
    images = sub.add_parser("images", help="every image a run may use, per tier, one per line "
                                           "(`TIER IMAGE`), to mirror for air-gapped clusters")
    images.add_argument("--image-registry", metavar="HOST/PATH",
                        help="print the names as pulled from this registry (its host replaces "
                             "each image's registry host; the path is kept)")
    images.add_argument("--image", default=DEFAULT_IMAGE, help="as the suites' --image")
    images.add_argument("--debug-image", default=DEFAULT_IMAGE, help="as the suites' --debug-image")
    return p


def _images(args: argparse.Namespace) -> int:
    try:
        registry = check_registry(args.image_registry) if args.image_registry is not None else None
    except ValueError as exc:
        print(f"packetwalk: {exc}", file=sys.stderr)
        return 2
    for tier, image in run_images(args.image, args.debug_image, registry):
        print(f"{tier} {image}")
    return 0


def _cni_option(up: argparse.ArgumentParser) -> None:
    from .lab.cni import DEFAULT_CNI, names  # the CNIs are the modules in lab/cni/

    # Not argparse choices: an unknown name gets the lab's own one-line error.
    up.add_argument("--cni", default=DEFAULT_CNI, metavar="NAME",
                    help=f"the pod network: {', '.join(names())} (default {DEFAULT_CNI}); "
                         "another than the running lab's needs `packetwalk lab down` first")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.area == "images":
        return _images(args)
    from .lab import cluster, paths  # imported late: --help needs none of it

    try:
        if args.verb == "up":
            cluster.up(workers=args.workers, cni=args.cni, pod_security=args.pod_security,
                       proxy_mode=args.proxy_mode, ip_family=args.ip_family)
        elif args.verb == "down":
            cluster.down()
        elif args.verb == "status":
            print(cluster.status())
        elif args.verb == "fault":
            from .lab import faults
            if args.list or not args.name:
                print(faults.catalogue())
            else:
                print(faults.inject(args.name, args.node))
        elif args.verb == "heal":
            from .lab import faults
            healed = faults.heal()
            print("healed: " + (", ".join(healed) if healed else "nothing was broken"))
        elif args.verb == "restart":
            from .lab import restart
            print(restart.restart(args.component, args.node))
        elif args.verb == "upgrade":
            cluster.upgrade(args.cni, args.vxlan_port,
                            args.nodes.split(",") if args.nodes else None)
        elif args.verb == "import-image":
            print(f"{args.dst}: on {', '.join(cluster.import_image(args.src, args.dst))}")
        elif args.verb == "kubeconfig":
            if not paths.KUBECONFIG.exists():
                raise LabError("the lab is down: run `packetwalk lab up`")
            print(paths.KUBECONFIG)
    except LabError as e:
        print(f"packetwalk: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("packetwalk: interrupted; run `packetwalk lab down` to clear a half-made lab", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
