"""rl_deploy against Gazebo (gz sim): the generated world, ros_gz_bridge, and the stack of
robot.launch.py on simulated time.

    ros2 launch rl_deploy_ros sim_gazebo.launch.py scene:=example_room gui:=false

The world, its models and the bridge configuration are generated from
config/scenes/<scene>.yaml (`python -m rl_deploy.sim.generate`), the same scene the MuJoCo tests
run. Gazebo publishes no AMCL pose: the stack reads the map-frame ground-truth odometry instead
(pose_source odometry).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, SetEnvironmentVariable
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import (
    EnvironmentVariable,
    LaunchConfiguration,
    PathJoinSubstitution,
    PythonExpression,
)
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

PACKAGE = "rl_deploy_ros"
SHARE = FindPackageShare(PACKAGE)
DDS_PROFILE = EnvironmentVariable(
    "FASTRTPS_DEFAULT_PROFILES_FILE",
    default_value=PathJoinSubstitution([SHARE, "config", "dds", "fastdds_large_frames.xml"]),
)

ARGUMENTS = [
    ("scene", "example_room", "Scene generated under config/scenes/generated/."),
    ("gui", "false", "Open the Gazebo GUI; false runs the server only (headless)."),
    ("robot", "stretch_like", "Robot profile in config/robots/ (hard limits)."),
    (
        "card",
        "models/example_reach.yaml",
        "Policy card, relative to the package share or absolute.",
    ),
    ("target_class", "cup", "Object class the policy is asked to reach."),
    ("mask_source", "segmentation", "segmentation (Gazebo's label camera), detector or topics."),
    ("dds_profile", DDS_PROFILE, "Fast DDS profile, here and in the stack (see robot.launch.py)."),
]


def generate_launch_description() -> LaunchDescription:
    arg = LaunchConfiguration
    scene_dir = PathJoinSubstitution([SHARE, "config", "scenes", "generated", arg("scene")])
    # true as IfCondition reads it: true or 1, any case
    headless = PythonExpression(["'' if '", arg("gui"), "'.lower() in ('true', '1') else ' -s'"])
    gazebo = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(
            PathJoinSubstitution([FindPackageShare("ros_gz_sim"), "launch", "gz_sim.launch.py"])
        ),
        launch_arguments={
            "gz_args": ["-r", headless, " ", PathJoinSubstitution([scene_dir, "world.sdf"])]
        }.items(),
    )
    bridge = Node(
        package="ros_gz_bridge",
        executable="parameter_bridge",
        name="gz_bridge",
        parameters=[
            {"config_file": PathJoinSubstitution([scene_dir, "bridge.yaml"]), "use_sim_time": True}
        ],
        output="screen",
    )
    stack = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(PathJoinSubstitution([SHARE, "launch", "robot.launch.py"])),
        launch_arguments={
            "use_sim_time": "true",
            "robot": arg("robot"),
            "card": arg("card"),
            "target_class": arg("target_class"),
            "mask_source": arg("mask_source"),
            "segmentation_channel": "2",  # labels_map is rgb8, the class id in its last channel
            "pose_source": "odometry",
            "pose_topic": "/ground_truth/odom",
            "cmd_vel_topic": "/cmd_vel",
            "arm_command_topic": "/arm_controller/joint_trajectory",
            "dds_profile": arg("dds_profile"),
        }.items(),
    )
    return LaunchDescription(
        [
            *(
                DeclareLaunchArgument(name, default_value=default, description=text)
                for name, default, text in ARGUMENTS
            ),
            # Gazebo finds the generated robot model (model://...) here.
            SetEnvironmentVariable(
                "GZ_SIM_RESOURCE_PATH", PathJoinSubstitution([scene_dir, "models"])
            ),
            # The bridge writes the camera frames: it needs the profile as much as the readers.
            SetEnvironmentVariable("FASTRTPS_DEFAULT_PROFILES_FILE", arg("dds_profile")),
            gazebo,
            bridge,
            stack,
        ]
    )
