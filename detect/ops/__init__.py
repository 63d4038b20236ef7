"""Selective scan and causal conv1d, on mamba-ssm's CUDA kernels or in pure PyTorch."""
from .backend import BACKENDS, resolve
from .causal_conv import causal_conv1d, causal_conv1d_torch
from .selective_scan import selective_scan, selective_scan_ref, selective_scan_torch

__all__ = ["BACKENDS", "causal_conv1d", "causal_conv1d_torch", "resolve", "selective_scan", "selective_scan_ref",
           "selective_scan_torch"]
