"""Top-level conftest: loads the suites' fixtures, and the plugin when it is not installed.

Installed (pip install -e .), the plugin comes in through its pytest11 entry
point; loading it again here would register it twice, which pytest refuses.
"""

from importlib.metadata import entry_points

_INSTALLED = any(ep.value == "packetwalk.plugin" for ep in entry_points(group="pytest11"))

pytest_plugins = [
    *([] if _INSTALLED else ["packetwalk.plugin"]),
    "fixtures.cluster",
    "fixtures.walk",
    "fixtures.policy",
    "fixtures.outside",
]
