"""Detector modules: Mamba mixers, backbone blocks, the ActionFormer-style detector."""
