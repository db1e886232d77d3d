"""Exit codes from the exec error channel."""

import pytest

from packetwalk.podexec import exit_code
from packetwalk.probes import ProbeError


def test_success_and_nonzero():
    assert exit_code('{"metadata":{},"status":"Success"}') == 0
    assert exit_code('{"metadata":{},"status":"Failure","message":"command terminated with '
                     'non-zero exit code: error executing command [curl], exit code 28",'
                     '"reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode",'
                     '"message":"28"}]}}') == 28


def test_exec_failures_are_probe_errors():
    with pytest.raises(ProbeError, match="executable file not found"):
        exit_code('{"status":"Failure","message":"exec: \\"curl\\": executable file not found",'
                  '"reason":"InternalError"}')
    with pytest.raises(ProbeError, match="without an exit status"):
        exit_code("")


def test_handshake_failure_is_reduced_to_the_api_message():
    from packetwalk.podexec import handshake_message

    reason = ("Handshake status 500 Internal Server Error -+-+- {'audit-id': 'x'} -+-+- "
              '{"kind":"Status","status":"Failure","message":"error dialing backend: dial tcp: '
              'lookup pw-worker: i/o timeout \\u003e","code":500}')
    assert handshake_message(Exception(reason)) == \
        "error dialing backend: dial tcp: lookup pw-worker: i/o timeout >"
    assert handshake_message(Exception("Handshake status 403 -+-+- {}")) == "Handshake status 403"


class LocalBash:
    """The exec stream of a kept shell, played by a real bash on this machine: what
    the pod's bash would write arrives in frames of any size, as over the websocket."""

    def __init__(self, frame: int = 7):
        import subprocess
        self.proc = subprocess.Popen(["bash"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.frame, self.buffered = frame, {1: "", 2: ""}

    def write_stdin(self, data: str):
        self.proc.stdin.write(data.encode())
        self.proc.stdin.flush()

    def is_open(self):
        return self.proc.poll() is None

    def update(self, timeout=0):
        import os
        import select
        ready, _, _ = select.select([self.proc.stdout, self.proc.stderr], [], [], timeout)
        for pipe in ready:
            chunk = os.read(pipe.fileno(), self.frame).decode()
            self.buffered[1 if pipe is self.proc.stdout else 2] += chunk

    def read_channel(self, channel, timeout=0):
        data, self.buffered[channel] = self.buffered[channel], ""
        return data

    def close(self):
        self.proc.kill()
        self.proc.wait()


def test_a_kept_shell_runs_command_after_command_with_exact_output_and_code():
    from packetwalk.podexec import Shell

    ws = LocalBash()
    shell = Shell(ws, "ns/pod")
    try:
        first = shell.run(["printf", "%s", "no newline"], 5)
        assert (first.rc, first.stdout, first.stderr) == (0, "no newline", "")
        second = shell.run(["bash", "-c", "echo out; echo err >&2; exit 3"], 5)
        assert (second.rc, second.stdout, second.stderr) == (3, "out\n", "err\n")
        # A command reading stdin must not eat the next one.
        assert shell.run(["cat"], 5).stdout == ""
        assert shell.run(["echo", "it's 'quoted' $HOME"], 5).stdout == "it's 'quoted' $HOME\n"
        assert shell.run(["no-such-command-pw"], 5).rc == 127
    finally:
        shell.close()


def test_a_kept_shell_that_hangs_is_a_probe_error_and_a_dead_one_is_broken():
    from packetwalk.podexec import Shell, ShellBroken

    ws = LocalBash()
    shell = Shell(ws, "ns/pod")
    with pytest.raises(ProbeError, match="still running after 1s"):
        shell.run(["sleep", "5"], 1)
    shell.close()
    with pytest.raises(ShellBroken):
        shell.run(["true"], 1)
