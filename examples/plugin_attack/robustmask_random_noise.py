"""A robustmask attack shipped in its own package: eps times the sign of random noise.

Carlini et al., "On Evaluating Adversarial Robustness" (2019, https://arxiv.org/abs/1902.06705)
ask that a gradient attack always beat random noise of the same size; this is that baseline.
"""

import tensorflow as tf

import robustmask


class RandomNoise(robustmask.GradientAttack):
    """Perturb every input value by +eps or -eps at random (no gradients, no model queries)."""

    needs_gradients = False

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed

    def run(self, model, x, y, eps):
        if self.seed is None:
            noise = tf.random.uniform(tf.shape(x), -1.0, 1.0)
        else:
            noise = tf.random.stateless_uniform(tf.shape(x), [self.seed, 0], -1.0, 1.0)
        return x + eps * tf.sign(noise)
