"""The lab: a real multi-node Kubernetes cluster from upstream components, on one machine."""
