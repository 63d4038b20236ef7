"""Video inputs: finding videos, ffmpeg, decoding to frame chunks."""
