"""Pcaps embedded in the self-contained report."""

import base64
import re
from pathlib import Path

from packetwalk.records import DiagnosisRecord
from packetwalk.report import attachments, html, results


def test_pcap_is_embedded_as_a_download_link(tmp_path: Path):
    pcap = tmp_path / "test_pod_ip-cross-node-tcp-pw-worker-veth1.pcap"
    pcap.write_bytes(b"\xd4\xc3\xb2\xa1<pcap>")
    link = attachments.pcap_link(str(pcap))
    found = re.search(r'download="([^"]+)" href="data:application/vnd.tcpdump.pcap;base64,([^"]+)"',
                      link)
    assert found and found.group(1) == pcap.name
    assert base64.b64decode(found.group(2)) == pcap.read_bytes()


def test_missing_or_huge_pcap_is_named_not_embedded(tmp_path: Path, monkeypatch):
    assert "missing" in attachments.pcap_link(str(tmp_path / "gone.pcap"))
    big = tmp_path / "big.pcap"
    big.write_bytes(b"x" * 11)
    monkeypatch.setattr(attachments, "MAX_EMBEDDED", 10)
    link = attachments.pcap_link(str(big))
    assert "not embedded" in link and "data:" not in link


def test_diagnosis_pcaps_go_through_the_link_and_lists_read_one_per_line():
    result = results.TestResult("t", "failed", "TIMEOUT", 1.0, extras=[(
        "diagnosis", DiagnosisRecord(bisection=("a: OK", "b: TIMEOUT"),
                                     pcaps=("/x/one.pcap", "/x/two.pcap")))])
    rendered = html.test_detail(result, link=lambda path: f"<a>{path}</a>")
    assert "<a>/x/one.pcap</a><br><a>/x/two.pcap</a>" in rendered
    assert "<pre>a: OK\nb: TIMEOUT</pre>" in rendered
