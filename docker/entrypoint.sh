#!/usr/bin/env bash
# Source ROS and the rl_deploy workspace, then `ros2 launch rl_deploy_ros <file> <args...>`.
# A first argument that is not a launch file runs as a command (e.g. `bash`).
set -eo pipefail
source /ros_setup.sh
# colcon writes POSIX setup.sh (and setup.bash when colcon-bash is installed).
source "${RL_DEPLOY_WS}/setup.sh"
if [[ "${1:-}" == *.launch.py ]]; then
  exec ros2 launch rl_deploy_ros "$@"
fi
if [[ "${1:-}" == *:=* ]]; then
  exec ros2 launch rl_deploy_ros robot.launch.py "$@"
fi
exec "$@"
