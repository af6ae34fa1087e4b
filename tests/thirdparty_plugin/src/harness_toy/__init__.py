"""A third-party plugin, written only against harness's public API."""
