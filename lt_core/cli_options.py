"""Command-line options made from the config dataclasses, so that a flag cannot drift from its config.

Each field of a config becomes one flag: its name (``batch_size`` -> ``--batch-size``, or the field's
``flag`` metadata), its type (the annotation: ``int``, ``float``, ``str``, ``bool`` as a ``--x`` /
``--no-x`` pair, a tuple as a comma-separated list), its help (the field's ``help`` metadata, see
:func:`lt_core.config.option`), its default (``None``: "the config's own", shown in the help) and the
values it allows, which are read from the config's own checks: the config is built with an
impossible value of the field and the range or the names its error states are shown. A value given
on the command line is handed to the config's constructor, so a bad one is the config's own one-line
error (``TrainConfig.epochs: 0 is out of range [1, 100000]``).

Several configs can share one flag (``learn-mask``: every registered mask method's settings): the
help then says each owner's default and allowed values, and the text is converted with the type of the
config that is built.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import re
import typing
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from .config import LENGTH_FIELDS, Config
from .errors import ConfigError

# an impossible value per type: the config's check of it states what is allowed
_PROBES = {int: (-10**30, 10**30), float: (-1e300, 1e300), str: ("\x00?",)}
_RANGE = re.compile(r"is out of range ([\[(]\S+, \S+[\])])")
_CHOICES = re.compile(r"allowed values: (.*)$")
MANY_CHOICES = 8  # more names than this are left to the 'list' command


def comma_list(text: str, name: str, kind: type = str, what: Optional[str] = "values") -> list:
    """The items of a comma-separated option (``a,b`` or ``[a, b]``; for integers also ranges, ``0-3,10``).

    ``name`` (the flag) and ``what`` (what to give) make the one-line errors: an empty list is
    refused (leave the option out for its default; ``what=None``: returned, for the config to judge),
    and so is an integer list that cannot be read.
    """
    inner = str(text).strip()
    inner = inner[1:-1] if inner.startswith("[") and inner.endswith("]") else inner
    parts = [part.strip() for part in inner.split(",") if part.strip()]
    if not parts and what is not None:
        raise ConfigError(f"{name}: {text!r} is an empty list; give one or more {what}")
    if kind is str:
        return parts
    out = []
    try:
        for part in parts:
            if "-" in part[1:]:
                lo, hi = (int(v) for v in part.split("-", 1))
                out.extend(range(lo, hi + 1))
            else:
                out.append(int(part))
    except ValueError:
        raise ConfigError(f"{name}: cannot read {text!r}; write e.g. 0,1,2 or 0-24") from None
    return out


def _base(hint) -> Tuple[type, Optional[type]]:
    """``(kind, item)`` of an annotation: ``Optional[X]`` is X; ``Tuple[X, ...]`` is ``(tuple, X)``."""
    if typing.get_origin(hint) is typing.Union:
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if typing.get_origin(hint) in (tuple, list):
        return tuple, typing.get_args(hint)[0]
    return hint, None


def _probe(cls: type, name: str, kind: type, item: Optional[type]) -> Tuple[str, Any]:
    """What the config's own check of field ``name`` allows: ``("range", "[1, 100000]")``,
    ``("choices", [names])`` or ``("", None)`` when it says nothing."""
    for value in _PROBES.get(item if kind is tuple else kind, ()):
        try:
            cls(**{name: (value,) if kind is tuple else value})
        except Exception as exc:  # noqa: BLE001 -- a plugin's config may raise anything; it only informs help
            text = str(exc)
            if f".{name}:" not in text.split(" ", 1)[0]:
                continue
            if _RANGE.search(text):
                return "range", _RANGE.search(text).group(1)
            if _CHOICES.search(text):
                return "choices", _CHOICES.search(text).group(1).split(", ")
    return "", None


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        if value and all(isinstance(v, int) for v in value) and list(value) == list(range(value[0], value[-1] + 1)) \
                and len(value) > 2:
            return f"{value[0]}-{value[-1]}"
        return ",".join(map(str, value))
    return str(value)


@dataclass
class FieldOption:
    """One flag and the config fields it sets: ``owners`` maps a label (a method's name, or the
    config's class name) to ``(config class, field)``."""

    name: str
    flag: str
    owners: Dict[str, Tuple[type, dataclasses.Field]]
    multi: bool = False  # a comma list that makes one config per item (lottery's criteria)
    fallback: str = ""  # the help when no owner's metadata has one

    def kinds(self) -> set:
        return {_base(typing.get_type_hints(cls)[f.name]) for cls, f in self.owners.values()}

    def allowed(self) -> Dict[str, Tuple[str, Any]]:
        return {label: _probe(cls, f.name, *_base(typing.get_type_hints(cls)[f.name]))
                for label, (cls, f) in self.owners.items()}

    def help(self, many: bool, listed: bool = False) -> str:
        """The flag's help: the field's, what it allows (``listed``: argparse lists the choices), its
        default, and with ``many`` the configs that have it."""
        helps = [f.metadata["help"] for _, f in self.owners.values() if f.metadata.get("help")]
        text = helps[0] if helps else self.fallback or self.name.replace("_", " ")
        if self.multi:
            text += "; a comma-separated list runs one per entry"
        allowed = self.allowed()
        described = {label: "" if listed else _allowed_text(a) for label, a in allowed.items()}
        # a None default no metadata explains means what another owner's says (e.g. "once per epoch")
        texts = [f.metadata["default_text"] for _, f in self.owners.values() if f.metadata.get("default_text")]
        defaults = {label: _default_text(f, texts[0] if texts else "none") for label, (_, f) in self.owners.items()}
        if len(set(described.values())) == 1:
            shown = next(iter(described.values()))
            text += f"; {shown}" if shown else ""
        else:
            text += "; " + "; ".join(f"{label}: {d or 'any'}" for label, d in described.items())
        if len(set(defaults.values())) == 1:
            text += f" (default: {next(iter(defaults.values()))})"
        else:
            text += " (default: " + ", ".join(f"{label} {d}" for label, d in defaults.items()) + ")"
        if many:
            text += f" [{', '.join(self.owners)}]"
        return text.replace("%", "%%")


def _bound(match: "re.Match") -> str:
    """A large integer bound as it is written: 2^63-1, 1e9."""
    n = int(float(match.group(0)))
    if n >= 10**6 and (n + 1) & n == 0:
        return f"2^{(n + 1).bit_length() - 1}-1"
    if n >= 10**6 and str(n).rstrip("0") == "1":
        return f"1e{len(str(n)) - 1}"
    return match.group(0)


def _allowed_text(allowed: Tuple[str, Any]) -> str:
    what, value = allowed
    if what == "range":
        return "in " + re.sub(r"\d{7,}(?:\.0)?(?![\d.])", _bound, value)
    if what == "choices":
        return "see 'list'" if len(value) > MANY_CHOICES else "one of " + ", ".join(value)
    return ""


def _default_text(f: dataclasses.Field, none: str = "none") -> str:
    if f.default is None:
        return f.metadata.get("default_text", none)
    return _show(f.default)


class Switch(argparse.Action):
    """A boolean field as ``--x`` (true) / ``--no-x`` (false); left out, it is the config's default."""

    def __init__(self, option_strings, dest, **kw):
        super().__init__(option_strings, dest, nargs=0, **kw)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, not option_string.startswith("--no-"))


class Deprecated(argparse.Action):
    """An old spelling kept one release: it sets ``dest`` as the new one does and leaves a notice in
    ``namespace.deprecations`` (the CLI prints it as one line on stderr)."""

    def __init__(self, option_strings, dest, notice: str = "", **kw):
        self.notice = notice
        super().__init__(option_strings, dest, **kw)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        notes = list(getattr(namespace, "deprecations", None) or [])
        namespace.deprecations = notes + [f"{option_string} is deprecated: {self.notice}"]


def field_options(configs: Mapping[str, type], *, multi: Iterable[str] = (), skip: Iterable[str] = (),
                  helps: Mapping[str, str] = {}) -> List[FieldOption]:
    """One :class:`FieldOption` per field name of ``configs`` (label -> config class), in field order.
    ``helps``: the help of a field whose metadata has none (a config whose module gives none yet)."""
    options: Dict[str, FieldOption] = {}
    multi, skip = set(multi), set(skip)
    for label, cls in configs.items():
        for f in dataclasses.fields(cls):
            if f.name in skip:
                continue
            flag = "--" + f.metadata.get("flag", f.name).replace("_", "-")
            opt = options.setdefault(f.name, FieldOption(f.name, flag, {}, f.name in multi, helps.get(f.name, "")))
            opt.owners[label] = (cls, f)
    return list(options.values())


def add_options(group, options: Sequence[FieldOption], taken: set, *, many: bool = False) -> List[FieldOption]:
    """Add a flag per option to ``group`` (an argparse parser or argument group); a flag in ``taken``
    (set by another config on the same command) is left out and ``taken`` grows. ``many``: several
    configs share the flags, and each help names its owners. Returns the options added."""
    added = []
    exclusive = None
    for opt in options:
        if opt.flag in taken:
            continue
        taken.add(opt.flag)
        kinds = opt.kinds()
        kind, item = next(iter(kinds)) if len(kinds) == 1 else (str, None)
        kw: Dict[str, Any] = dict(dest=opt.name, default=None)
        target = group
        if opt.name in LENGTH_FIELDS and all(n in {o.name for o in options} for n in LENGTH_FIELDS):
            exclusive = exclusive or group.add_mutually_exclusive_group()
            target = exclusive
        if kind is bool:
            target.add_argument(opt.flag, "--no-" + opt.flag[2:], action=Switch, help=opt.help(many), **kw)
        else:
            allowed = {a for a in (_key(v) for v in opt.allowed().values())}
            if kind is str and not opt.multi and len(allowed) == 1 and next(iter(allowed))[0] == "choices":
                kw["choices"] = list(next(iter(allowed))[1])
            elif kind in (int, float) and len(kinds) == 1:
                kw.update(type=kind, metavar="N" if kind is int else "X")
            elif kind is tuple or opt.multi:
                kw["metavar"] = "LIST"
            target.add_argument(opt.flag, help=opt.help(many, "choices" in kw), **kw)
        added.append(opt)
    return added


def _key(allowed: Tuple[str, Any]) -> Tuple[str, Any]:
    what, value = allowed
    return what, tuple(value) if isinstance(value, list) else value


def _convert(cls: type, name: str, flag: str, value: Any) -> Any:
    """A flag's value as field ``name`` of ``cls`` takes it (argparse converted the unambiguous ones)."""
    kind, item = _base(typing.get_type_hints(cls)[name])
    if not isinstance(value, str) or kind is str:
        return value
    if kind is tuple:
        items = comma_list(value, f"{cls.__name__}.{name}", item, None)
        return tuple(sorted(set(items))) if item is int else tuple(items)
    try:
        return kind(value)
    except (TypeError, ValueError):
        want = {int: "an integer", float: "a number"}.get(kind, kind.__name__)
        raise ConfigError(f"{cls.__name__}.{name}: expected {want}, got {value!r}") from None


def given(cls: type, args: argparse.Namespace, *, multi: Iterable[str] = ()) -> Dict[str, Any]:
    """The fields of ``cls`` given on the command line (argparse left the others at ``None``), as
    the config takes them; a ``multi`` field is a list of values."""
    out = {}
    multi = set(multi)
    for f in dataclasses.fields(cls):
        value = getattr(args, f.name, None)
        if value is None:
            continue
        flag = "--" + f.metadata.get("flag", f.name).replace("_", "-")
        if f.name in multi:
            out[f.name] = [_convert(cls, f.name, flag, v) for v in comma_list(value, flag, str, "names (see 'list')")]
        else:
            out[f.name] = _convert(cls, f.name, flag, value)
    return out


def build(cls: type, args: argparse.Namespace, base: Optional[Config] = None) -> Config:
    """The config ``cls`` from ``base`` (default: the config's defaults) and the flags given. Giving
    one of ``epochs`` / ``iterations`` resets the other to its default (it replaces the base's)."""
    changes = given(cls, args)
    if base is None:
        return cls(**changes)
    if any(name in changes for name in LENGTH_FIELDS):
        for f in dataclasses.fields(cls):
            if f.name in LENGTH_FIELDS and f.name not in changes:
                changes[f.name] = f.default
    return base.replace(**changes)


def build_product(cls: type, args: argparse.Namespace, multi: Sequence[str], base: Optional[Config] = None) \
        -> List[Config]:
    """One config per combination of the ``multi`` fields' comma lists (in the order given; a field
    left out keeps the base's value): :func:`build`'s config with each combination."""
    start = build(cls, argparse.Namespace(**{k: None if k in multi else v for k, v in vars(args).items()}), base)
    lists = given(cls, args, multi=multi)
    axes = [lists.get(name, [getattr(start, name)]) for name in multi]
    return [start.replace(**dict(zip(multi, combo))) for combo in itertools.product(*axes)]
