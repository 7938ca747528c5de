"""Learned optimizers: a trainable tf.compat.v1 Optimizer base and its subclasses.

Modules:
  trainable_optimizer: `TrainableOptimizer`, apply mode and meta-training mode.
  hierarchical_rnn: `HierarchicalRNN`, the three-level hierarchical RNN.
  coordinatewise_rnn: `CoordinatewiseRNN`, one small RNN per coordinate.
  global_learning_rate, learning_rate_schedule, trainable_adam: simple ones.
  rnn_cells: the RNN cells (BiasGRUCell, GRUCell, LSTMCell, BasicRNNCell).
  utils: shared maths (affine maps, RMS scaling, sparse-gradient helpers).
  registry: optimizer name -> class, for the entry points.
"""
