"""rl_deploy core: pip-installable and an ament_python package for colcon."""

from setuptools import find_packages, setup

PACKAGE = "rl_deploy"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "tests"]),
    package_data={PACKAGE: ["py.typed", "codec/msg/**/*.msg"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    python_requires=">=3.10",
    install_requires=[
        "numpy>=1.24",
        "rosbags>=0.10",
        "mcap>=1.1",
        "lz4>=4",  # mcap chunks written by the replay and the simulator
        "zstandard>=0.19",  # mcap chunks as ros2 bag record writes them
        "onnxruntime>=1.17",
        "onnx>=1.15",
        "opencv-python-headless>=4.8",
        "transforms3d>=0.4",
        "PyYAML>=6",
        "tqdm>=4.60",
        "matplotlib>=3.7",
    ],
    extras_require={
        "export": ["ultralytics>=8.3", "torch", "torchvision"],
        "sim": ["mujoco>=3.1"],
    },
    zip_safe=True,
    license="Apache-2.0",
    description="Run a simulation-trained RL policy on a ROS 2 robot: ROS-agnostic core.",
    entry_points={"console_scripts": ["rl-deploy = rl_deploy.cli:main"]},
)
