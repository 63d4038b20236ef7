"""Skeleton heatmaps (SG-Mamba's skeleton modality): person tracks from per-frame poses
(:mod:`.track`), confidence-weighted smoothing (:mod:`.smooth`), keypoint + limb maps rendered in
the clip's crop (:mod:`.render`), and the per-video pass that writes them (:mod:`.maps`)."""
