"""The error every bad input raises, :class:`ConfigError`, and a failed sweep's, :class:`SweepError`.

It lives apart from :mod:`lt_core.config` because the registries (architectures, criteria, mask
policies) raise it too, and :mod:`lt_core.config` validates against those registries.
"""


class ConfigError(ValueError):
    """A configuration value is invalid. The message names the field, the value and what is allowed."""


class SweepError(RuntimeError):
    """Some work units of a sweep failed; the message names each with its error (the others' results are stored)."""
