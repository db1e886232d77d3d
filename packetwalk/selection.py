"""Whether a run's selection needs the hostNetwork pods or the NetworkPolicy lanes,
decided before collection.

The controller deploys before xdist's workers collect, so it cannot ask pytest
which tests were selected. It reads the same inputs instead: the paths on the
command line (a file, a directory, or `file::test`), `-k`, and the hop marks in
the suites' files. Pure: no cluster, no collection.

Conservative by design. A wrong "not needed" would skip host tests that were
asked for; a wrong "needed" only creates pods the run does not use. So whenever
the inputs are outside what this reads (`-m`, a path without hop tests, a `-k`
pytest cannot parse), the answer is "needed".

The hostNetwork pods serve two users:
- the hops whose groups include HOST (pod <-> node);
- the diagnosis: a failed probe from a pod is asked again from its node
  (narrowing's FROM_NODE step), so any selected hop whose probes start in a pod
  needs them while the diagnosis is on. North-south hops start outside.

The NetworkPolicy lanes (a server and three clients each, most of a run's pods)
serve the NetworkPolicy cases alone: a selection without them starts its pods
sooner.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# pytest's own -k grammar (not public API: any trouble with it reads as "needed").
from _pytest.mark.expression import Expression

from packetwalk.families import Walked
from packetwalk.hops import HOPS, HOST_NETWORK, Hop, params
from packetwalk.inventory import HOST, POLICY

# A hop test, as the suites write it: the mark on the line above the def.
_HOP_TEST = re.compile(r'@pytest\.mark\.hop\("(\w+)"\)\s*\n(?:@[^\n]*\n)*def (test_\w+)')


@dataclass(frozen=True)
class HopTest:
    path: Path  # the file, absolute
    function: str
    hop: Hop


def hop_tests(root: Path) -> list[HopTest]:
    """Every hop test in the test files under `root` (a file or a directory)."""
    files = [root] if root.is_file() else sorted(root.rglob("test_*.py"))
    found = []
    for path in files:
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError):
            continue
        for hop_name, function in _HOP_TEST.findall(text):
            if hop_name in HOPS:
                found.append(HopTest(path.resolve(), function, HOPS[hop_name]))
    return found


def _names(test: HopTest, rootdir: Path, item: str) -> set[str]:
    """What `-k` matches an item against (pytest's KeywordMatcher): the item's
    name, its module's and directories' names below the rootdir, its marks,
    and the extra words the plugin adds (the hop's name, `host-network`)."""
    names = {item, test.path.name, test.hop.name, "hop", "pytestmark"}
    try:
        names.update(test.path.parent.relative_to(rootdir).parts)
    except ValueError:
        names.update(test.path.parent.parts[-2:])
    if test.hop.layer == HOST_NETWORK:
        names.add("host-network")
    return names


def _items(test: HopTest, walked: Walked | None = None) -> list[tuple[str, str | None]]:
    """(id, family) of each item the hop's test collects: with the run's families, the
    ids and the family keyword the plugin gives them (-k ipv6 must find the IPv6 twins)."""
    names, found = params(test.hop, None, walked)
    at = names.index("family") if "family" in names else None
    return ([(f"{test.function}[{p.id}]" if p.id else test.function,
              p.values[at] if at is not None else None) for p in found]
            or [(test.function, None)])


def _selected_items(expression: Expression | None, test: HopTest, rootdir: Path,
                    walked: Walked | None = None) -> list[str]:
    """The ids of the test's items `-k` selects."""
    def matcher(names: list[str]):
        return lambda sub, **_: any(sub.lower() in n for n in names)

    return [item for item, family in _items(test, walked)
            if expression is None or expression.evaluate(matcher(
                [n.lower() for n in _names(test, rootdir, item) | ({family} if family else set())]))]


def _keyword_selects(expression: Expression | None, test: HopTest, rootdir: Path,
                     walked: Walked | None = None) -> bool:
    return bool(_selected_items(expression, test, rootdir, walked))


def _read(args: list[str], invocation_dir: Path, rootdir: Path, keyword: str, markexpr: str
          ) -> tuple[list[HopTest] | None, Expression | None, str]:
    """(the hop tests on the selected paths, the compiled -k, "") or (None, None, why the
    selection cannot be read here)."""
    if markexpr:
        return None, None, "-m is not read before collection"
    expression = None
    if keyword:
        try:
            expression = Expression.compile(keyword)
        except Exception:  # noqa: BLE001 - SyntaxError or ParseError by pytest's version
            return None, None, "-k could not be read (pytest will say why)"
    found: list[HopTest] = []
    for arg in args:
        path_text, _, within = arg.partition("::")
        path = (invocation_dir / path_text).resolve()
        if not path.exists():
            return None, None, f"{arg} is not a path read here"
        tests = hop_tests(path)
        if not tests and path.is_file():
            return None, None, f"{arg} holds no hop test"
        function = within.split("::")[-1].split("[")[0] if within else ""
        found += [t for t in tests if not function or t.function == function]
    if not found:
        return None, None, "no hop test found in the selected paths"
    return found, expression, ""


def selected_tests(args: list[str], invocation_dir: Path, rootdir: Path, keyword: str,
                   markexpr: str, walked: Walked | None = None
                   ) -> tuple[list[HopTest] | None, str]:
    """(the hop tests the selection runs, "") or (None, why that cannot be read here);
    `walked`: the run's families, which shape the ids `-k` reads (families.py)."""
    found, expression, unread = _read(args, invocation_dir, rootdir, keyword, markexpr)
    if found is None:
        return None, unread
    return [t for t in found if _keyword_selects(expression, t, rootdir, walked)], ""


def needs_host(args: list[str], invocation_dir: Path, rootdir: Path, keyword: str,
               markexpr: str, diagnose: bool, walked: Walked | None = None) -> tuple[bool, str]:
    """(needed, why) for the hostNetwork pods of this selection."""
    selected, unread = selected_tests(args, invocation_dir, rootdir, keyword, markexpr, walked)
    if selected is None:
        return True, unread
    for test in selected:
        if HOST in test.hop.groups:
            return True, f"{test.function} runs on the node's network"
    if diagnose:
        for test in selected:
            if not test.hop.path or test.hop.path[0] != "vantage":
                return True, (f"the diagnosis asks from the node when a probe from a pod "
                              f"fails ({test.function})")
    return False, ("no selected test uses the node's network"
                   + ("" if diagnose else ", and --no-diagnose asks nothing from a node"))


def _needed_by(selection: tuple[list[str], Path, Path, str, str], walked: Walked | None,
               uses: Callable[[HopTest], bool], why: str, why_not: str) -> tuple[bool, str]:
    """(True, why) when a selected test `uses` the thing (`why` names the first one, as
    {test}), (False, why_not) when none does, and (True, why unread) when the selection
    cannot be read here."""
    selected, unread = selected_tests(*selection, walked)
    if selected is None:
        return True, unread
    user = next((t for t in selected if uses(t)), None)
    return (True, why.format(test=user.function)) if user else (False, why_not)


def needs_policy_lanes(args: list[str], invocation_dir: Path, rootdir: Path, keyword: str,
                       markexpr: str, walked: Walked | None = None) -> tuple[bool, str]:
    """(needed, why) for the NetworkPolicy lanes' pods (four per lane, most of a run's
    pods): only the NetworkPolicy cases use them; the diagnosis never does."""
    return _needed_by((args, invocation_dir, rootdir, keyword, markexpr), walked,
                      lambda t: POLICY in t.hop.groups, "{test} is selected",
                      "no NetworkPolicy case is selected")


# -n auto runs a selection this small, without a NetworkPolicy case, in one process.
# Measured on the lab (docs/speed.md): the 8 ids of the e2e's granular checks took
# 7.4-8.9 s in one process against 12.6-13.5 s with 2 workers, each worker costing
# seconds of CPU to start and collect; under a cut route, 21.2 s either way. At 18
# ids with 8 red, one process took 77 s against 52 s: the red ids wait out their
# timeouts one after another.
ONE_PROCESS_IDS = 8


def workers_for_auto(args: list[str], invocation_dir: Path, rootdir: Path, keyword: str,
                     markexpr: str) -> tuple[int | None, str]:
    """xdist's -n auto for this selection: (0, why) to run it in one process, or
    (None, why not) for xdist's own count (a worker per CPU). The NetworkPolicy cases
    keep the workers: their lanes (one per worker) wait on the enforcer side by side.
    The ids are counted for one IP family: xdist asks before the cluster is read."""
    found, expression, unread = _read(args, invocation_dir, rootdir, keyword, markexpr)
    if found is None:
        return None, unread
    items = {t: _selected_items(expression, t, rootdir) for t in found}
    ids = [item for selected in items.values() for item in selected]
    if any(POLICY in t.hop.groups and selected for t, selected in items.items()):
        return None, "NetworkPolicy cases run in lanes, one per worker"
    if len(ids) > ONE_PROCESS_IDS:
        return None, f"{len(ids)} ids: more than {ONE_PROCESS_IDS}"
    return 0, (f"{len(ids)} ids and no NetworkPolicy case run sooner without workers, "
               f"which cost seconds each to start (-n 2 asks for two)")


# The walk's steps that go through a Service of the run (hops.py paths): a ClusterIP,
# a NodePort, a policy cell on the lane's Service, a load balancer, an Ingress.
_SERVICE_STEPS = ("service", "nodeport", "policy", "lb", "ingress")


def needs_services(args: list[str], invocation_dir: Path, rootdir: Path, keyword: str,
                   markexpr: str, walked: Walked | None = None) -> tuple[bool, str]:
    """(needed, why) for the wait until the nodes' proxies have the run's Services
    (programmed.py): only hops through a Service of the run need it."""
    return _needed_by((args, invocation_dir, rootdir, keyword, markexpr), walked,
                      lambda t: any(step.startswith(_SERVICE_STEPS) for step in t.hop.path),
                      "{test} goes through a Service",
                      "no selected test goes through a Service of the run")
