"""`lab up --pod-security`: the API server's admission configuration and the
namespace-label floor (pure text)."""

import json

from packetwalk.lab import components, podsecurity
from packetwalk.lab import topology as t


def test_restricted_is_the_default_everywhere_but_kube_system():
    config = json.loads(podsecurity.admission_config("restricted"))
    assert config["kind"] == "AdmissionConfiguration"
    (plugin,) = config["plugins"]
    assert plugin["name"] == "PodSecurity"
    defaults = plugin["configuration"]["defaults"]
    assert defaults["enforce"] == defaults["audit"] == defaults["warn"] == "restricted"
    assert plugin["configuration"]["exemptions"]["namespaces"] == ["kube-system"]


def test_the_floor_allows_only_levels_as_strict_or_stricter():
    policy, binding = json.loads(podsecurity.guard("restricted"))["items"]
    expression = policy["spec"]["validations"][0]["expression"]
    assert expression.endswith('in ["restricted"]') and '"kube-system"' in expression
    assert policy["spec"]["matchConstraints"]["resourceRules"][0]["operations"] == [
        "CREATE", "UPDATE"]
    assert binding["spec"] == {"policyName": podsecurity.GUARD, "validationActions": ["Deny"]}
    baseline = json.loads(podsecurity.guard("baseline"))["items"][0]
    assert baseline["spec"]["validations"][0]["expression"].endswith(
        'in ["baseline", "restricted"]')


def test_only_a_configured_level_changes_the_api_server():
    node = t.nodes(1)[0]
    assert not any("admission-control-config" in a for a in components.kube_apiserver(node))
    assert not podsecurity.configured("privileged") and podsecurity.configured("restricted")
    argv = components.kube_apiserver(node, "/x/admission.yaml")
    assert argv[-1] == "--admission-control-config-file=/x/admission.yaml"
