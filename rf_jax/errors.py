"""User-facing errors: the CLI prints these as one line, never as a traceback."""


class ConfigError(ValueError):
  """Bad input that the user can fix: the message says what to change."""


class Diverged(ConfigError):
  """The loss or gradient norm became non-finite: the run stops without saving that state."""
