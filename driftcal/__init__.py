"""driftcal: detector calibration by Wasserstein adversarial distribution matching."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("driftcal")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
