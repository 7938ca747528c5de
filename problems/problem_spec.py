"""A deferred, repeatable construction of a problem (or any other object)."""

import collections


class Spec(collections.namedtuple("Spec", "callable args kwargs")):
  """What to build and how: `callable(*args, **kwargs)`, evaluated on `build()`.

  Problem sets describe their optimizees with specs so that every meta-training
  draw builds a fresh problem inside its own graph. Nothing is cached: each
  call to `build()` constructs a new object.

  Attributes:
    callable: a class or function, usually a `problem_generator.Problem`
      subclass.
    args: positional arguments (tuple or list).
    kwargs: keyword arguments (dict).
  """

  __slots__ = ()

  def build(self):
    """Returns `callable(*args, **kwargs)`, a new object on every call."""
    return self.callable(*self.args, **self.kwargs)
