"""Heavy dependencies stay out of the import of each package."""
import subprocess
import sys

import pytest

CHECK = """
import sys, {package}
loaded = sorted(m for m in {forbidden} if m in sys.modules)
print(",".join(loaded))
"""


@pytest.mark.parametrize("package,forbidden", [
    ("detect", ["decord", "open_clip", "mamba_ssm", "causal_conv1d", "av", "cv2"]),
    ("extract", ["mamba_ssm", "causal_conv1d", "torch", "decord", "open_clip"]),
    ("extract.store", ["mamba_ssm", "torch", "decord", "open_clip"]),
    ("extract.cli", ["mamba_ssm", "torch", "decord", "open_clip"]),
])
def test_package_import_stays_light(package, forbidden):
    out = subprocess.run([sys.executable, "-c", CHECK.format(package=package, forbidden=forbidden)],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"import {package} loaded {out}"
