"""The kopf operator that runs Twitter System on Kubernetes from ``TwitterSystem`` resources.

``python -m twitter_operator`` starts it; ``runner`` wires kopf, ``reconcile`` contains the one
idempotent reconcile, ``manifests`` builds the children, ``faults`` decides restarts.
"""
