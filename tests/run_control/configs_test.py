"""Tests of run_control/configs.py: flags derived from config fields."""

import dataclasses
import typing
import unittest

from absl import flags

from run_control import configs


@dataclasses.dataclass(frozen=True)
class _Schedule:
  unroll_length: int = configs.setting(20, "Steps per unroll.",
                                       flag="fix_unroll_length")
  fixed: bool = configs.setting(False, "Fixed schedule.", flag="fix_unroll",
                                flag_default=True)
  rate: float = configs.setting(1e-6, "Meta learning rate.")
  seed: typing.Optional[int] = configs.setting(None, "Seed.")
  name: str = configs.setting("adam", "Teacher.")
  computed: tuple = (1, 2)


class ConfigsTest(unittest.TestCase):

  def test_rows_use_the_flag_names_types_and_defaults(self):
    self.assertEqual(configs.flag_rows(_Schedule), [
        ("fix_unroll_length", int, 20, "Steps per unroll."),
        ("fix_unroll", bool, True, "Fixed schedule."),
        ("rate", float, 1e-6, "Meta learning rate."),
        ("seed", int, None, "Seed."),
        ("name", str, "adam", "Teacher.")])

  def test_defined_flags_parse_into_the_config(self):
    values = flags.FlagValues()
    configs.define_flags(_Schedule, values, skip=("name",))
    values(["prog", "--fix_unroll_length=7", "--nofix_unroll", "--seed=3"])
    self.assertNotIn("name", values)
    parsed = {name: values[name].value for name in values}
    config = configs.from_flags(_Schedule, parsed, computed=(5,))
    self.assertEqual(config, _Schedule(unroll_length=7, fixed=False,
                                       seed=3, computed=(5,)))
    self.assertEqual(configs.to_flags(config)["fix_unroll_length"], 7)
    with self.assertRaises(dataclasses.FrozenInstanceError):
      config.rate = 1.

  def test_a_field_that_cannot_be_a_flag_is_refused(self):

    @dataclasses.dataclass(frozen=True)
    class Bad:
      sizes: tuple = configs.setting((1,), "Sizes.")

    with self.assertRaisesRegex(TypeError, "Bad.sizes"):
      configs.flag_rows(Bad)


if __name__ == "__main__":
  unittest.main()
