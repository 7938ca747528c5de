"""Frozen config objects whose fields name each setting once.

A config is a frozen dataclass whose fields are made with `setting`: each
carries its default, its help text and, where the command line spells it
differently, the original's flag name. Everything else is derived from the
class: the entry points' absl flags (`define_flags`), a config from parsed
flag values (`from_flags`) and the rows of a flag table (`flag_rows`).
A field of type bool, int, float or str (or Optional of one) is a flag of
that type; a field of type Tuple[X, ...] (X one of int, float, str) is a
comma-separated list flag, whose values are strings until `from_flags`
converts them to X. Nothing here reads flags.

Example:
  @dataclasses.dataclass(frozen=True)
  class Schedule:
    unroll_length: int = setting(20, "Steps per unroll.",
                                 flag="fix_unroll_length")

  define_flags(Schedule)            # in metarun.py
  schedule = from_flags(Schedule, {"fix_unroll_length": 40})
"""

import dataclasses
import typing

_HELP = "help"
_FLAG = "flag"
_FLAG_DEFAULT = "flag_default"


def setting(default, help_text, flag=None, flag_default=dataclasses.MISSING):
  """A config field that is also a command-line flag.

  Args:
    default: the field's default (the constructor's).
    help_text: the flag's help.
    flag: the flag's name when it differs from the field's (the original's
      spelling at the command line).
    flag_default: the flag's default where it differs from the field's
      (the original's programs and constructors disagree on a few).
  """
  metadata = {_HELP: help_text, _FLAG: flag}
  if flag_default is not dataclasses.MISSING:
    metadata[_FLAG_DEFAULT] = flag_default
  return dataclasses.field(default=default, metadata=metadata)


def flag_fields(config_class):
  """The fields of `config_class` made with `setting`, in order."""
  return [f for f in dataclasses.fields(config_class) if _HELP in f.metadata]


def flag_name(field):
  """The command-line name of a `setting` field."""
  return field.metadata[_FLAG] or field.name


def flag_default(field):
  """The command-line default of a `setting` field (a list field's: a list
  of strings)."""
  default = field.metadata.get(_FLAG_DEFAULT, field.default)
  if isinstance(default, tuple):
    return [str(v) for v in default]
  return default


def _list_element(kind):
  """X of a Tuple[X, ...] annotation (X one of int, float, str), else None."""
  if typing.get_origin(kind) is tuple:
    arguments = typing.get_args(kind)
    if (len(arguments) == 2 and arguments[1] is Ellipsis and
        arguments[0] in (int, float, str)):
      return arguments[0]
  return None


def _annotation(config_class, field):
  kind = typing.get_type_hints(config_class)[field.name]
  if typing.get_origin(kind) is typing.Union:  # Optional[int] and the like
    kind = next(a for a in typing.get_args(kind) if a is not type(None))
  return kind


def flag_type(config_class, field):
  """bool, int, float or str: the flag type of a field's annotation; list
  for a Tuple[X, ...] field (a comma-separated list flag)."""
  kind = _annotation(config_class, field)
  if _list_element(kind) is not None:
    return list
  if kind not in (bool, int, float, str):
    raise TypeError("%s.%s: a flag must be bool, int, float, str or "
                    "Tuple[X, ...] of one of the three, not %r" %
                    (config_class.__name__, field.name, kind))
  return kind


def flag_rows(config_class):
  """(flag name, type, default, help) of every `setting` of the class."""
  return [(flag_name(f), flag_type(config_class, f), flag_default(f),
           f.metadata[_HELP]) for f in flag_fields(config_class)]


def define_flags(config_class, flag_values=None, skip=()):
  """Defines an absl flag per `setting` of `config_class`.

  Args:
    config_class: a config dataclass.
    flag_values: an `absl.flags.FlagValues` (default: the global FLAGS).
    skip: flag names defined elsewhere (a setting shared by two configs).
  """
  from absl import flags  # pylint: disable=g-import-not-at-top
  definers = {str: flags.DEFINE_string, int: flags.DEFINE_integer,
              float: flags.DEFINE_float, bool: flags.DEFINE_boolean,
              list: flags.DEFINE_list}
  where = {} if flag_values is None else {"flag_values": flag_values}
  for name, kind, default, help_text in flag_rows(config_class):
    if name not in skip:
      definers[kind](name, default, help_text, **where)


def from_flags(config_class, values, **overrides):
  """The config whose `setting` fields take their flags' values.

  Args:
    config_class: a config dataclass.
    values: dict flag name -> value (e.g. every parsed flag); a list flag's
      strings become a tuple of its field's element type.
    **overrides: fields given directly (those not made with `setting`, or
      a value the program computes).

  Raises:
    ValueError: a list flag's string that is not of its element type.
  """
  kwargs = {}
  for field in flag_fields(config_class):
    name = flag_name(field)
    if name not in values or field.name in overrides:
      continue
    value = values[name]
    element = _list_element(_annotation(config_class, field))
    if element is not None and value is not None:
      value = tuple(element(v) for v in value)
    kwargs[field.name] = value
  kwargs.update(overrides)
  return config_class(**kwargs)


def to_flags(config):
  """dict flag name -> value of a config's `setting` fields (a list
  field's: a list of strings, as its flag parses)."""
  result = {}
  for field in flag_fields(type(config)):
    value = getattr(config, field.name)
    if isinstance(value, tuple):
      value = [str(v) for v in value]
    result[flag_name(field)] = value
  return result
