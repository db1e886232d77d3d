"""The run's names and dial targets: spelled once, on the inventory's types."""

import pytest

from packetwalk.inventory import Inventory, Pod, Service, WorkloadError
from packetwalk.inventory import pod_name as name_of_pod
from packetwalk.inventory import server_service_name as name_of_service
from packetwalk.placement import Node
from packetwalk.runs import Run
from packetwalk.workloads import plan

A, B = Node("pw-worker", "10.250.0.11", "pw-worker"), Node("pw-worker2", "10.250.0.12", "w2")
SERVER = Pod("server-w2", "pw-1", "server", "pw-worker2", "10.244.2.7", 8080)
HOST = Pod("host-w2", "pw-1", "host", "pw-worker2", "10.250.0.12", 18080)
SERVICE = Service("server-w2", "pw-1", "10.96.12.7", {"http": 80, "udp": 81},
                  {"http": 30080, "udp": 30081}, ("server-w2",))


def test_the_plan_creates_the_names_the_inventory_looks_up():
    names = {obj["metadata"]["name"] for _, obj in plan(Run("0123ab"), [A, B], debug_image="x")}
    for node in (A, B):
        assert {name_of_pod(role, node) for role in ("client", "server", "host", "debug")} <= names
        assert {name_of_service(node), name_of_service(node, local=True)} <= names


def test_a_pod_is_dialed_on_its_netexec_ports():
    assert SERVER.target("tcp").label() == "10.244.2.7:8080/tcp"
    assert SERVER.target("udp").label() == "10.244.2.7:8081/udp"
    assert SERVER.target("udp").via == "pod server-w2 on pw-worker2"
    assert HOST.target("tcp").via == "node host-w2 on pw-worker2"
    assert SERVER.serves(8081) and not SERVER.serves(8082) and not HOST.serves(8080)


def test_a_service_is_dialed_on_its_cluster_ip_or_a_node_port():
    assert SERVICE.target("udp").label() == "10.96.12.7:81/udp"
    assert SERVICE.target("tcp").via == "Service server-w2"
    port = SERVICE.node_port_target(A, "udp")
    assert port.label() == "10.250.0.11:30081/udp"
    assert port.via == "NodePort of Service server-w2 on node pw-worker"


def test_pods_are_found_by_role_and_node():
    inventory = Inventory("1", "pw-1", "pw-1-peer", [A, B], None, {"server-w2": SERVER},
                          {"server-w2": SERVICE})
    assert inventory.pod_on("server", "pw-worker2") == SERVER
    assert inventory.server_service(B) == SERVICE
    assert inventory.ready_on("server", "pw-worker") is None
    assert inventory.ready_on("server", "elsewhere") is None
    with pytest.raises(WorkloadError, match="elsewhere is not one of this run's nodes"):
        inventory.pod_on("server", "elsewhere")
    with pytest.raises(WorkloadError, match="pod client-w2 is not part"):
        inventory.pod_on("client", "pw-worker2")
