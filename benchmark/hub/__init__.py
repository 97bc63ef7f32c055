"""Moving datasets: publish and pull through Hugging Face or any fsspec mirror
(``transport``, which is given the spec parser), and the failure-case catalogue built as a
publishable dataset (``catalogue_dataset``)."""
