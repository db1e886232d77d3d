"""The run's RoleBinding in each namespace it creates (pure)."""

from packetwalk.selfbind import RUN_NAMESPACE_ROLE, subject, with_bindings


def namespace(name):
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "packetwalk",
                                                  "packetwalk.io/run": "abc123",
                                                  "pod-security.kubernetes.io/enforce": "restricted"}}}


def pod(name, ns):
    return {"kind": "Pod", "metadata": {"name": name, "namespace": ns}}


def test_a_service_account_and_a_user_become_their_subjects():
    assert subject("system:serviceaccount:packetwalk:packetwalk") == {
        "kind": "ServiceAccount", "name": "packetwalk", "namespace": "packetwalk"}
    assert subject("alice@example.com") == {
        "kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice@example.com"}


def test_each_namespace_is_followed_by_its_binding_in_its_group():
    plan = [("core", namespace("pw-abc123")), ("core", namespace("pw-abc123-peer")),
            ("host", namespace("pw-abc123-host")), ("core", pod("server", "pw-abc123"))]
    planned = with_bindings(plan, "system:serviceaccount:packetwalk:packetwalk")
    assert [(g, o["kind"], o["metadata"]["namespace"] if o["kind"] != "Namespace"
             else o["metadata"]["name"]) for g, o in planned] == [
        ("core", "Namespace", "pw-abc123"), ("core", "RoleBinding", "pw-abc123"),
        ("core", "Namespace", "pw-abc123-peer"), ("core", "RoleBinding", "pw-abc123-peer"),
        ("host", "Namespace", "pw-abc123-host"), ("host", "RoleBinding", "pw-abc123-host"),
        ("core", "Pod", "pw-abc123")]
    binding = planned[1][1]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": RUN_NAMESPACE_ROLE}
    assert binding["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "packetwalk",
                                             "packetwalk.io/run": "abc123"}


def test_an_identity_that_holds_the_rights_binds_nothing():
    plan = [("core", namespace("pw-abc123")), ("core", pod("server", "pw-abc123"))]
    assert with_bindings(plan, None) == plan
