"""Tests of problem_spec.Spec."""

from tests import test_util  # pylint: disable=unused-import

import tensorflow.compat.v1 as tf

from problems import problem_spec


class SpecTest(tf.test.TestCase):

  def test_build_calls_callable_with_args_and_kwargs(self):
    spec = problem_spec.Spec(lambda a, b, c=0: (a, b, c), [1, 2], {"c": 3})
    self.assertEqual(spec.build(), (1, 2, 3))

  def test_build_constructs_a_new_object_each_time(self):
    spec = problem_spec.Spec(list, ((1, 2),), {})
    first, second = spec.build(), spec.build()
    self.assertEqual(first, second)
    self.assertIsNot(first, second)

  def test_spec_is_an_immutable_triple(self):
    spec = problem_spec.Spec(dict, (), {})
    self.assertEqual(spec._fields, ("callable", "args", "kwargs"))
    with self.assertRaises(AttributeError):
      spec.args = (1,)
    with self.assertRaises(AttributeError):
      spec.extra = 1


if __name__ == "__main__":
  tf.test.main()
