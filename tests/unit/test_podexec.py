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
