"""Diagnosis of a failed hop: narrowing probes (bisection) and packet capture.

Pure decisions (what to probe next, what the results mean, what a capture
shows) live apart from the code that probes and captures, so they are
unit-tested without a cluster: narrowing.py, conclusion.py, packets.py,
touched.py, policyeval.py and policytext.py are pure; diagnoser.py, capture.py
and policies.py talk to the cluster.
"""
