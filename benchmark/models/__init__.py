"""Models: the one-method contract (``protocol``, torch-free), adapters for torch modules
and scikit-learn estimators (``adapters``), safe loading of submitted files (``loading``)
and the registered network architectures (``architectures``)."""
