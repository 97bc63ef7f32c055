"""Tasks derived from other tasks and models (the published adversarial transfer set).
They sit above the layers they use and register as sources through the
``medfail.sources`` entry points, so ``benchmark.tasks`` never imports upward."""
