"""Cluster DNS: the pod's resolver, every name form, headless, both transports, by name.

Name fails but the ClusterIP works: DNS is at fault. Resolving fails over TCP
only: something drops TCP/53 (policy, CoreDNS config).
"""

import pytest


@pytest.mark.hop("dns_resolv_conf")
def test_dns_resolv_conf(walk):
    """The client's first nameserver is the cluster DNS Service's ClusterIP."""
    client = walk.client
    nameservers, _ = walk.resolv_conf(client)
    walk.expect_fact("first nameserver in /etc/resolv.conf", nameservers[:1],
                     [walk.inventory.dns_ip], client)


@pytest.mark.hop("dns_service_name")
def test_dns_service_name(walk, variant, protocol):
    """short, name.namespace and the FQDN all resolve to the Service's ClusterIP."""
    servers = walk.service("servers")
    seen = walk.resolve(walk.client, walk.name_of(servers, variant), protocol,
                        records=[walk.address(servers)])
    walk.expect(seen)


@pytest.mark.hop("dns_every_backend")
def test_dns_every_backend(walk, protocol):
    """Each DNS server pod (CoreDNS) on the placement answers the client directly.
    Through the kube-dns Service a lookup reaches one of them at random: a server
    the client cannot reach fails names only some of the time, and shows here."""
    servers, why = walk.dns_servers()
    if not servers and (walk.inventory.dns_servers_unknown or walk.inventory.dns_servers):
        pytest.skip(why)  # unknown, or they run elsewhere: the other placement asks them
    if not servers:  # none anywhere: nothing answers a lookup
        walk.expect_fact("ready pods behind the cluster DNS Service", 0, "at least 1", walk.client,
                         conclusion="the DNS Service has no ready pod: cluster DNS is at fault "
                                    "(its pods, their Deployment, their readiness)")
    service = walk.service("servers")
    seen = walk.resolve_on_each(walk.client, walk.name_of(service, "fqdn"), protocol,
                                records=[walk.address(service)], servers=servers)
    walk.expect(seen)


@pytest.mark.hop("dns_headless")
def test_dns_headless(walk, protocol):
    """A headless Service resolves to its pods' IPs: in the test's family (A or AAAA),
    so on a dual-stack cluster the twins show it answers both."""
    headless = walk.service("servers-headless")
    seen = walk.resolve(walk.client, walk.name_of(headless, "short"), protocol,
                        records=walk.backend_ips(headless))
    walk.expect(seen)


@pytest.mark.hop("dns_connect_by_name")
def test_dns_connect_by_name(walk, protocol):
    """Name -> ClusterIP -> the server, end to end. The server is on the client's node,
    so a cross-node fault cannot make this DNS check pass or fail by chance."""
    service = walk.server_service
    to = walk.cluster_ip(service, protocol)
    seen = walk.ask(walk.client, to, "hostname", answer=walk.server.name,
                    by_name=walk.name_of(service, "short"))
    walk.expect(seen)
