"""The one strict pydantic base every MedFail file schema derives from."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Unknown keys are errors (a typo never passes silently) and instances are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)
