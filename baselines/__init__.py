"""Baseline models and mitigations (ERM, reweighting, mixup, ...).

Empty until the scorer lands (issue 4): this package holds the training code that turns
a :class:`benchmark.Task` into a model, never task data.
"""
