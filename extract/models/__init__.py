"""Feature models: Inception-I3D (RGB and flow)."""
