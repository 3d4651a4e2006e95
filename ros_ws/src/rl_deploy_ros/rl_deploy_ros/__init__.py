"""rl_deploy_ros: thin rclpy lifecycle nodes that move CDR bytes to and from the rl_deploy core.

Each node declares parameters, builds a core step, and publishes what the step returns.
"""
