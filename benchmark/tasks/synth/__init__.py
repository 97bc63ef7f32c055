"""Seeded synthetic failure generators, the ``synthetic`` task source.

- :mod:`benchmark.tasks.synth.cxr`: chest-radiograph-like images with lesion masks, sites and
  scanners, shortcuts (burned-in markers, tubes) and counterfactual pairs;
- :mod:`benchmark.tasks.synth.pathology`: H&E-like patches with per-site stain shifts;
- :mod:`benchmark.tasks.synth.derm`: skin lesions across skin tones with ink and ruler shortcuts;
- :mod:`benchmark.tasks.synth.icu`: multichannel ICU vitals with deterioration, sensor drift,
  noise, channel dropout and sampling-rate changes.

Each module defines ``CLASSES``, a pydantic ``Params`` (a list of cohorts, one per site)
and ``generate(params, seed) -> SynthBatch`` (:mod:`benchmark.tasks.synth.base`); the same
params and seed give the same bytes.
"""
