"""A run's rights inside its own namespaces, granted by the run itself.

RBAC cannot grant by namespace label, and a run's namespaces do not exist before
it creates them. So manifests/rbac-restricted.yaml grants the in-namespace rights
in a ClusterRole bound nowhere (packetwalk-run-namespace), plus `bind` on exactly
that ClusterRole; the run then creates, right after each namespace it makes, a
RoleBinding there of that ClusterRole to its own identity. Only when it needs to:
an identity that already holds the rights (cluster-admin, or a ClusterRoleBinding)
binds nothing, so no cluster needs packetwalk's ClusterRoles just to be tested by
an admin. Pure: the plan's objects in, the plan's objects out.
"""

from __future__ import annotations

RUN_NAMESPACE_ROLE = "packetwalk-run-namespace"
BINDING_NAME = "packetwalk-run"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"


def subject(username: str) -> dict:
    """The RBAC subject for a username as the API server reports it."""
    if username.startswith(SERVICE_ACCOUNT_PREFIX):
        namespace, _, name = username.removeprefix(SERVICE_ACCOUNT_PREFIX).partition(":")
        if namespace and name:
            return {"kind": "ServiceAccount", "name": name, "namespace": namespace}
    return {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": username}


def role_binding(namespace: dict, username: str) -> dict:
    """The RoleBinding that gives `username` the run's rights in `namespace` (a Namespace)."""
    labels = {k: v for k, v in (namespace["metadata"].get("labels") or {}).items()
              if k in ("app.kubernetes.io/managed-by", "packetwalk.io/run")}
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": BINDING_NAME, "namespace": namespace["metadata"]["name"],
                         "labels": labels},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": RUN_NAMESPACE_ROLE},
            "subjects": [subject(username)]}


def with_bindings(objects: list[tuple[str, dict]], username: str | None) -> list[tuple[str, dict]]:
    """The plan with a RoleBinding right after each Namespace, in the namespace's group
    (so a refused binding errors what the refused namespace would); unchanged for None."""
    if username is None:
        return list(objects)
    planned: list[tuple[str, dict]] = []
    for group, obj in objects:
        planned.append((group, obj))
        if obj["kind"] == "Namespace":
            planned.append((group, role_binding(obj, username)))
    return planned
