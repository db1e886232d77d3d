"""The lab's certificates, made with the openssl command line.

One CA; a serving certificate for the API server; one client certificate in
system:masters that the lab's own components and the admin kubeconfig share
(the lab tests networking, not node authorization); a service-account key pair.
Kubelets self-sign their serving certificates.
"""

import subprocess
from pathlib import Path

from . import paths, topology
from .errors import LabError


def _openssl(*args: str) -> None:
    result = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise LabError(f"openssl {args[0]} failed: {result.stderr.strip().splitlines()[-1:]}")


def _key(path: Path) -> None:
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(path))


def _signed(name: str, subject: str, ext: str) -> None:
    d = paths.PKI_DIR
    _key(d / f"{name}.key")
    (d / f"{name}.ext").write_text(ext)
    _openssl("req", "-new", "-key", str(d / f"{name}.key"), "-subj", subject, "-out", str(d / f"{name}.csr"))
    _openssl(
        "x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.crt"),
        "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-days", "30",
        "-extfile", str(d / f"{name}.ext"), "-out", str(d / f"{name}.crt"),
    )


def apiserver_sans(family: str = topology.DEFAULT_IP_FAMILY) -> list[str]:
    """The API server certificate's names. IPv6-only adds its IPv6 address (what the
    kubeconfig and every component dial) and the kubernetes Service's IPv6 ClusterIP
    (what pods dial); the IPv4 names stay, as it also listens on IPv4."""
    sans = [
        "DNS:kubernetes", "DNS:kubernetes.default", "DNS:kubernetes.default.svc",
        f"DNS:kubernetes.default.svc.{topology.CLUSTER_DOMAIN}", "DNS:localhost",
        f"IP:{topology.API_SERVER_IP}", f"IP:{topology.KUBERNETES_SERVICE_IP}", "IP:127.0.0.1",
    ]
    if topology.ipv6_only(family):
        sans += [f"IP:{topology.API_SERVER_IP6}", f"IP:{topology.KUBERNETES_SERVICE_IP6}"]
    return sans


def ensure(family: str = topology.DEFAULT_IP_FAMILY) -> None:
    """Made once per lab: the run directory that holds them goes with `down`, and
    `up` of another family comes after a `down`."""
    d = paths.PKI_DIR
    if (d / "admin.crt").exists():
        return
    d.mkdir(parents=True, exist_ok=True)
    _key(d / "ca.key")
    _openssl(
        "req", "-x509", "-new", "-key", str(d / "ca.key"), "-subj", "/CN=packetwalk-lab-ca",
        "-days", "30", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", str(d / "ca.crt"),
    )
    _signed(
        "apiserver", "/CN=kube-apiserver",
        f"subjectAltName={','.join(apiserver_sans(family))}\nextendedKeyUsage=serverAuth\n",
    )
    _signed("admin", "/O=system:masters/CN=packetwalk-admin", "extendedKeyUsage=clientAuth\n")
    _key(d / "sa.key")
    _openssl("pkey", "-in", str(d / "sa.key"), "-pubout", "-out", str(d / "sa.pub"))


def kubeconfig(server: str) -> str:
    d = paths.PKI_DIR
    return f"""apiVersion: v1
kind: Config
clusters:
- name: {topology.CLUSTER_NAME}
  cluster:
    server: {server}
    certificate-authority: {d / 'ca.crt'}
users:
- name: admin
  user:
    client-certificate: {d / 'admin.crt'}
    client-key: {d / 'admin.key'}
contexts:
- name: {topology.CLUSTER_NAME}
  context: {{cluster: {topology.CLUSTER_NAME}, user: admin}}
current-context: {topology.CLUSTER_NAME}
"""
