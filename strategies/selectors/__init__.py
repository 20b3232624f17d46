"""The built-in selection rules, one short module each; importing this package registers them.

A selector turns one image's score map into that image's clicks (see ``protocol``):
``topn`` (the default: the n best), ``pixelpick`` (n at random among the best q), ``spread``
(the n best at least r pixels apart).
"""
from strategies.selectors import pixelpick, spread, topn  # noqa: F401
