"""Defend my model: PGD adversarial training, then the undefended and defended models under attack.

The code of docs/tasks/defend.md (tests/test_docs_examples.py runs it). Tiny sizes so that it runs
in under a minute; the page says what to scale up.

    python examples/docs_defend_my_model.py
"""

from __future__ import annotations

import tempfile

import keras

from robustmask.datasets import synthetic_face_masks
from robustmask.defenses import PGDAdversarialTrainer
from robustmask.evaluation import robustness_table, standard_attacks
from robustmask.zoo import facemask_cnn

x, y = synthetic_face_masks(n_per_class=60, image_size=32, seed=0)  # training faces
x_test, y_test = synthetic_face_masks(n_per_class=20, image_size=32, seed=1)  # faces it never saw

keras.utils.set_random_seed(0)
model = facemask_cnn((32, 32, 3), filters=(16, 32), dense=32)  # compiled: Adam, sparse cross-entropy
model.fit(x, y, epochs=8, batch_size=32, verbose=0)

# Madry et al.'s PGD-AT at eps 8/255 (of [0, 1] pixels). A checkpoint_dir makes the run resumable.
trainer = PGDAdversarialTrainer(eps=8 / 255, steps=3, epochs=4, eps_ramp=1, batch_size=32)
with tempfile.TemporaryDirectory() as checkpoints:
    defended, history = trainer.fit(model, (x, y), checkpoint_dir=checkpoints, verbose=0)

# Never trust one attack: FGSM, PGD and the gradient-free Square, one worst case per image.
attacks = standard_attacks(pgd_steps=5, square_queries=20)
for name, m in (("undefended", model), ("PGD-AT", defended)):
    table = robustness_table(m, (x_test, y_test), attacks, [2 / 255, 8 / 255])
    print(name)
    print(table.to_string(index=False))

print("defend-my-model example done")
