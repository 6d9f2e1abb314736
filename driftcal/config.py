"""Settings of the streaming daemon: one validated model from YAML, environment and keyword overrides.

Priority, highest first: keyword overrides > ``DRIFTCAL_*`` environment variables (nested with ``__``,
e.g. ``DRIFTCAL_UPDATE__STEPS=20``) > the YAML file > defaults.  Nested sections merge key by key, and
unknown keys are errors everywhere.  :func:`load_settings` turns every validation failure into a
:class:`ConfigError` with one readable line per problem.

>>> s = Settings(detector={"model": "plane-shift", "shape": [3]})
>>> s.detector.shape, s.update.steps, s.kafka.input_topic
([3], 25, 'driftcal.events')
"""

from __future__ import annotations

import contextvars
import json
import os
import socket
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticUndefined
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from driftcal.config_security import KafkaSecuritySettings, secrets_in_file
from driftcal.errors import DriftcalError

_STRICT = ConfigDict(extra="forbid")
# Parsed YAML mapping of the load_settings call in progress (None outside of one).
_YAML_DATA: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("_YAML_DATA", default=None)


class ConfigError(DriftcalError):
    """The configuration is unusable; ``problems`` holds one readable line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__(
            f"invalid configuration: {len(self.problems)} problem(s): " + "; ".join(self.problems)
        )


class DetectorSettings(BaseModel):
    """The detector being calibrated and its readout."""

    model_config = _STRICT
    name: str = Field("calo", description="Detector name, written into every coefficient document.")
    module: str = Field("0", description="Module identifier within the detector.")
    model: Literal["cell-gain", "plane-shift"] = Field(
        "cell-gain", description="Per-cell gains or plane shifts."
    )
    shape: list[int] = Field(
        ..., min_length=1, description="cell-gain: cells [L, H, W] (any rank); plane-shift: [P >= 3]."
    )
    noise: float | None = Field(None, ge=0, description="Electronic noise sigma per cell, MeV (unset: none).")
    threshold: float | None = Field(
        None, ge=0, description="Zero-suppression threshold per cell, MeV (unset: none)."
    )

    @field_validator("shape")
    @classmethod
    def _check_shape(cls, shape: list[int], info: ValidationInfo) -> list[int]:
        if any(n <= 0 for n in shape):
            raise ValueError(f"every dimension must be > 0 (got {shape})")
        if info.data.get("model") == "plane-shift" and (len(shape) != 1 or shape[0] < 3):
            raise ValueError(f"plane-shift needs [P] with P >= 3 planes (got {shape})")
        return shape


class KafkaSettings(BaseModel):
    """Kafka connection and topics."""

    model_config = _STRICT
    bootstrap: str = Field("localhost:9092", description="Bootstrap servers, comma-separated host:port.")
    client_id: str = Field("driftcal", description="Kafka client id.")
    group_id: str = Field("driftcal", description="Consumer group of the event consumer.")
    group_instance_id: str | None = Field(
        None,
        description="Static group membership (KIP-345): a restarted instance with the same id gets its "
        "partitions back at once instead of after session_timeout_ms. One per instance.",
    )
    input_topic: str = Field("driftcal.events", description="Topic of incoming event batches.")
    reference_topic: str = Field(
        "driftcal.reference", description="Topic of reference events (source=topic)."
    )
    output_topic: str = Field("driftcal.coefficients", description="Topic the coefficient documents go to.")
    dlq_topic: str = Field("driftcal.dlq", description="Dead-letter topic for unusable batches.")
    max_poll_records: int = Field(100, gt=0, description="Most records returned by one poll.")
    request_timeout_ms: int = Field(30000, gt=0, description="Kafka request timeout, ms.")
    session_timeout_ms: int = Field(30000, gt=0, description="Consumer group session timeout, ms.")
    transactions: bool = Field(
        False,
        description="Publish coefficient documents and commit consumed offsets in one Kafka transaction "
        "(exactly-once publication; consumers read with isolation_level=read_committed).",
    )
    transactional_id: str | None = Field(
        None, description="Static transactional id (unset: driftcal-<detector>-<module>); one per module."
    )
    security: KafkaSecuritySettings = Field(
        default_factory=KafkaSecuritySettings, description="TLS and SASL (secrets from env or files only)."
    )


class ReferenceSettings(BaseModel):
    """Where the reference (well-calibrated) events come from, and the reservoir that keeps them."""

    model_config = _STRICT
    source: Literal["topic", "files", "first-events"] = Field(
        "first-events",
        description="topic: read reference_topic; files: load the listed files; "
        "first-events: take the first events of the input stream.",
    )
    files: list[Path] = Field(
        default_factory=list,
        validate_default=True,
        description="Reference event files (source=files: required, must exist; relative to the cwd).",
    )
    first_events: int = Field(
        20000,
        gt=0,
        description="Events taken as reference (source=first-events); for source=topic the minimum "
        "before the reference counts as filled.",
    )
    max_events: int = Field(50000, gt=0, description="Reservoir bound, events.")
    max_bytes: int = Field(1 << 30, gt=0, description="Reservoir bound, bytes.")

    @field_validator("files")
    @classmethod
    def _check_files(cls, files: list[Path], info: ValidationInfo) -> list[Path]:
        if info.data.get("source") != "files":
            return files
        if not files:
            raise ValueError("at least one file is required when source is 'files'")
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise ValueError("file(s) not found: " + ", ".join(repr(m) for m in missing))
        return files

    @model_validator(mode="after")
    def _check_bounds(self) -> ReferenceSettings:
        if self.first_events > self.max_events:
            raise ValueError(f"first_events ({self.first_events}) must be <= max_events ({self.max_events})")
        return self


class WindowSettings(BaseModel):
    """The window of recent events the updates fit to."""

    model_config = _STRICT
    max_events: int = Field(20000, gt=0, description="Window bound, events (oldest are dropped).")
    max_bytes: int = Field(512 << 20, gt=0, description="Window bound, bytes.")
    min_events: int = Field(2000, gt=0, description="Events needed before the first update (<= max_events).")

    @model_validator(mode="after")
    def _check_bounds(self) -> WindowSettings:
        if self.min_events > self.max_events:
            raise ValueError(f"min_events ({self.min_events}) must be <= max_events ({self.max_events})")
        return self


class UpdateSettings(BaseModel):
    """When and how the warm-started adversarial updates run."""

    model_config = _STRICT
    every_events: int = Field(2000, gt=0, description="Run an update after this many new events...")
    every_seconds: float = Field(30.0, gt=0, description="...or after this many seconds, whichever first.")
    steps: int = Field(25, gt=0, description="Optimisation steps of a warm-started update.")
    initial_steps: int = Field(300, ge=0, description="Steps of the first update (cold start).")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Torch device; auto: cuda if present.")
    bf16: bool = Field(False, description="Run the critic in bfloat16 autocast (cuda only).")
    seed: int = Field(0, description="Random seed of the critic and sampling.")
    critic: Literal["auto", "conv", "mlp"] = Field(
        "auto", description="Critic architecture; auto: conv for (L, H, W) cells, MLP otherwise."
    )
    lr_theta: float | None = Field(
        None, gt=0, description="Initial learning rate of the coefficients (unset: the model's default)."
    )
    tracking_lr: float | None = Field(
        None, gt=0, description="Learning rate of the coefficients after the first update (unset: 1e-3)."
    )


class PublishSettings(BaseModel):
    """When coefficient documents are published."""

    model_config = _STRICT
    min_change: float = Field(
        0.005, ge=0, description="Publish when max |Δcoefficient| since the last publish exceeds this."
    )
    heartbeat_seconds: float = Field(60.0, gt=0, description="Publish at least this often, seconds.")


class AlarmSettings(BaseModel):
    """Drift alarm: the distance to the reference compared to its noise floor."""

    model_config = _STRICT
    k: float = Field(3.0, gt=0, description="Alarm when the distance exceeds k times the noise floor.")
    floor_steps: int = Field(
        200, gt=0, description="Critic steps on two disjoint reference halves (the floor)."
    )


def in_container() -> bool:
    """Whether this process runs in a container (Docker, Podman or a Kubernetes pod)."""
    markers = (Path("/.dockerenv"), Path("/run/.containerenv"))
    return any(m.exists() for m in markers) or "KUBERNETES_SERVICE_HOST" in os.environ


def default_bind_host() -> str:
    """Loopback outside containers; all interfaces inside one, where the port is published explicitly."""
    return "0.0.0.0" if in_container() else "127.0.0.1"


class MetricsSettings(BaseModel):
    """Prometheus metrics endpoint."""

    model_config = _STRICT
    enabled: bool = Field(True, description="Serve Prometheus metrics.")
    host: str = Field(
        default_factory=default_bind_host,
        description="Address the metrics server binds to (default: 127.0.0.1; 0.0.0.0 inside a container).",
    )
    port: int = Field(9108, ge=0, le=65535, description="Port of the metrics server (0: any free port).")


class CheckpointSettings(BaseModel):
    """Where and how often the daemon saves its state (θ, critic, optimizers, window, sequence)."""

    model_config = _STRICT
    path: Path | None = Field(None, description="Checkpoint file (unset: no checkpoints).")
    every_seconds: float = Field(60.0, gt=0, description="Save at least this often while updating, seconds.")


class _YamlDataSource(InitSettingsSource):
    """The YAML mapping parsed by :func:`load_settings`, as a settings source."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls, dict(_YAML_DATA.get() or {}))

    def __repr__(self) -> str:
        return "_YamlDataSource()"


class Settings(BaseSettings):
    """All settings of the daemon."""

    model_config = SettingsConfigDict(env_prefix="DRIFTCAL_", env_nested_delimiter="__", extra="forbid")

    detector: DetectorSettings = Field(..., description="Detector and calibration model.")
    kafka: KafkaSettings = Field(default_factory=KafkaSettings, description="Kafka connection and topics.")
    reference: ReferenceSettings = Field(default_factory=ReferenceSettings, description="Reference events.")
    window: WindowSettings = Field(default_factory=WindowSettings, description="Window of recent events.")
    update: UpdateSettings = Field(default_factory=UpdateSettings, description="Update schedule and fit.")
    publish: PublishSettings = Field(default_factory=PublishSettings, description="Publishing policy.")
    alarm: AlarmSettings = Field(default_factory=AlarmSettings, description="Drift alarm.")
    metrics: MetricsSettings = Field(default_factory=MetricsSettings, description="Prometheus metrics.")
    checkpoint: CheckpointSettings = Field(
        default_factory=CheckpointSettings, description="State checkpoints for restarts."
    )
    queue_max_batches: int = Field(
        64, gt=0, description="Ingest queue bound, batches; partitions pause when full."
    )
    shutdown_timeout_seconds: float = Field(30.0, gt=0, description="Longest graceful shutdown, seconds.")
    instance: str = Field(
        default_factory=socket.gethostname, description="Instance name (default: host name)."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    log_json: bool = Field(False, description="Log one JSON object per line instead of text.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword overrides, then environment, then the YAML file (no dotenv, no secrets dir)."""
        return init_settings, env_settings, _YamlDataSource(settings_cls)


def _read_yaml(path: Path) -> dict[str, Any]:
    """Parse the YAML file at ``path`` into a mapping, or raise ConfigError saying what is wrong."""
    where = f"config file {str(path)!r}"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{where}: not found"]) from None
    except IsADirectoryError:
        raise ConfigError([f"{where}: is a directory"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{where}: cannot be read ({type(exc).__name__}: {exc})"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None)
        raise ConfigError([f"{where}: not valid YAML{line}" + (f": {problem}" if problem else "")]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError([f"{where}: top level must be a mapping, got {type(data).__name__}"])
    return data


def _problem_lines(exc: ValidationError) -> list[str]:
    """One line per validation error: dotted location, message and the bad input (repr, <= 60 chars)."""
    lines = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(part) for part in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        # custom checks (value_error) say what is wrong themselves; a mapping input is a whole section
        if err["type"] not in ("missing", "value_error") and not isinstance(err.get("input"), dict):
            got = repr(err.get("input"))
            msg += f" (got {got if len(got) <= 60 else got[:57] + '...'})"
        lines.append(f"{loc}: {msg}".replace("\n", " "))
    return lines


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Build :class:`Settings` from the YAML file at ``path`` (optional), ``DRIFTCAL_*`` and ``overrides``.

    Raises :class:`ConfigError` listing every problem, one line each.
    """
    data = _read_yaml(Path(path)) if path is not None else {}
    if problems := secrets_in_file(data, str(path)):
        raise ConfigError(problems)
    token = _YAML_DATA.set(data)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_problem_lines(exc)) from None
    except SettingsError as exc:  # a DRIFTCAL_* list or mapping value that is not JSON
        raise ConfigError([f"environment: {exc} (list and mapping values must be JSON)"]) from None
    finally:
        _YAML_DATA.reset(token)


def _type_name(tp: Any) -> str:
    """A short readable name of a type annotation: ``list[int]``, ``float | None``, ``"a" | "b"``."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(json.dumps(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        return f"{origin.__name__}[{', '.join(_type_name(a) for a in typing.get_args(tp))}]"
    if tp is type(None):
        return "None"
    return getattr(tp, "__name__", str(tp))


def _default_text(info: Any) -> str:
    """The default of a field as an operator would write it in YAML."""
    if info.default_factory is socket.gethostname:
        return "<host name>"
    if info.default_factory is default_bind_host:
        return '"127.0.0.1" (in a container: "0.0.0.0")'
    if info.default_factory is not None:
        value = info.default_factory()
        return "" if isinstance(value, BaseModel) else json.dumps(value)
    if info.default is PydanticUndefined:
        return "required"
    return json.dumps(info.default)


def settings_reference() -> list[tuple[str, str, str, str]]:
    """``(dotted name, type, default, description)`` of every field, sections before their fields.

    A section row (e.g. ``kafka``) has the section's model name as type and an empty default
    (``required`` for ``detector``); its fields follow as ``kafka.bootstrap``, ...
    """
    rows: list[tuple[str, str, str, str]] = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, info in model.model_fields.items():
            tp = info.annotation
            rows.append((prefix + name, _type_name(tp), _default_text(info), info.description or ""))
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                walk(tp, f"{prefix}{name}.")

    walk(Settings, "")
    return rows
