"""The outside world's one host: an HTTP server that answers every request
with the source address it sees ("ip:port", as agnhost netexec's /clientip).

It runs as nobody (uid/gid 65534, no groups, no capabilities, no_new_privs)
in the pw-outside network namespace and serves nothing else: no /shell, no
/dial, whatever the path. Not agnhost netexec: its --http-override answers
every path as the override, but the rebuilt request has no RemoteAddr, so
/clientip would answer an empty body.

A dual-stack or IPv6-only lab runs a second one on [::]:80, IPv6 only (the IPv4 server's
answers stay "ip:port", not "::ffff:ip:port"), answering "[ip]:port" as agnhost's
/clientip does for IPv6.
"""

from . import topology as t

NOBODY = 65534
PROC_NAME = "outside-http"  # its name in the lab state, and its log's
PROC_NAME6 = "outside-http6"  # the IPv6 one (dual-stack, IPv6-only)

# Python's standard library only, passed as argv: the server reads no file of
# ours (our tree need not be readable by nobody).
SERVER = """
import http.server, sys

class ClientIp(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("%s:%d" % self.client_address[:2]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_HEAD = do_POST = do_PUT = do_DELETE = do_GET

    def log_message(self, *args):
        pass

http.server.ThreadingHTTPServer(("", int(sys.argv[1])), ClientIp).serve_forever()
"""

# The same server on [::], IPv6 only: the IPv4 one holds 0.0.0.0:80, and a dual socket
# would both collide with it and answer IPv4 clients as ::ffff:a.b.c.d.
SERVER6 = SERVER.replace("import http.server, sys", "import http.server, socket, sys").replace(
    '("%s:%d" % self.client_address[:2])', '("[%s]:%d" % self.client_address[:2])').replace(
    'http.server.ThreadingHTTPServer(("", int(sys.argv[1])), ClientIp).serve_forever()', """
class V6Only(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        super().server_bind()

V6Only(("::", int(sys.argv[1])), ClientIp).serve_forever()""")

# The lowest port anyone may bind, for the pw-outside namespace only (the
# sysctl is per network namespace): nobody may then listen on port 80.
UNPRIVILEGED_PORT_SYSCTL = ("net.ipv4.ip_unprivileged_port_start", str(t.OUTSIDE_HTTP_PORT))


def server_argv(python: str = "python3", server: str = SERVER) -> list[str]:
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs",
            python, "-I", "-c", server, str(t.OUTSIDE_HTTP_PORT)]


def servers(family: str = t.DEFAULT_IP_FAMILY) -> list[tuple[str, list[str]]]:
    """(process name, argv) of every server the outside host runs in a lab of this family."""
    found = [(PROC_NAME, server_argv())]
    if t.has_ipv6(family):
        found.append((PROC_NAME6, server_argv(server=SERVER6)))
    return found
