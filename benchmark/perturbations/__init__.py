"""What probes do to inputs: MedFail's PGD (``attacks``), the corruption suite
(``corruptions``) and the decision-at-threshold wrapper attacks target (``threshold``)."""
