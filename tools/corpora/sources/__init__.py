"""The sources of ``real-clean``, one module each; ``tools.corpora.real.plan_real`` calls them in manifest order."""
