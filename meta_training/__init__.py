"""Meta-training of learned optimizers (the loop behind `metaopt`)."""
