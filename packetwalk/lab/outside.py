"""The outside world's one host: an HTTP server that answers every request
with the source address it sees ("ip:port", as agnhost netexec's /clientip).

It runs as nobody (uid/gid 65534, no groups, no capabilities, no_new_privs)
in the pw-outside network namespace and serves nothing else: no /shell, no
/dial, whatever the path. Not agnhost netexec: its --http-override answers
every path as the override, but the rebuilt request has no RemoteAddr, so
/clientip would answer an empty body.
"""

from . import topology as t

NOBODY = 65534
PROC_NAME = "outside-http"  # its name in the lab state, and its log's

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

# The lowest port anyone may bind, for the pw-outside namespace only (the
# sysctl is per network namespace): nobody may then listen on port 80.
UNPRIVILEGED_PORT_SYSCTL = ("net.ipv4.ip_unprivileged_port_start", str(t.OUTSIDE_HTTP_PORT))


def server_argv(python: str = "python3") -> list[str]:
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs",
            python, "-I", "-c", SERVER, str(t.OUTSIDE_HTTP_PORT)]
