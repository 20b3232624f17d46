"""The built-in strategies, one short module each; importing this package registers them."""
from strategies.builtin import bald, balent, balent_ref, entropy, margin, pbald, random_sampling  # noqa: F401
