"""Task families. Importing this package registers the built-in ones."""
from rf_jax.tasks.base import (Example, Task, check_level, example_rng, get, make_example,
                               names, position_agreement, positional_credit, register)
from rf_jax.tasks import algorithmic  # noqa: F401  (registers the built-in families)
from rf_jax.tasks import reasoning  # noqa: F401
from rf_jax.tasks import bridging  # noqa: F401
from rf_jax.tasks import writing  # noqa: F401

__all__ = ["Example", "Task", "check_level", "example_rng", "get", "make_example", "names",
           "position_agreement", "positional_credit", "register"]
