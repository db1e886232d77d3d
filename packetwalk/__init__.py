"""packetwalk: Kubernetes network conformance, walked hop by hop."""
