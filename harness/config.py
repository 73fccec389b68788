"""Suites: which models, tasks and metrics a run covers, as YAML validated by pydantic.

A suite is a list of groups; each group is the cross product of its models, tasks and metrics, less
the (model, task) pairs that cannot run together (a zoo model on another task). Shorthands keep the
YAML short: a model or metric may be a bare name, and a metric with parameters a one-key mapping::

    name: quick
    groups:
      - models: [zoo:fmnist-cnn, {name: "timm:resnet18", checkpoint: r18.safetensors}]
        tasks: [fashion-mnist]
        metrics: [accuracy, {calibration: {bins: 15}}]

Every error names the file, the line, the field and what is allowed there.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from harness.errors import HarnessError
from harness.registry import RegistryError, metrics, models, unknown_name_message

_STRICT = ConfigDict(extra="forbid", frozen=True)


TRUST_REMOTE_CODE = "HARNESS_TRUST_REMOTE_CODE"  # set to 1 by a user who trusts every hf: model's shipped code


class ConfigError(HarnessError, ValueError):
    """A suite file that cannot be used; the message says where and why."""


class NamedRef(BaseModel):
    """A name with options; in YAML a bare string is the name alone."""

    model_config = _STRICT
    name: str
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @field_validator("name", mode="before")
    @classmethod
    def _printable(cls, name: Any) -> Any:
        if isinstance(name, str):
            check_printable(name)
        return name


def check_printable(name: str) -> None:
    """Refuse a name holding a control or format character (a newline, an escape, a bidi override): the
    name is written into tables, Markdown, CSV and cards, where such a character changes their structure."""
    import unicodedata

    for position, char in enumerate(name):
        if unicodedata.category(char).startswith("C"):
            raise ValueError(
                f"name {name!r} holds the control character {char!r} (U+{ord(char):04X}) at position {position}; "
                "names must be printable text"
            )


class ModelRef(NamedRef):
    name: str = Field(description="source:name, e.g. zoo:fmnist-cnn or timm:resnet18")
    checkpoint: str | None = None

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        from harness.models import parse

        source, arg = parse(name)
        try:
            models.get(source)
        except RegistryError as exc:
            raise ValueError(f"{exc} Models are named source:name, e.g. zoo:fmnist-cnn or timm:resnet18") from None
        if source == "zoo":
            from harness.models.zoo import entry

            try:
                entry(arg)
            except RegistryError as exc:
                raise ValueError(str(exc)) from None
        from harness.models import canonical_name

        return canonical_name(name)

    @field_validator("checkpoint")
    @classmethod
    def _absolute(cls, checkpoint: str | None) -> str | None:
        from harness.models import absolute_if_path

        return None if checkpoint is None else absolute_if_path(checkpoint)


class TaskRef(NamedRef):
    name: str = Field(description="a task (fashion-mnist, cifar10) or source:argument (csv:loans.csv, hf:imdb)")

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        from harness.tasks import check_task

        try:
            check_task(name)
        except RegistryError as exc:
            raise ValueError(str(exc)) from None
        return name


class MetricRef(BaseModel):
    model_config = _STRICT
    name: str
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"name": value}
        if isinstance(value, dict) and len(value) == 1 and "name" not in value:
            ((name, params),) = value.items()
            return {"name": name, "params": params or {}}
        return value

    @model_validator(mode="after")
    def _valid_params(self) -> MetricRef:
        try:
            metric = metrics.get(self.name)
        except RegistryError as exc:
            raise ValueError(str(exc)) from None
        allowed = metric.Params.model_fields
        unknown = sorted(set(self.params) - set(allowed))
        if unknown:
            raise ValueError(
                f"metric {self.name!r} has no parameter {', '.join(map(repr, unknown))}; "
                f"allowed: {', '.join(allowed) or 'none'}"
            )
        try:
            full = metric.Params(**self.params).model_dump(mode="json")
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ValueError(f"metric {self.name!r}: {problems}") from None
        object.__setattr__(self, "params", full)
        return self


class Group(BaseModel):
    model_config = _STRICT
    models: list[ModelRef] = Field(min_length=1)
    tasks: list[TaskRef] = Field(min_length=1)
    metrics: list[MetricRef] = Field(min_length=1)


class Headline(BaseModel):
    """A figure a leaderboard shows for a suite (declared in its YAML, as HELM's schema does): a
    record's metric and slice (a glob: ``shift=*`` matches the one worst shift a model has) and a
    short label; its category tab is the records' own unless given. Where the glob matches several
    records of a model, ``pick`` says which it shows: the ``best`` (a choice the model's owner makes,
    such as the OOD detector) or the ``worst`` (one an adversary makes, such as the privacy attack)."""

    model_config = _STRICT
    metric: str = Field(description="a record's metric, e.g. accuracy.top1")
    slice: str = Field("overall", description="the record's slice, or a glob matching one per model")
    label: str = ""
    category: str | None = None
    pick: Literal["best", "worst"] = Field("best", description="of several records matching the glob")

    @model_validator(mode="after")
    def _defaults(self) -> Headline:
        if not self.label:
            object.__setattr__(self, "label", f"{self.metric} {self.slice}".replace(" overall", ""))
        return self


class Suite(BaseModel):
    model_config = _STRICT
    name: str
    description: str = ""
    groups: list[Group] = Field(min_length=1)
    seed: int = Field(0, ge=0, description="seeds subsets and bootstrap resampling")
    limit: int | None = Field(None, ge=1, description="evaluate a seeded subset of this many examples")
    batch_size: int = Field(256, ge=1)
    workers: int | None = Field(
        None, ge=0, description="processes that decode files in batches (default: from the CPU count; 0: none)"
    )
    resamples: int = Field(1000, ge=10, le=100_000, description="bootstrap resamples per confidence interval")
    device: str = "auto"
    country: str = Field("USA", description="ISO 3166-1 alpha-3 code of the grid whose carbon intensity applies")
    executor: Literal["local", "ray"] = Field("local", description="local: in this process; ray: Ray tasks")
    ray_address: str | None = Field(None, description="Ray cluster: auto, HOST:PORT, or none for a local instance")
    retries: int = Field(0, ge=0, le=10, description="how often a failed job is run again")
    leaderboard: list[Headline] = Field(default_factory=list, description="the figures its leaderboard shows")

    @field_validator("country")
    @classmethod
    def _known_country(cls, code: str) -> str:
        from harness.hardware.energy import check_country

        return check_country(code)

    def with_overrides(
        self,
        *,
        models: list[str] | None = None,
        tasks: list[str] | None = None,
        metrics: list[str] | None = None,
        checkpoint: str | None = None,
        model_options: dict[str, Any] | None = None,
        task_options: dict[str, Any] | None = None,
        ood_tasks: list[str] | None = None,
        **settings: Any,
    ) -> Suite:
        """A copy with the given lists replacing each group's, and the given run settings; ``ood_tasks``
        become the OOD sets of every ``ood`` metric.

        Each given name is checked on its own first, so an error names the option that carried it.
        """
        checks = [("--model", models, lambda m: ModelRef(name=m)), ("--metric", metrics, MetricRef.model_validate)]
        checks += [("--task", tasks, lambda t: TaskRef(name=t)),
                   ("--ood-task", ood_tasks, lambda t: t.startswith("corruption:") or TaskRef(name=t))]  # fmt: skip
        for flag, values, check in checks:
            for value in values or ():
                try:
                    check(value)
                except ValidationError as exc:
                    raise ConfigError(
                        f"{flag} {value}: {exc.errors()[0]['msg'].removeprefix('Value error, ')}"
                    ) from None
                except ValueError as exc:
                    raise ConfigError(f"{flag} {value}: {exc}") from None
        data = self.model_dump()
        for group in data["groups"]:
            if models:
                options = model_options or {}
                group["models"] = [{"name": m, "checkpoint": checkpoint, "options": options} for m in models]
            elif model_options:
                group["models"] = [{**m, "options": {**m["options"], **model_options}} for m in group["models"]]
            if tasks:
                group["tasks"] = [{"name": t, "options": task_options or {}} for t in tasks]
                if not metrics:  # the suite's settings for its own tasks' columns do not carry to others
                    group["metrics"] = [_without_task_params(m) for m in group["metrics"]]
            elif task_options:
                group["tasks"] = [{**t, "options": {**t["options"], **task_options}} for t in group["tasks"]]
            if metrics:
                group["metrics"] = list(metrics)
            if ood_tasks:
                group["metrics"] = [_with_sets(m, ood_tasks) for m in group["metrics"]]
        if ood_tasks and not any(_name(m) == "ood" for g in data["groups"] for m in g["metrics"]):
            raise ConfigError("--ood-task names the OOD sets of the ood metric, which this run does not measure: "
                              "add --metric ood or --suite ood")  # fmt: skip
        data.update({k: v for k, v in settings.items() if v is not None})
        try:
            return Suite.model_validate(data)
        except ValidationError as exc:
            message = _describe(exc, "", None).replace(": ", " ", 1).lstrip()
            raise ConfigError(f"invalid option: --{message.replace('_', '-')}") from None


def _name(metric: str | dict[str, Any]) -> str:
    return metric if isinstance(metric, str) else metric["name"]


def _with_sets(metric: str | dict[str, Any], sets: list[str]) -> str | dict[str, Any]:
    """The ood metric with ``sets`` as its OOD sets; any other metric as it is."""
    if _name(metric) != "ood":
        return metric
    params = {} if isinstance(metric, str) else metric.get("params", {})
    return {"name": "ood", "params": {**params, "sets": list(sets)}}


def _without_task_params(metric: dict[str, Any]) -> dict[str, Any]:
    drop = set(metrics.get(metric["name"]).task_params)
    return {"name": metric["name"], "params": {k: v for k, v in metric["params"].items() if k not in drop}}


# loading --------------------------------------------------------------------------------------------


def suites_dir() -> Path:
    return Path(str(resources.files("harness") / "configs"))


@cache
def suite_names() -> list[str]:
    return sorted(p.stem for p in suites_dir().glob("*.yaml"))


def load_suite(name_or_path: str) -> Suite:
    """A built-in suite by name (``quick``) or, for a name ending in .yaml or .yml, a suite file."""
    if Path(name_or_path).suffix in (".yaml", ".yml"):
        return load_suite_file(Path(name_or_path))
    if name_or_path not in suite_names():
        raise ConfigError(unknown_name_message("suite", name_or_path, suite_names()))
    return load_suite_file(suites_dir() / f"{name_or_path}.yaml")


def load_suite_file(path: Path) -> Suite:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"suite file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read suite file {path}: {exc}") from None
    return parse_suite(text, str(path))


def parse_suite(text: str, source: str) -> Suite:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark, context = getattr(exc, "problem_mark", None), getattr(exc, "context_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        message = f"{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}"
        if context is not None and getattr(exc, "context", None):
            message += f" ({exc.context} that starts at line {context.line + 1})"
        raise ConfigError(message) from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: a suite is a mapping with name, groups (models, tasks, metrics); got {type(data).__name__}"
        )
    try:
        suite = Suite.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source, node)) from None
    for g, group in enumerate(suite.groups):
        for m, model in enumerate(group.models):
            if "trust_remote_code" in model.options:
                line = _line(node, ["groups", g, "models", m])
                raise ConfigError(
                    f"{source}{f':{line}' if line else ''}: {model.name} sets trust_remote_code in a suite file, "
                    "which would run the code its repository ships without the person running the suite asking "
                    "for it. Review that code, then pass --trust-remote-code on the command line (or set "
                    f"{TRUST_REMOTE_CODE}=1)"
                )
    return suite


def _describe(exc: ValidationError, source: str, node: yaml.Node | None) -> str:
    lines = []
    for error in exc.errors():
        loc = [part for part in error["loc"] if not (isinstance(part, str) and part.startswith("function-"))]
        field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or "(top level)"
        line = _line(node, loc)
        where = f"{source}:{line}" if line else source
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = f"unknown field; allowed here: {_allowed(loc)}"
        elif error["type"] == "missing":
            message = "required field is missing"
        lines.append(f"{where}: {field}: {message}")
    return "\n".join(lines)


def _allowed(loc: list[Any]) -> str:
    model: type[BaseModel] = Suite
    for part in loc[:-1]:
        if isinstance(part, str) and part in model.model_fields:
            inner = {"groups": Group, "models": ModelRef, "tasks": TaskRef, "metrics": MetricRef}.get(part)
            if inner is None:
                break
            model = inner
    return ", ".join(model.model_fields)


def _line(node: yaml.Node | None, loc: list[Any]) -> int | None:
    """Line (1-based) of the deepest YAML node the error location reaches."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == part), None)
            if child is None:  # a key that should not be there: point at the key itself
                key = next((k for k, _ in node.value if k.value == part), None)
                return key.start_mark.line + 1 if key is not None else line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
        if child is None:
            return line
        node, line = child, child.start_mark.line + 1
    return line
