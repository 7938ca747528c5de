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

  def test_a_tuple_field_is_a_list_flag_of_its_element_type(self):

    @dataclasses.dataclass(frozen=True)
    class Runs:
      seeds: typing.Tuple[int, ...] = configs.setting((6, 12), "Seeds.")
      grid: typing.Tuple[str, ...] = configs.setting(
          (), "Grid.", flag="init_lr_grid")

    self.assertEqual(configs.flag_rows(Runs), [
        ("seeds", list, ["6", "12"], "Seeds."),
        ("init_lr_grid", list, [], "Grid.")])
    values = flags.FlagValues()
    configs.define_flags(Runs, values)
    values(["prog"])
    self.assertEqual(values["seeds"].value, ["6", "12"])
    self.assertEqual(values["init_lr_grid"].value, [])
    values(["prog", "--seeds=3,30,300", "--init_lr_grid=1e-3,1e-6:1e-2"])
    parsed = {name: values[name].value for name in values}
    config = configs.from_flags(Runs, parsed)
    self.assertEqual(config, Runs(seeds=(3, 30, 300),
                                  grid=("1e-3", "1e-6:1e-2")))
    self.assertEqual(configs.to_flags(config),
                     {"seeds": ["3", "30", "300"],
                      "init_lr_grid": ["1e-3", "1e-6:1e-2"]})
    # An override is taken as it is, not converted.
    self.assertEqual(configs.from_flags(Runs, {"seeds": ["x"]},
                                        seeds=(1,)).seeds, (1,))
    with self.assertRaises(ValueError):
      configs.from_flags(Runs, {"seeds": ["x"]})

  def test_a_field_that_cannot_be_a_flag_is_refused(self):

    @dataclasses.dataclass(frozen=True)
    class Bad:
      sizes: tuple = configs.setting((1,), "Sizes.")

    with self.assertRaisesRegex(TypeError, "Bad.sizes"):
      configs.flag_rows(Bad)

    @dataclasses.dataclass(frozen=True)
    class Nested:
      pairs: typing.Tuple[typing.Tuple[int, int], ...] = configs.setting(
          (), "Pairs.")

    with self.assertRaisesRegex(TypeError, "Nested.pairs"):
      configs.flag_rows(Nested)


if __name__ == "__main__":
  unittest.main()
