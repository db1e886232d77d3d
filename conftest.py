"""Top-level conftest: the suites' fixtures.

The plugin itself comes in through its pytest11 entry point (pip install -e .;
from a checkout that is not installed: `-p packetwalk.plugin`), and acts only
for runs that ask for it: suites/conftest.py asks for the suites.
"""

pytest_plugins = [
    "fixtures.cluster",
    "fixtures.walk",
    "fixtures.policy",
    "fixtures.outside",
]
