"""packetwalk's own suites: a run of any path under suites/ asks for packetwalk
(options.asked), so the plugin deploys the run's workloads and walks the cluster."""

packetwalk = True
