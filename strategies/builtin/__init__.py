"""The built-in strategies, one short module each; importing this package registers them.
``badge``, ``class_balanced`` and ``coreset`` use the features and the pool context (``strategies.protocol``)."""
from strategies.builtin import (  # noqa: F401
    badge,
    bald,
    balent,
    balent_ref,
    class_balanced,
    coreset,
    entropy,
    margin,
    pbald,
    random_sampling,
)
