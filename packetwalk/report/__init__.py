"""The run's report: HTML (pytest-html), JUnit properties, JSON results, baseline diff.

Pure pieces (results, baseline, matrix, svg, junit, html) are unit-tested;
plugin.py is the only module that talks to pytest, facts.py and podevents.py
the only ones that talk to the cluster.
"""
