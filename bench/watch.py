"""A watch (`--during`) through the changes an upgrade makes, on the running lab (issue 16).

    python3 -u bench/watch.py [SCENARIO ...] [--settle 15s] [--out DIR]

Each scenario runs `pytest suites/east_west -n auto --during CMD` and prints:
what CMD did (the lab's journal: when each fault or restart took effect, relative
to CMD's start), every watched cell with an outage (its windows), the cells with
none, the rate achieved per cell, the largest gap and the clock error, and the cost:
the CPU the client pods' probe containers used over the watch (cgroup cpuacct; the
watch adds no pod, its loops run in the run's client pods).

Scenarios (the default: every one the lab's CNI has):
  kube-proxy-broken   kube-proxy stopped and its rules removed on pw-worker for 10 s
  kube-proxy-restart  kube-proxy restarted on pw-worker (its rules stay)
  coredns-rollout     CoreDNS's Deployment restarted replica by replica
  agent-restart       the CNI's agent restarted on pw-worker (kube-router or flanneld)
  flannel-upgrade     flanneld upgraded node by node and back (flannel lab only)
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from packetwalk.lab import journal, paths, state, versions

KUBECTL = f"kubectl --kubeconfig {paths.KUBECONFIG} -n kube-system"
AGENT = {"bridge": "kube-router", "kube-router": "kube-router", "flannel": "flanneld"}
SCENARIOS = {
    "kube-proxy-broken": "packetwalk lab fault kube-proxy-broken --node pw-worker; sleep 10; "
                         "packetwalk lab heal",
    "kube-proxy-restart": "packetwalk lab restart kube-proxy --node pw-worker",
    "coredns-rollout": f"{KUBECTL} rollout restart deployment/coredns && "
                       f"{KUBECTL} rollout status deployment/coredns --timeout=120s",
    "agent-restart": "packetwalk lab restart {agent} --node pw-worker",
    "flannel-upgrade": f"packetwalk lab upgrade --cni flannel@{versions.FLANNEL_UPGRADE} && "
                       f"packetwalk lab upgrade --cni flannel@{versions.FLANNEL}",
}


def client_cost(namespace: str) -> tuple[float, int]:
    """CPU seconds the run's client pods' probe containers used, and the largest peak
    memory of one of them (cgroup v1 cpuacct, memory)."""
    pods = json.loads(subprocess.run(
        ["kubectl", "--kubeconfig", str(paths.KUBECONFIG), "-n", namespace, "get", "pods",
         "-l", "packetwalk.io/role=client", "-o", "json"],
        capture_output=True, text=True, check=True).stdout)["items"]
    total, peak = 0.0, 0
    for pod in pods:
        container = next(c for c in pod["status"]["containerStatuses"] if c["name"] == "http")
        cid = container["containerID"].split("//", 1)[1]
        where = f"**/pod{pod['metadata']['uid']}/{cid}"
        for cpu in Path("/sys/fs/cgroup/cpuacct").glob(where):
            total += int((cpu / "cpuacct.usage").read_text()) / 1e9
        for memory in Path("/sys/fs/cgroup/memory").glob(where):
            peak = max(peak, int((memory / "memory.max_usage_in_bytes").read_text()))
    return total, peak


def run(name: str, command: str, settle: str, out: Path) -> int:
    print(f"== {name}: {command}")
    since = len(journal.read())
    results = out / f"{name}.json"
    started = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "pytest", "suites/east_west", "-n", "auto", "-q",
                        "-p", "no:cacheprovider", "--keep", "--during", command, "--settle", settle,
                        "--max-outage", "2s", f"--results-json={results}"],
                       cwd=ROOT, capture_output=True, text=True, check=False)
    print(f"  pytest exit {r.returncode} in {time.monotonic() - started:.0f} s")
    for line in r.stdout.splitlines():
        if line.startswith(("watch:", "measured:")):
            print(f"  {line}")
    watch_file = results.with_suffix(".watch.json")
    if not watch_file.exists():
        print("  no watch written:\n" + r.stdout[-2000:] + r.stderr[-2000:])
        return 1
    watch = json.loads(watch_file.read_text())
    start = watch["ran"]["start"]
    for event in journal.read()[since:]:
        print(f"  lab: {event['what']} {event['event']} at +{event['at'] - start:.2f} s"
              + (f" on {event['node']}" if event["node"] else ""))
    quiet = []
    for test, cell in watch["cells"].items():
        if not cell["windows"]:
            quiet.append(test)
            continue
        windows = ", ".join(f"{w['duration']:.1f} s from +{w['start']:.1f} ({w['lost']} lost: "
                            f"{'/'.join(w['classes'])})" for w in cell["windows"])
        print(f"  {test}: {windows}")
    print(f"  no outage: {len(quiet)} of {len(watch['cells'])} cells")
    namespace = f"pw-{watch['run']}"
    seconds, peak = client_cost(namespace)
    span = watch["cmd_end"] + watch["settle"]
    print(f"  cost: client probe containers used {seconds:.1f} CPU-s over the run "
          f"(the watch spans {span:.0f} s: {seconds / span:.2f} CPU), in the run's 2 client pods; "
          f"memory peak {peak / 2**20:.0f} MiB in one (limit 128 MiB)")
    subprocess.run(["kubectl", "--kubeconfig", str(paths.KUBECONFIG), "delete", "ns", namespace,
                    f"{namespace}-peer", f"{namespace}-host", "--wait=false"],
                   capture_output=True, check=False)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenarios", nargs="*", choices=[*SCENARIOS, []], metavar="SCENARIO")
    parser.add_argument("--settle", default="15s", help="--settle for each watch (default 15s)")
    parser.add_argument("--out", default=str(ROOT / "reports" / "watch-bench"))
    options = parser.parse_args()
    lab = state.load()
    if not lab.procs:
        print("bench/watch.py: the lab is down: run `packetwalk lab up` first", file=sys.stderr)
        return 2
    wanted = options.scenarios or [s for s in SCENARIOS
                                   if s != "flannel-upgrade" or lab.cni == "flannel"]
    if "flannel-upgrade" in wanted and lab.cni != "flannel":
        print(f"bench/watch.py: flannel-upgrade needs the flannel lab (this one: {lab.cni})",
              file=sys.stderr)
        return 2
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"lab: {lab.cni}, kube-proxy {lab.proxy_mode}")
    worst = 0
    for name in wanted:
        worst |= run(name, SCENARIOS[name].format(agent=AGENT.get(lab.cni, "kube-router")),
                     options.settle, out)
    return worst


if __name__ == "__main__":
    sys.exit(main())
