"""What a scored model leaves behind: the typed Report and its rows (``report``) and the
per-sample predictions file saved beside it (``predictions_file``). Torch-free."""
