"""Baseline models and mitigations, each compared with ERM under the same seeds.

``baselines.tabular`` trains the tabular models (an MLP for ``erm``, ``reweight`` and
``mixup``; gradient boosting for ``erm``); ``baselines.methods.run`` trains, scores and
writes one leaderboard entry per model family. This package holds training code only,
never task data.
"""
