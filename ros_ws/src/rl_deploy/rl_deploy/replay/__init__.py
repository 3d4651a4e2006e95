"""Offline replay of rosbag2 files through the pipeline, with a summary and an HTML report."""

from rl_deploy.replay.bag import Bag, BagMessage, BagTopic
from rl_deploy.replay.report import write_report
from rl_deploy.replay.runner import ReplayResult, replay
from rl_deploy.replay.synthetic import SyntheticBagSpec, write_synthetic_bag
from rl_deploy.replay.writer import McapWriter

__all__ = [
    "Bag",
    "BagMessage",
    "BagTopic",
    "McapWriter",
    "ReplayResult",
    "SyntheticBagSpec",
    "replay",
    "write_report",
    "write_synthetic_bag",
]
