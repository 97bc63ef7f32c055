"""Statistics with no knowledge of tasks or models: the vectorised patient-cluster
bootstrap (``bootstrap``) and the metric kernels it evaluates on every replicate
(``metrics``)."""
