"""rl_deploy: rebuild a simulator's observations on a robot and run an RL policy on them.

The core never imports rclpy; ROS hosts feed it CDR bytes and publish the bytes it returns.
"""

__version__ = "0.1.0"
