"""The base of every response model."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ApiModel(BaseModel):
    """A response body: fields a newer server adds are kept, not refused."""

    model_config = ConfigDict(extra="allow", frozen=True)
