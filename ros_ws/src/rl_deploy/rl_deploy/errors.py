"""Exception types of the core; every error the core raises on purpose is one of these."""


class RlDeployError(Exception):
    """Base of every error raised by rl_deploy on purpose."""


class DecodeError(RlDeployError):
    """A message could not be deserialized or converted (bad encoding, size, missing field)."""


class ConfigError(RlDeployError):
    """A configuration file or parameter holds an invalid value."""


class CardError(RlDeployError):
    """A policy card is malformed."""


class ModelContractError(RlDeployError):
    """An ONNX model does not match what its card (or the runner) expects."""


class StaleInputError(RlDeployError):
    """A required input is missing or older than its timeout."""


class BagError(RlDeployError):
    """A rosbag2 file cannot be read completely or disagrees with its metadata."""
