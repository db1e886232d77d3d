"""Where the lab keeps things on the host. Nothing lives inside the clone.

Go's module and build caches sit in /var/cache so a later run on the same
machine rebuilds nothing; binaries, images and the running lab's state sit in
/var/lib/packetwalk, which `lab down` empties except for bin/ and images/.
"""

import os
from pathlib import Path

# The engine reads what the lab tells it from LAB_INFO (packetwalk/aboutlab.py):
# the root and that file are spelled there, once.
from packetwalk.aboutlab import LAB_INFO
from packetwalk.aboutlab import LAB_ROOT as STATE_ROOT

CACHE_ROOT = Path(os.environ.get("PACKETWALK_CACHE_ROOT", "/var/cache/packetwalk"))

GOCACHE = CACHE_ROOT / "gocache"
GOMODCACHE = CACHE_ROOT / "gomod"
BUILD_DIR = STATE_ROOT / "build"  # generated wrapper Go modules
BIN_DIR = STATE_ROOT / "bin"
IMAGES_DIR = STATE_ROOT / "images"

# Everything below is the running lab; `down` removes it.
RUN_DIR = LAB_INFO.parent
STATE_FILE = RUN_DIR / "state.json"
PKI_DIR = RUN_DIR / "pki"
LOG_DIR = RUN_DIR / "logs"
NODES_DIR = RUN_DIR / "nodes"
NS_DIR = RUN_DIR / "ns"  # bind-mounted mount/uts namespace files (a private mount)
# The lab's journal of changes (journal.py): when each took effect.
JOURNAL = RUN_DIR / "journal"
KUBECONFIG = STATE_ROOT / "kubeconfig"

GO_SOURCES = Path(__file__).parent / "go"
REPO_ROOT = Path(__file__).resolve().parents[2]
LAB_MANIFESTS = REPO_ROOT / "manifests" / "lab"


def node_dir(node: str) -> Path:
    return NODES_DIR / node


def cni_conf_dir(node: str) -> Path:
    """The node's /etc/cni/net.d, as seen from the host."""
    return node_dir(node) / "root/etc/cni/net.d"


def kubectl() -> Path:
    return BIN_DIR / "kubectl"
