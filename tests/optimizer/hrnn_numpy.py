"""An independent numpy (float64) reference of the HierarchicalRNN step.

Written per tensor, row-major ([n, c] columns), straight from the original's
equations, without reading optimizer/hrnn_step.py. `hrnn` is only read for
its settings; the meta-parameters come as a dict name -> array of the
variables under "LOL/" (see `meta_values`).
"""

import numpy as np
import tensorflow.compat.v1 as tf

_MIN_LOG_LR = -33.


def sigmoid(x):
  return 1. / (1. + np.exp(-x))


def meta_values(sess):
  """{name without "LOL/": value} of the graph's LOL variables, float64."""
  variables = [v for v in tf.global_variables()
               if v.op.name.startswith("LOL/")]
  values = sess.run(variables)
  return {v.op.name[len("LOL/"):]: np.asarray(x, np.float64)
          for v, x in zip(variables, values)}


def initial_state(hrnn, v, param):
  """The state of a fresh tensor (needs min_lr == max_lr: no random draw)."""
  n = param.size
  low, high = hrnn.init_lr_range
  assert low == high, "the reference needs a constant initial learning rate"
  s = hrnn.num_gradient_scales
  state = {"parameter": np.tile(v["Level0_RNN/init_vector"], [n, 1]),
           "scl_decay": np.zeros((n, 1)), "inp_decay": np.zeros((n, 1)),
           "true_param": np.array(param, np.float64)}
  if hrnn.dynamic_output_scale:
    state["log_learning_rate"] = np.full((n, 1), np.log(low))
  for i in range(s):
    state["grad_accum%d" % (i + 1)] = np.zeros((n, 1))
    state["ms%d" % (i + 1)] = np.zeros((n, 1))
  if hrnn.num_layers > 1:
    state["layer"] = np.array(v["Level1_RNN/init_vector"])
  return state


def initial_global(hrnn, v):
  return (np.array(v["Level2_RNN/init_vector"]) if hrnn.num_layers == 3
          else None)


def _gru(v, prefix, x, h, bias):
  """The BiasGRUCell: x [B, D], h [B, H], bias [B or 1, 3H]."""
  size = h.shape[1]
  cell = prefix + "BiasGRUCell/"
  gates = (np.concatenate([x, h], 1).dot(v[cell + "gates/Affine/Matrix"]) +
           v[cell + "gates/Affine/Bias"] + bias[:, :2 * size])
  r, u = np.split(sigmoid(gates), 2, axis=1)
  c = np.tanh(np.concatenate([x, r * h], 1).dot(
      v[cell + "candidate/Affine/Matrix"]) + v[cell + "candidate/Affine/Bias"]
              + bias[:, 2 * size:])
  return u * h + (1 - u) * c


def _affine(v, scope, x):
  return x.dot(v[scope + "/Matrix"]) + v[scope + "/Bias"]


def _readout(hrnn, v, name):
  """(weights, bias) of a readout, with the original's constants."""
  h0 = hrnn.level_sizes[0]
  if name == "scl":
    if hrnn.learnable_decay:
      return v["scl_decay_weights"], v["scl_decay_bias"]
    return np.zeros((h0, 1)), np.log(0.93 / 0.07)
  if name == "inp":
    if (hrnn.learnable_decay and hrnn.num_gradient_scales > 1 and
        hrnn.learnable_inp_decay):
      return v["inp_decay_weights"], v["inp_decay_bias"]
    return np.zeros((h0, 1)), np.log(0.89 / 0.11)
  if hrnn.dynamic_output_scale:
    return v["learning_rate_weights"], v["learning_rate_bias"]
  return np.zeros((h0, 1)), 0.


def _normalised(hrnn, direction):
  if hrnn.dynamic_output_scale:
    return direction / np.sqrt(np.mean(direction ** 2) + 1e-16)
  return direction


def step(hrnn, v, grads, states, global_h):
  """One step of every tensor.

  Args:
    hrnn: the HierarchicalRNN (settings only).
    v: `meta_values`.
    grads: per tensor, the gradient (any shape).
    states: per tensor, the state dict ([n, c] entries, "true_param" shaped
      like the parameters, "layer" [1, H1] with two or more levels).
    global_h: [1, H2] or None.

  Returns:
    (new states, new global state, attended positions or None). The new
    true parameters are new_states[t]["true_param"].
  """
  s = hrnn.num_gradient_scales
  layers_out, new_states, attended = [], [], []
  if hrnn.use_relative_lr and hrnn.use_problem_lr_mean:
    problem_mean = (sum(st["log_learning_rate"].sum() for st in states) /
                    sum(st["log_learning_rate"].size for st in states))
  for grad, st in zip(grads, states):
    g = np.reshape(grad, (-1, 1)).astype(np.float64)
    inp = [st["inp_decay"] ** (0.5 ** i) for i in range(s)]
    scl = [st["scl_decay"] ** (0.5 ** i if hrnn.use_multiple_scale_decays
                               else 1.) for i in range(s)]
    accums, mss, zs = [], [], []
    for i in range(s):
      old = st["grad_accum%d" % (i + 1)]
      a = g if s == 1 else (1 - inp[i]) * g + inp[i] * old
      old_ms = st["ms%d" % (i + 1)]
      d = 0. if np.all(old_ms == 0) else scl[i]
      ms = (1 - d) * (a ** 2 + 1e-12) + d * old_ms
      accums.append(a)
      mss.append(ms)
      zs.append(np.arcsinh(a / np.sqrt(ms + 1e-16)))
    feats = list(zs)
    if s > 1 and hrnn.use_grad_products:
      feats += [zs[i] * zs[i + 1] for i in range(s - 1)]
    if hrnn.use_log_means_squared:
      log_ms = [np.log(m + 1e-16) for m in mss]
      feats += [m - sum(log_ms) / s for m in log_ms]
    lr = st.get("log_learning_rate")
    if hrnn.use_relative_lr:
      feats.append(lr - (problem_mean if hrnn.use_problem_lr_mean
                         else lr.mean()))
    if hrnn.use_extreme_indicator:
      feats.append(np.maximum(lr, 0) - np.maximum(np.log(1e-6) - lr, 0))
    if hrnn.use_lr_shortcut:
      feats.append(lr - np.log(1e-3))
    x = np.concatenate(feats, 1)
    z = np.concatenate(zs, 1)

    bias0 = np.zeros((1, 3 * hrnn.level_sizes[0]))
    if hrnn.num_layers >= 2:
      bias0 = bias0 + _affine(v, "PerTensor/Layer0_RNN/Param/Affine",
                              st["layer"])
    if hrnn.num_layers == 3:
      bias0 = bias0 + _affine(v, "PerTensor/Layer0_RNN/Global/Affine",
                              global_h)
    h0 = _gru(v, "PerTensor/Layer0_RNN/", x, st["parameter"], bias0)
    new = {"parameter": h0}
    if hrnn.num_layers >= 2:
      summary = (np.concatenate([h0, x], 1) if x.shape[1] > s else h0)
      summary = summary.mean(0, keepdims=True)
      bias1 = np.zeros((1, 3 * hrnn.level_sizes[1]))
      if hrnn.num_layers == 3:
        bias1 = bias1 + _affine(v, "PerTensor/Layer1_RNN/Affine", global_h)
      new["layer"] = _gru(v, "PerTensor/Layer1_RNN/", summary, st["layer"],
                          bias1)
      layers_out.append(new["layer"])

    direction = h0.dot(v["update_weights"])
    if hrnn.use_gradient_shortcut:
      direction = direction + z.dot(v["PerTensor/GradsToDelta/Matrix"])
    direction = _normalised(hrnn, direction)
    weights, bias = _readout(hrnn, v, "scl")
    new["scl_decay"] = sigmoid(h0.dot(weights) + bias)
    weights, bias = _readout(hrnn, v, "inp")
    new["inp_decay"] = sigmoid(h0.dot(weights) + bias)
    weights, bias = _readout(hrnn, v, "lr")
    if hrnn.dynamic_output_scale:
      lr_step = np.clip(lr + h0.dot(weights) + bias, _MIN_LOG_LR,
                        hrnn.max_log_lr)
      momentum = sigmoid(v["PerTensor/learning_rate_momentum_logit"])
      new["log_learning_rate"] = momentum * lr + (1 - momentum) * lr_step
      step_size = np.exp(lr_step + v["PerTensor/param_stepsize_offset"])
      attend_size = np.exp(lr_step)
    else:
      step_size = attend_size = 2 * sigmoid(h0.dot(weights) + bias)
    true = st["true_param"]
    new["true_param"] = true - np.reshape(step_size * direction, true.shape)
    if hrnn.use_attention:
      attend = h0.dot(v["attention_weights"])
      if hrnn.use_gradient_shortcut:
        attend = attend + z.dot(v["PerTensor/GradsToAttnDelta/Matrix"])
      attended.append(true - np.reshape(
          attend_size * _normalised(hrnn, attend), true.shape))
    for i in range(s):
      new["grad_accum%d" % (i + 1)] = accums[i]
      new["ms%d" % (i + 1)] = mss[i]
    new_states.append(new)

  new_global = None
  if hrnn.num_layers == 3:
    summary = (np.mean(np.concatenate(layers_out, 0), 0, keepdims=True)
               if hrnn.global_rnn_sees_all_tensors else layers_out[-1])
    new_global = _gru(v, "Layer2_RNN/", summary, global_h,
                      np.zeros((1, 3 * hrnn.level_sizes[2])))
  return new_states, new_global, attended if hrnn.use_attention else None
