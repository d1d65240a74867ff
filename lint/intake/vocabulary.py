"""What the raw bytes of a file must contain for each static rule to possibly fire.

Every rule needs words in the text: an optimizer is reached through its class name (in the
call, the attribute chain or the import), a penalty through ``pow``, ``**``, ``norm`` or
``square``, WD204 through ``Sequential`` or ``forward`` and ``BatchNorm``. Factories that
name the class in a string (timm's ``create_optimizer_v2``) count as a class name, and so
does a string that is exactly one (a config's ``type="AdamW"``). A rule's vocabulary is a tuple of
groups, and a text matches when each group has one of its words in it. The words come from
the optimizer table. This module imports neither libcst nor torch: the pre-filter runs before
anything heavy is loaded.
"""

from __future__ import annotations

import re
from typing import AbstractSet, Collection, Dict, FrozenSet, Mapping, Optional, Tuple, Union

from wd_guard.catalogue import iter_rules
from wd_guard.optimizers import FACTORIES as OPTIMIZER_FACTORIES, OPTIMIZERS, DecayKind

Vocabulary = Tuple[Tuple[bytes, ...], ...]

DECAYING = (DecayKind.COUPLED_ADAPTIVE, DecayKind.DECOUPLED, DecayKind.L2)


def class_names(*kinds: DecayKind, adaptive: Optional[bool] = None) -> Tuple[str, ...]:
    """Class names (as written in code) of the known optimizers of the given decay kinds."""
    return tuple(
        dict.fromkeys(
            name.rsplit(".", 1)[-1]
            for fact in OPTIMIZERS
            if (not kinds or fact.decay in kinds) and (adaptive is None or fact.adaptive == adaptive)
            for name in (fact.name, *fact.aliases)
        )
    )


def words(*names: str) -> Tuple[bytes, ...]:
    """A vocabulary group: the words, minus those that contain another word of the group
    (a text holding ``AdamW`` holds ``Adam``), in a stable order."""
    unique = list(dict.fromkeys(name.encode() for name in names))
    return tuple(word for word in unique if not any(other != word and other in word for other in unique))


# How an L2 term is spelled: functions by qualified name, methods by name, and ``**``.
NORMS = frozenset({"torch.norm", "torch.functional.norm", "torch.linalg.norm", "torch.linalg.vector_norm", "torch.linalg.matrix_norm"})
SQUARES = frozenset({"torch.square"})
POWS = frozenset({"torch.pow"})
NORM_METHODS = frozenset({"norm"})
SQUARE_METHODS = frozenset({"pow", "square"})
POWER = "**"
PENALTY_WORDS = words("pow", POWER, "norm", "square")

# The layers WD204 looks at, by class name in torch.nn.
LAYERS = frozenset(
    {"Linear", "LazyLinear", "Bilinear"}
    | {f"{lazy}Conv{kind}{d}d" for lazy in ("", "Lazy") for kind in ("", "Transpose") for d in (1, 2, 3)}
)
BATCH_NORMS = frozenset({f"{lazy}BatchNorm{d}d" for lazy in ("", "Lazy") for d in (1, 2, 3)} | {"SyncBatchNorm"})

# Factories that build a class named by a string (timm's ``create_optimizer_v2(opt="adam")``).
FACTORIES = frozenset(name.rsplit(".", 1)[-1] for fact in OPTIMIZER_FACTORIES for name in (fact.name, *fact.aliases))
# Where an optimizer's parameters come from: ``x.parameters()``, ``x.named_parameters()``, a
# factory handed a module, or a config's ``optimizer=dict(...)``.
PARAMETER_SOURCES = frozenset({"parameters", "named_parameters", "optimizer"}) | FACTORIES
# Strings that count as names: a config spells its optimizer class as ``type="AdamW"``.
QUOTED = frozenset(class_names())
# Where WD204 looks for a weight feeding BatchNorm: ``nn.Sequential`` and ``forward`` bodies.
BLOCKS = frozenset({"Sequential", "forward"})

_DECAYING_WORDS = words(*class_names(*DECAYING), *FACTORIES)
BY_CODE: Mapping[str, Vocabulary] = {
    "WD101": (words(*class_names(DecayKind.COUPLED_ADAPTIVE), *FACTORIES),),
    "WD210": (_DECAYING_WORDS, words("parameters", "optimizer")),
    "WD302": (_DECAYING_WORDS,),
    "WD401": (words(*class_names(*DECAYING)), PENALTY_WORDS),
    "WD402": (words(*class_names(adaptive=True)), PENALTY_WORDS),
    "WD204": (words(*BLOCKS), (b"BatchNorm",), words("Linear", "Conv"), _DECAYING_WORDS),
}

# The same vocabulary as whole identifiers (names, attributes, imported names; ``**`` for the
# power operator), for files that CPython's parser has read: a word that only appears in a
# string, a comment or inside a longer identifier does not count there.
Identifiers = Tuple[FrozenSet[str], ...]
_PENALTY_IDENTIFIERS = frozenset(
    {name.rsplit(".", 1)[-1] for name in NORMS | SQUARES | POWS} | NORM_METHODS | SQUARE_METHODS | {POWER}
)
_DECAYING = frozenset(class_names(*DECAYING)) | FACTORIES
IDENTIFIERS: Mapping[str, Identifiers] = {
    "WD101": (frozenset(class_names(DecayKind.COUPLED_ADAPTIVE)) | FACTORIES,),
    "WD210": (_DECAYING, PARAMETER_SOURCES),
    "WD302": (_DECAYING,),
    "WD401": (frozenset(class_names(*DECAYING)), _PENALTY_IDENTIFIERS),
    "WD402": (frozenset(class_names(adaptive=True)), _PENALTY_IDENTIFIERS),
    "WD204": (BLOCKS, BATCH_NORMS, LAYERS, _DECAYING),
}

# YAML configs: a class named under ``class_path`` or ``_target_``, or as LightningCLI's
# ``optimizer:`` value (see ``rules.configs``); the class names as above.
CONFIG_KEYS = words("class_path", "_target_", "optimizer")
CONFIG_BY_CODE: Mapping[str, Vocabulary] = {
    "WD101": (CONFIG_KEYS, words(*class_names(DecayKind.COUPLED_ADAPTIVE))),
    "WD210": ((b"optimizer",), words(*class_names(*DECAYING))),
    "WD302": (CONFIG_KEYS, words(*class_names(*DECAYING))),
}

_DEFAULT = tuple(rule.code for rule in iter_rules("static") if rule.static_default and rule.code in BY_CODE)

# Declared encodings whose bytes do not contain ASCII words as ASCII: the pre-filter cannot
# read them, so such files always go to the parser.
_CODING = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)", re.MULTILINE)
_ASCII_SUPERSETS = re.compile(r"^(utf[-_]?8(-sig)?|ascii|us-ascii|latin[-_]?1|iso[-_]?8859[-_]?\d+|cp\d+|[a-z0-9-]*euc[-\w]*|gb\w*|big5\w*|shift[-_]?jis|koi8[-_]?\w)$", re.I)


def might_matter(source: Union[bytes, str], *, select: Optional[Collection[str]] = None, config: bool = False) -> bool:
    """Whether any selected rule could fire on ``source``: a cheap test on the raw bytes.

    False means the file certainly has no finding (every rule needs some word, such as an
    optimizer's class name, to appear in the text); True means it must be parsed.
    ``select=None`` means the rules the catalogue turns on by default. ``config`` tests a YAML
    file with the configs' vocabulary. A notebook is tested as Python on its raw JSON: the
    words of its code cells are there as they are in a ``.py`` file.
    """
    data = source.encode("utf-8") if isinstance(source, str) else source
    vocabularies = CONFIG_BY_CODE if config else BY_CODE
    if not config and _unreadable_encoding(data):
        return True
    codes = _DEFAULT if select is None else [code.upper() for code in select]
    found: Dict[bytes, bool] = {}

    def has(word: bytes) -> bool:
        if word not in found:
            found[word] = word in data
        return found[word]

    return any(all(any(map(has, group)) for group in vocabularies[code]) for code in codes if code in vocabularies)


def identifiers_match(found: AbstractSet[str], select: Optional[Collection[str]] = None) -> bool:
    """Whether the identifiers of a file (and ``**`` if it uses the power operator) hold the
    identifier vocabulary of any selected rule."""
    codes = _DEFAULT if select is None else [code.upper() for code in select]
    return any(all(not group.isdisjoint(found) for group in IDENTIFIERS[code]) for code in codes if code in IDENTIFIERS)


def matches(vocabulary: Vocabulary, data: bytes) -> bool:
    """Whether ``data`` holds a word of every group of ``vocabulary``."""
    return all(any(word in data for word in group) for group in vocabulary)


def _unreadable_encoding(data: bytes) -> bool:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True
    head = b"\n".join(data.split(b"\n", 2)[:2])
    match = _CODING.search(head)
    return bool(match) and not _ASCII_SUPERSETS.match(match.group(1).decode("ascii", "replace"))
