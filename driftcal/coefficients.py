"""The coefficient document: what ``driftcal fit --out`` writes and the daemon publishes.

Schema ``driftcal.coefficients/1`` (see ``docs/wire-format.md``). The document is JSON; its Kafka key
is ``detector/module``. ``coefficients`` and ``uncertainty`` are nested lists in ``shape``.

Coefficients are always the *physical* parameters, whichever direction the transform ran in:
per-cell gains ``A`` with ``changed ≈ A · reference`` for ``cell-gain``, and per-plane shifts ``Δx``
with ``changed ≈ reference + Δx`` for ``plane-shift``.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from driftcal import __version__
from driftcal.errors import InputError

SCHEMA = "driftcal.coefficients/1"

Status = Literal["converged", "tracking", "alarm"]
Model = Literal["cell-gain", "plane-shift"]


class IOV(BaseModel):
    """Interval of validity: the events and times the coefficients were fitted on."""

    model_config = ConfigDict(extra="forbid")

    first_event: int | None = None
    last_event: int | None = None
    first_time: float | None = None
    last_time: float | None = None
    run: int | None = None


class Distance(BaseModel):
    """Wasserstein-1 estimates before and after the fit (same critic, same batches)."""

    model_config = ConfigDict(extra="forbid")

    before: float | None = None
    after: float | None = None


def _shape_of(nested: Any) -> tuple[int, ...]:
    return tuple(np.asarray(nested, dtype=np.float64).shape)


class CoefficientDocument(BaseModel):
    """One published set of coefficients.

    >>> doc = CoefficientDocument.from_array(np.array([0.9, 1.0]), model="cell-gain", detector="calo")
    >>> CoefficientDocument.from_json(doc.to_json()).array().tolist()
    [0.9, 1.0]
    """

    model_config = ConfigDict(extra="forbid")

    schema_: Literal["driftcal.coefficients/1"] = Field(default=SCHEMA, alias="schema")
    detector: str = "detector"
    module: str = "0"
    model: Model
    method: str | None = None
    shape: list[int]
    coefficients: list[Any]
    uncertainty: list[Any] | None = None
    iov: IOV = Field(default_factory=IOV)
    distance: Distance = Field(default_factory=Distance)
    sequence: int = 0
    status: Status = "converged"
    published_at: str = Field(default_factory=lambda: _dt.datetime.now(_dt.UTC).isoformat())
    instance: str = ""
    software_version: str = __version__
    metrics: dict[str, float] | None = None

    @field_validator("shape")
    @classmethod
    def _positive_shape(cls, v: list[int]) -> list[int]:
        if not v or any(d <= 0 for d in v):
            raise ValueError(f"shape must be non-empty and positive, got {v}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> CoefficientDocument:
        if list(_shape_of(self.coefficients)) != self.shape:
            raise ValueError(f"coefficients have shape {_shape_of(self.coefficients)}, declared {self.shape}")
        if self.uncertainty is not None and list(_shape_of(self.uncertainty)) != self.shape:
            raise ValueError("uncertainty does not have the declared shape")
        values = np.asarray(self.coefficients, dtype=np.float64)
        if not np.all(np.isfinite(values)):
            raise ValueError("coefficients contain NaN or Inf")
        return self

    @property
    def key(self) -> str:
        """The Kafka key: ``detector/module``."""
        return f"{self.detector}/{self.module}"

    def array(self) -> np.ndarray:
        """Coefficients as a float64 array of ``shape``."""
        return np.asarray(self.coefficients, dtype=np.float64).reshape(self.shape)

    def uncertainty_array(self) -> np.ndarray | None:
        """Uncertainties as an array of ``shape``, or None."""
        if self.uncertainty is None:
            return None
        return np.asarray(self.uncertainty, dtype=np.float64).reshape(self.shape)

    @classmethod
    def from_array(
        cls,
        coefficients: np.ndarray,
        *,
        model: Model,
        uncertainty: np.ndarray | None = None,
        **fields: Any,
    ) -> CoefficientDocument:
        """Build a document from arrays (converted to nested float lists)."""
        arr = np.asarray(coefficients, dtype=np.float64)
        unc = None if uncertainty is None else np.asarray(uncertainty, dtype=np.float64).tolist()
        return cls(model=model, shape=list(arr.shape), coefficients=arr.tolist(), uncertainty=unc, **fields)

    def to_json(self, *, indent: int | None = None) -> str:
        """Serialize with the ``schema`` key, finite floats only."""
        payload = self.model_dump(by_alias=True, mode="json")
        return json.dumps(_finite(payload), indent=indent, allow_nan=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> CoefficientDocument:
        """Parse and validate; raises :class:`InputError` with a readable reason."""
        try:
            payload = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"coefficient document is not JSON: {exc}") from None
        if not isinstance(payload, dict):
            raise InputError("coefficient document must be a JSON object")
        if payload.get("schema") != SCHEMA:
            raise InputError(f"unknown coefficient schema {payload.get('schema')!r}, expected {SCHEMA!r}")
        try:
            return cls.model_validate(payload)
        except ValueError as exc:
            first = str(exc).splitlines()
            raise InputError(f"invalid coefficient document: {' '.join(first[:3])}") from None


def _finite(obj: Any) -> Any:
    """Replace non-finite floats (e.g. a distance that was never measured) by None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj
