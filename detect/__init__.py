"""Mamba-based temporal action detectors trained on feature stores written by ``extract``.

Light on import: mamba-ssm, causal-conv1d and the video libraries are never imported here.
"""
