"""`lab up --pod-security LEVEL`: an API server whose Pod Security admission
enforces LEVEL in every namespace that does not say otherwise, and an admission
policy that refuses any namespace saying otherwise (a weaker enforce label), as
a locked-down production cluster does. kube-system is exempt from both, so
CoreDNS runs. `privileged` is Kubernetes' own default: nothing is configured.
"""

import json

from . import paths

LEVELS = ("privileged", "baseline", "restricted")  # weakest first
DEFAULT = "privileged"
EXEMPT_NAMESPACES = ("kube-system",)
GUARD = "pw-lab-pod-security-floor"
ENFORCE = "pod-security.kubernetes.io/enforce"
ADMISSION_CONFIG = paths.RUN_DIR / "admission.yaml"


def configured(level: str) -> bool:
    return level != DEFAULT


def admission_config(level: str) -> str:
    """The API server's --admission-control-config-file (JSON is YAML)."""
    defaults = {}
    for mode in ("enforce", "audit", "warn"):
        defaults[mode], defaults[f"{mode}-version"] = level, "latest"
    return json.dumps({
        "apiVersion": "apiserver.config.k8s.io/v1", "kind": "AdmissionConfiguration",
        "plugins": [{"name": "PodSecurity", "configuration": {
            "apiVersion": "pod-security.admission.config.k8s.io/v1",
            "kind": "PodSecurityConfiguration", "defaults": defaults,
            "exemptions": {"usernames": [], "runtimeClasses": [],
                           "namespaces": list(EXEMPT_NAMESPACES)}}}]}, indent=1)


def refusal(level: str) -> str:
    return (f"this cluster enforces Pod Security {level}: a namespace may not be labelled "
            f"{ENFORCE} weaker than {level}")


def guard(level: str) -> str:
    """The ValidatingAdmissionPolicy and its binding, as a kubectl apply stream."""
    allowed = list(LEVELS[LEVELS.index(level):])
    expression = (
        f"object.metadata.name in {json.dumps(list(EXEMPT_NAMESPACES))} "
        f"|| !has(object.metadata.labels) || !('{ENFORCE}' in object.metadata.labels) "
        f"|| object.metadata.labels['{ENFORCE}'] in {json.dumps(allowed)}")
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": GUARD},
        "spec": {"failurePolicy": "Fail",
                 "matchConstraints": {"resourceRules": [{
                     "apiGroups": [""], "apiVersions": ["v1"],
                     "operations": ["CREATE", "UPDATE"], "resources": ["namespaces"]}]},
                 "validations": [{"expression": expression, "message": refusal(level),
                                  "reason": "Forbidden"}]}}
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding", "metadata": {"name": GUARD},
        "spec": {"policyName": GUARD, "validationActions": ["Deny"]}}
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": [policy, binding]}, indent=1)
