# Source the ROS 2 underlay: apt installs it in /opt/ros/<distro>, source builds in .../install.
for setup in "/opt/ros/${ROS_DISTRO}/install/setup.bash" "/opt/ros/${ROS_DISTRO}/setup.bash"; do
  if [ -f "$setup" ]; then
    # shellcheck disable=SC1090
    source "$setup"
    break
  fi
done
