"""The `packetwalk` command. Today it drives the lab; suites run through pytest."""

import argparse
import sys

from .lab.errors import LabError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="packetwalk", description=__doc__)
    sub = p.add_subparsers(dest="area", required=True)
    lab = sub.add_parser("lab", help="the Docker-less multi-node cluster on this machine")
    verbs = lab.add_subparsers(dest="verb", required=True)
    up = verbs.add_parser("up", help="build what is missing and start the cluster")
    up.add_argument("--workers", type=int, default=2, help="schedulable worker nodes (default 2)")
    up.add_argument("--pod-security", choices=("privileged", "baseline", "restricted"),
                    default="privileged",
                    help="the Pod Security level the API server enforces by default, with "
                         "weaker namespace labels refused (default privileged: Kubernetes' "
                         "own default; a lab up with another setting is brought up again)")
    verbs.add_parser("down", help="stop everything and leave the host as it was")
    verbs.add_parser("status", help="nodes, components and versions")
    verbs.add_parser("kubeconfig", help="print the admin kubeconfig's path")
    fault = verbs.add_parser("fault", help="break one layer on purpose (see --list)")
    fault.add_argument("name", nargs="?", help="the fault to inject")
    fault.add_argument("--node", help="the node, for per-node faults (default: the first worker)")
    fault.add_argument("--list", action="store_true", help="list the faults and exit")
    verbs.add_parser("heal", help="undo every active fault")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from .lab import cluster, paths  # imported late: --help needs none of it

    try:
        if args.verb == "up":
            cluster.up(workers=args.workers, pod_security=args.pod_security)
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
