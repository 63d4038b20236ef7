"""Feature extraction and dataset preparation for temporal action localization.

Light on import: video decoders, open_clip and torch are imported where they are used.
"""
