"""Errors a user can cause. Every message names the file, the id and the fix."""


class MCSANError(Exception):
    """Base class of every error mcsan raises for bad input or bad state."""


class DataError(MCSANError):
    """A dataset file is missing, malformed or inconsistent."""


class FeatureError(MCSANError):
    """A feature store is missing, corrupt or does not match the expected spec."""


class VideoError(MCSANError):
    """A clip cannot be decoded."""


class ParseError(MCSANError):
    """A caption cannot be parsed (empty, control characters, bad bytes)."""


class ConfigError(MCSANError):
    """A run configuration is invalid (unknown key, wrong type, bad value)."""


class CheckpointError(MCSANError):
    """A checkpoint or index is missing, corrupt or does not belong to this run."""


class EvaluationError(MCSANError):
    """Scores or labels handed to the evaluator are invalid."""


class TrainingError(MCSANError):
    """Training cannot go on (for example a NaN loss)."""


class SearchError(MCSANError):
    """A search request or index is invalid."""


class OutputError(MCSANError):
    """An output path cannot be written (missing or read-only folder, full disk, ...)."""
