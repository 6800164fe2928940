"""Lets ethereum-etl 2.4.2 run every command, contract calls included, on Python 3.11 and 3.12.

`make tools` copies this module into the ethereum-etl venv's site-packages (``.tools/venv``)
with a one-line ``ethereum_etl_py311_compat.pth`` beside it, so it runs at interpreter start
in that venv only, before ethereum-etl imports anything.

Why. ethereum-etl 2.4.2 requires eth-abi<3; eth-abi 2.2.0 requires parsimonious>=0.8,<0.9:

* parsimonious 0.8.1 (the only release in that range that pip picks) does
  ``from inspect import getargspec`` (parsimonious/expressions.py) to count the arguments of
  a custom rule; Python 3.11 removed ``inspect.getargspec``, so the import fails;
* parsimonious 0.9 and later import, but turned ``expressions.Optional`` (and ZeroOrMore,
  OneOrMore) from classes into functions returning a ``Quantifier``. eth-abi 2.2.0's type
  grammar (eth_abi/grammar.py, ``NodeVisitor.generic_visit``) does
  ``isinstance(node.expr, expressions.Optional)``: a TypeError, raised as a
  ``VisitationError`` for every ABI type string, so every contract call (export_tokens,
  extract_tokens, export_token_transfers -t) fails.

So the venv keeps parsimonious 0.8.1, the version eth-abi asks for and the one ethereum-etl
runs with on Python 3.7 to 3.10, and this module puts back ``inspect.getargspec`` as
Python 3.10 defines it (a view of ``inspect.getfullargspec``, refusing keyword-only
parameters and annotations). Nothing else changes: the parser, and therefore the output, are
those of Python 3.10. On a Python that still has ``getargspec`` it does nothing.
"""

import inspect
from collections import namedtuple
from typing import Any, Callable

if not hasattr(inspect, "getargspec"):
    ArgSpec = namedtuple("ArgSpec", "args varargs keywords defaults")

    def getargspec(func: Callable[..., Any]) -> Any:
        """Python 3.10's ``inspect.getargspec`` (without its DeprecationWarning)."""
        spec = inspect.getfullargspec(func)
        if spec.kwonlyargs or spec.annotations:
            raise ValueError(
                "Function has keyword-only parameters or annotations, use inspect.signature() "
                "API which can support them"
            )
        return ArgSpec(spec.args, spec.varargs, spec.varkw, spec.defaults)

    inspect.getargspec = getargspec  # type: ignore[attr-defined]
