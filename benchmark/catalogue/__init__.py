"""The failure-case catalogue as records: the failure taxonomy and clinical domains
(``taxonomy``), the case schema and loader (``cases``) and the views over them
(``browse``). Publishing it as a dataset lives in :mod:`benchmark.hub.catalogue_dataset`."""
