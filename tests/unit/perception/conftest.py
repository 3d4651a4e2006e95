"""Perception tests: Ultralytics (the parity reference) must never reach for the network."""

from __future__ import annotations

import os

os.environ.setdefault("YOLO_OFFLINE", "1")
