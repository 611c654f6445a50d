"""Herald: a notification service with its delivery workers in the same process."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("herald")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
