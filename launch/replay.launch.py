"""rl_deploy against a recorded rosbag2: the bag played with --clock and the stack of
robot.launch.py on the bag's time.

    ros2 launch rl_deploy_ros replay.launch.py bag:=/data/kitchen_run rate:=0.5

Recorded commands (/cmd_vel, the arm controller's topic, /diagnostics, and the stack's own
outputs in STACK_OUTPUTS: commands, target mask, detections, label map, overlay and the masks of
the shipped classes) are moved under /recorded/ so they do not mix with what the stack
publishes now. Where `ros2 bag` is not
installed, player:=bag_play uses this package's player. For the fastest and deterministic
offline run, without ROS, use `rl-deploy replay BAG --out DIR` instead.
"""

from launch import LaunchDescription
from launch.actions import (
    DeclareLaunchArgument,
    ExecuteProcess,
    IncludeLaunchDescription,
    SetEnvironmentVariable,
)
from launch.conditions import IfCondition
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
# What a robot running this stack recorded, its own outputs included: played back unmoved they
# would reach the guard and the policy beside what the stack publishes now.
STACK_OUTPUTS = [
    "/rl_deploy/cmd_vel",
    "/rl_deploy/arm_command",
    "/rl_deploy/target_mask",
    "/rl_deploy/detections",
    "/rl_deploy/label_info",
    "/rl_deploy/detections_overlay",
    *(f"/rl_deploy/masks/{name}" for name in ("cup", "bottle", "bowl")),  # the shipped classes
]
RECORDED = ["/cmd_vel", "/arm_controller/joint_trajectory", "/diagnostics", *STACK_OUTPUTS]

ARGUMENTS = [
    ("bag", None, "rosbag2 directory (mcap or sqlite3) to play; required."),
    ("rate", "1.0", "Playback speed factor."),
    ("player", "ros2bag", "ros2bag (`ros2 bag play`) or bag_play (this package's player)."),
    ("robot", "stretch_like", "Robot profile in config/robots/ (hard limits)."),
    (
        "card",
        "models/example_reach.yaml",
        "Policy card, relative to the package share or absolute.",
    ),
    ("target_class", "cup", "Object class the policy is asked to reach."),
    ("mask_source", "segmentation", "segmentation, detector or topics (see robot.launch.py)."),
    ("pose_source", "amcl", "Type of the recorded pose topic: amcl, pose_stamped, odometry, tf."),
    ("pose_topic", "/amcl_pose", "Recorded base pose topic."),
    ("depth_topic", "/camera/depth/image_raw", "Recorded depth image topic."),
    ("rgb_topic", "/camera/color/image_raw", "Recorded RGB image topic."),
    ("dds_profile", DDS_PROFILE, "Fast DDS profile, here and in the stack (see robot.launch.py)."),
]


def player_is(name: str) -> IfCondition:
    return IfCondition(PythonExpression(["'", LaunchConfiguration("player"), f"' == '{name}'"]))


def generate_launch_description() -> LaunchDescription:
    arg = LaunchConfiguration
    ros2bag = ExecuteProcess(
        cmd=[
            "ros2",
            "bag",
            "play",
            arg("bag"),
            "--clock",
            "--rate",
            arg("rate"),
            "--remap",
            *(f"{topic}:=/recorded{topic}" for topic in RECORDED),
        ],
        output="screen",
        condition=player_is("ros2bag"),
    )
    bag_play = Node(
        package=PACKAGE,
        executable="bag_play",
        arguments=[arg("bag"), "--clock", "100", "--rate", arg("rate")],
        remappings=[(topic, f"/recorded{topic}") for topic in RECORDED],
        output="screen",
        condition=player_is("bag_play"),
    )
    stack = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(PathJoinSubstitution([SHARE, "launch", "robot.launch.py"])),
        launch_arguments={
            "use_sim_time": "true",
            **{
                name: arg(name)
                for name in (
                    "robot",
                    "card",
                    "target_class",
                    "mask_source",
                    "pose_source",
                    "pose_topic",
                    "depth_topic",
                    "rgb_topic",
                    "dds_profile",
                )
            },
        }.items(),
    )
    declared = [
        DeclareLaunchArgument(name, description=text)
        if default is None
        else DeclareLaunchArgument(name, default_value=default, description=text)
        for name, default, text in ARGUMENTS
    ]
    # The player writes the camera frames: it needs the profile as much as the readers.
    return LaunchDescription(
        [
            *declared,
            SetEnvironmentVariable("FASTRTPS_DEFAULT_PROFILES_FILE", arg("dds_profile")),
            ros2bag,
            bag_play,
            stack,
        ]
    )
