"""Tests of the drop-in example: a user's model with a restored optimizer."""

from tests import test_util

import numpy as np
import tensorflow.compat.v1 as tf

from examples import train_with_learned_optimizer as example
from optimizer import checkpoints


class ExampleTest(test_util.TestCase):

  def test_published_checkpoint_trains_the_users_model(self):
    path = test_util.published_checkpoint()
    if path is None:
      self.skipTest("../shared/data/published is not present")
    losses = example.train(path, steps=400, log=None)
    self.assertLen(losses, 400)
    # The learned step sizes start small and grow: the loss falls slowly,
    # then faster (mean of the last 100 steps is 0.74x the first 100).
    self.assertLess(np.mean(losses[-100:]), 0.8 * np.mean(losses[:100]))

  def test_a_missing_checkpoint_is_a_clear_error(self):
    with self.assertRaisesRegex(checkpoints.CheckpointError,
                                "holds no checkpoint"):
      example.train(self.make_tempdir(), steps=1, log=None)

  def test_blobs_are_reproducible_and_labelled(self):
    features, labels = example.make_blobs(num_samples=50, seed=3)
    again, _ = example.make_blobs(num_samples=50, seed=3)
    self.assertAllEqual(features, again)
    self.assertEqual(features.shape, (50, 8))
    self.assertTrue(set(labels) <= set(range(4)))


if __name__ == "__main__":
  tf.test.main()
