"""The seed papers' training experiments on real data (issue 4), one module per experiment.

* :mod:`.rank_truncation` (exp 1): MNIST [784, 1000, 10], accuracy of rank-k truncation of layer 1 vs k,
  the BEMA-predicted rank marked (papers.md 1.4).
* :mod:`.fc_table` (exp 2): Fashion-MNIST FC nets, none / MP / L1+L2 / MP+L1+L2 and the magnitude and
  fixed-rank baselines at MP's parameter budget, several seeds (papers.md 2.4a).
* :mod:`.fashion_cnn` (exp 3): the Fashion-MNIST CNN with MP pruning of conv and FC layers (papers.md 1.3).
* :mod:`.magnitude_after_mp` (exp 4): accuracy vs non-zero parameters after magnitude-thresholding the
  nets trained by exp 2.
* :mod:`.fc_scale` gathers exp 2 run at several hidden widths (``fc_table --width W``) into the scale study
  of paper 2's FC table (not a training run itself, so not in ``EXPERIMENTS``).

Every setting of every experiment against the seed code, with its source: ``PROVENANCE.md`` here.

Each runs as ``python -m simulations.experiments.NAME`` or ``rmt experiment NAME`` with
``[--quick] [--paper] [--seeds K] [--out DIR] [--resume]``, writes ``results/NAME/`` (CSV, JSON sidecar
with the command, seeds, scale and versions, PNG) and keeps per-run checkpoints under
``results/NAME/checkpoints/`` (not in git).
"""

EXPERIMENTS = ("rank_truncation", "fc_table", "fashion_cnn", "magnitude_after_mp")

__all__ = ["EXPERIMENTS"]
