"""Task definition and building, in data-path order: the spec schema (``spec``), where
specs are found (``registry``), data sources (``sources``) and synthetic generators
(``synth``), the split/label recipe (``recipe``), the build with its manifest and card
(``build``, ``manifest``, ``card``), validity records (``validity``), and the loaded,
verified ``Task`` (``task``)."""
