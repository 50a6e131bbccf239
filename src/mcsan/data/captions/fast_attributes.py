"""A faster stand-in for spaCy's ``attribute_ruler`` on the small English model.

The model's attribute ruler (tag -> POS and morphology, plus a few word exceptions) runs a
general token ``Matcher`` over every caption; on short captions that is a sixth of the parse
time. All its patterns are fixed token tests (TAG / LOWER / DEP equal to a value, in or not
in a list, or matching a regular expression; IS_SPACE), so they are indexed here by TAG and
applied in the ruler's own order (a later rule wins, as in spaCy). :func:`fast_ruler`
returns ``None`` (keep spaCy's) for any pattern it does not understand, so the output is
the same or the stand-in is not used; ``tests/data/captions/test_fast_attributes.py``
checks the equality on captions.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Condition = tuple[str, Any]
_KEYS = {"TAG": "tag_", "LOWER": "lower_", "DEP": "dep_", "IS_SPACE": "is_space"}


def _compile_token(spec: dict[str, Any]) -> tuple[Condition, ...] | None:
    """Conditions ``(attribute, (operator, operand))`` of one token pattern, or None."""
    conditions = []
    for key, value in spec.items():
        if key not in _KEYS:
            return None
        if isinstance(value, dict):
            if len(value) != 1:
                return None
            ((op, operand),) = value.items()
            if op in ("IN", "NOT_IN"):
                conditions.append((_KEYS[key], (op, frozenset(operand))))
            elif op == "REGEX":
                conditions.append((_KEYS[key], (op, re.compile(operand))))
            else:
                return None
        elif isinstance(value, str | bool):
            conditions.append((_KEYS[key], ("==", value)))
        else:
            return None
    return tuple(conditions)


def _matches(token: Any, conditions: tuple[Condition, ...]) -> bool:
    for attr, (op, operand) in conditions:
        got = getattr(token, attr)
        if op == "==":
            ok = got == operand
        elif op == "IN":
            ok = got in operand
        elif op == "NOT_IN":
            ok = got not in operand
        else:
            ok = operand.search(got) is not None
        if not ok:
            return False
    return True


class FastAttributeRuler:
    """Apply an attribute ruler's patterns by table look-up (see the module docstring)."""

    def __init__(self, rules: list[tuple[int, tuple[tuple[Condition, ...], ...], int, Any]]):
        """``rules``: (order, token conditions, index of the token to set, normalised attrs)."""
        from spacy.tokens._retokenize import set_token_attrs

        self._set = set_token_attrs
        self.by_tag: dict[str, list[tuple[int, tuple[Condition, ...], Any]]] = {}
        self.any_tag: list[tuple[int, tuple[Condition, ...], Any]] = []
        self.multi = []
        for order, tokens, index, attrs in rules:
            if len(tokens) > 1:
                self.multi.append((order, tokens, index % len(tokens), attrs))
                continue
            (conditions,) = tokens
            tags = [want[1] for attr, want in conditions if attr == "tag_" and want[0] == "=="]
            if tags:
                self.by_tag.setdefault(tags[0], []).append((order, conditions, attrs))
            else:
                self.any_tag.append((order, conditions, attrs))

    def __call__(self, doc: Any) -> Any:
        """Set POS, lemma and morphology on ``doc`` in place; return it."""
        found = []
        for i, token in enumerate(doc):
            for order, conditions, attrs in self.by_tag.get(token.tag_, ()):
                if _matches(token, conditions):
                    found.append((order, i, attrs))
            for order, conditions, attrs in self.any_tag:
                if _matches(token, conditions):
                    found.append((order, i, attrs))
        for order, tokens, index, attrs in self.multi:
            width = len(tokens)
            for start in range(len(doc) - width + 1):
                if all(_matches(doc[start + j], tokens[j]) for j in range(width)):
                    found.append((order, start + index, attrs))
        found.sort(key=lambda item: (item[0], item[1]))
        for _, i, attrs in found:
            self._set(doc[i], attrs)
        return doc


def fast_ruler(ruler: Any) -> Callable[[Any], Any] | None:
    """A :class:`FastAttributeRuler` equivalent to spaCy's ``ruler``, or None if any of its
    patterns is beyond fixed token tests."""
    rules = []
    try:
        for order in range(len(ruler.attrs)):
            patterns = ruler.matcher.get(str(order))[1]
            for pattern in patterns:
                tokens = tuple(_compile_token(spec) for spec in pattern)
                if not tokens or any(t is None for t in tokens):
                    return None
                rules.append((order, tokens, ruler.indices[order], ruler.attrs[order]))
    except (AttributeError, KeyError, TypeError, IndexError):
        return None
    return FastAttributeRuler(rules)
