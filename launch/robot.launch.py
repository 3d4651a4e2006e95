"""rl_deploy on a robot: policy_node (and perception_node, or both in one stack_node) feeding
command_guard, the only node that talks to the base and arm controllers.

    ros2 launch rl_deploy_ros robot.launch.py robot:=stretch_like \\
        depth_topic:=/camera/aligned_depth_to_color/image_raw pose_topic:=/amcl_pose

The camera driver, SLAM/localisation and ros2_control run as the robot already runs them; this
file only remaps to their topics. sim_gazebo.launch.py and replay.launch.py include it.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, GroupAction, SetEnvironmentVariable
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import (
    EnvironmentVariable,
    LaunchConfiguration,
    PathJoinSubstitution,
    PythonExpression,
)
from launch_ros.actions import Node, PushRosNamespace
from launch_ros.substitutions import FindPackageShare

PACKAGE = "rl_deploy_ros"
SHARE = FindPackageShare(PACKAGE)
DDS_PROFILE = EnvironmentVariable(
    "FASTRTPS_DEFAULT_PROFILES_FILE",
    default_value=PathJoinSubstitution([SHARE, "config", "dds", "fastdds_large_frames.xml"]),
)

# Closes a quoted flag in a PythonExpression: true as IfCondition reads it (true or 1, any case).
TRUE_TEST = "'.lower() in ('true', '1')"

# name, default, description: every argument of this file.
ARGUMENTS = [
    ("namespace", "", "Namespace of every rl_deploy node."),
    ("use_sim_time", "false", "Take time from /clock (Gazebo, ros2 bag play --clock)."),
    (
        "robot",
        "stretch_like",
        "Robot profile in config/robots/ (hard limits): stretch_like or diff_drive_arm.",
    ),
    (
        "card",
        "models/example_reach.yaml",
        "Policy card, relative to the package share or absolute.",
    ),
    ("target_class", "cup", "Object class the policy is asked to reach."),
    (
        "mask_source",
        "segmentation",
        "segmentation (a class-id image), detector (YOLO-seg inside "
        "policy_node), or topics (a separate perception_node).",
    ),
    (
        "single_process",
        "false",
        "Run perception and policy in one stack_node (mask_source topics, lower latency).",
    ),
    ("pose_source", "amcl", "Type of pose_topic: amcl, pose_stamped, odometry or tf."),
    (
        "policy_params",
        PathJoinSubstitution([SHARE, "config", "policy_node.yaml"]),
        "policy_node parameters.",
    ),
    (
        "perception_params",
        PathJoinSubstitution([SHARE, "config", "perception_node.yaml"]),
        "perception_node parameters.",
    ),
    (
        "guard_params",
        PathJoinSubstitution([SHARE, "config", "command_guard.yaml"]),
        "command_guard parameters.",
    ),
    ("depth_topic", "/camera/depth/image_raw", "Depth image (16UC1 mm or 32FC1 m)."),
    ("rgb_topic", "/camera/color/image_raw", "RGB image (detector)."),
    (
        "aligned_depth_topic",
        "/camera/aligned_depth_to_color/image_raw",
        "Depth registered to the RGB image: perception_node's filter around each instance's "
        "median depth (depth_tolerance_m).",
    ),
    ("camera_info_topic", "/camera/color/camera_info", "Camera info of the RGB image."),
    ("segmentation_topic", "/camera/segmentation", "Class-id image (mask_source segmentation)."),
    (
        "segmentation_channel",
        "-1",
        "Channel of a multi-channel segmentation image that holds the class id (Gazebo's rgb8 "
        "label map: 2); -1 for a single-channel image.",
    ),
    ("joint_states_topic", "/joint_states", "Joint states of the robot."),
    ("pose_topic", "/amcl_pose", "Base pose (SLAM or localisation); /tf with pose_source tf."),
    ("estop_topic", "/estop", "std_msgs/Bool e-stop, honoured by policy and guard."),
    ("teleop_topic", "/cmd_vel_teleop", "Teleop twist; takes priority over the policy."),
    ("cmd_vel_topic", "/cmd_vel", "Base controller command (guard output)."),
    (
        "arm_command_topic",
        "/arm_controller/joint_trajectory",
        "Arm controller command (guard output).",
    ),
    (
        "dds_profile",
        DDS_PROFILE,
        "Fast DDS profile of the processes started here: FASTRTPS_DEFAULT_PROFILES_FILE when "
        "set, else config/dds/fastdds_large_frames.xml (camera frames in one piece).",
    ),
]


def generate_launch_description() -> LaunchDescription:
    arg = LaunchConfiguration
    sim_time = {"use_sim_time": arg("use_sim_time")}
    robot_profile = PathJoinSubstitution([SHARE, "config", "robots", [arg("robot"), ".yaml"]])
    camera_remaps = [
        ("/camera/depth/image_raw", arg("depth_topic")),
        ("/camera/color/image_raw", arg("rgb_topic")),
        ("/camera/color/camera_info", arg("camera_info_topic")),
        ("/camera/aligned_depth_to_color/image_raw", arg("aligned_depth_topic")),
    ]
    policy_overrides = {
        **sim_time,
        "base_dir": SHARE,
        "robot_profile": robot_profile,
        "policy.card": arg("card"),
        "policy.target_class": arg("target_class"),
        "pose_source": arg("pose_source"),
        "masks.segmentation_channel": arg("segmentation_channel"),
        "masks.source": PythonExpression(
            ["'topics' if '", arg("single_process"), TRUE_TEST, " else '", arg("mask_source"), "'"]
        ),
    }
    policy_remaps = [
        *camera_remaps,
        ("/camera/segmentation", arg("segmentation_topic")),
        ("/joint_states", arg("joint_states_topic")),
        ("/amcl_pose", arg("pose_topic")),
        ("/estop", arg("estop_topic")),
    ]
    perception_overrides = {**sim_time, "base_dir": SHARE}
    separate_perception = PythonExpression(
        ["not '", arg("single_process"), TRUE_TEST, " and '", arg("mask_source"), "' == 'topics'"]
    )

    policy = Node(
        package=PACKAGE,
        executable="policy_node",
        name="policy_node",
        parameters=[arg("policy_params"), policy_overrides],
        remappings=policy_remaps,
        output="screen",
        condition=UnlessCondition(arg("single_process")),
    )
    perception = Node(
        package=PACKAGE,
        executable="perception_node",
        name="perception_node",
        parameters=[arg("perception_params"), perception_overrides],
        remappings=camera_remaps,
        output="screen",
        condition=IfCondition(separate_perception),
    )
    stack = Node(
        package=PACKAGE,
        executable="stack_node",
        # Overrides given as a mapping reach both nodes; each keeps the ones it declares.
        parameters=[arg("perception_params"), arg("policy_params"), policy_overrides],
        remappings=policy_remaps,
        output="screen",
        condition=IfCondition(arg("single_process")),
    )
    guard = Node(
        package=PACKAGE,
        executable="command_guard",
        name="command_guard",
        parameters=[arg("guard_params"), {**sim_time, "robot_profile": robot_profile}],
        remappings=[
            ("cmd_vel_in", "/rl_deploy/cmd_vel"),
            ("arm_command_in", "/rl_deploy/arm_command"),
            ("cmd_vel_teleop", arg("teleop_topic")),
            ("estop", arg("estop_topic")),
            ("joint_states", arg("joint_states_topic")),
            ("cmd_vel", arg("cmd_vel_topic")),
            ("arm_command", arg("arm_command_topic")),
        ],
        output="screen",
    )
    return LaunchDescription(
        [
            *(
                DeclareLaunchArgument(name, default_value=default, description=text)
                for name, default, text in ARGUMENTS
            ),
            GroupAction(
                [
                    SetEnvironmentVariable("FASTRTPS_DEFAULT_PROFILES_FILE", arg("dds_profile")),
                    PushRosNamespace(arg("namespace")),
                    policy,
                    perception,
                    stack,
                    guard,
                ]
            ),
        ]
    )
