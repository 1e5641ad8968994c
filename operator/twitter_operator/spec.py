"""The ``TwitterSystem`` spec as typed models, and the checks the CRD schema cannot make.

The CRD's OpenAPI schema rejects most bad specs at the API server. It cannot check a
cron expression's syntax or ``minReplicas`` against ``maxReplicas``, and a spec can also
arrive by another route (an older CRD, an edited object). Such specs raise
:class:`InvalidSpecError` here. The reconciler turns it into a ``Degraded`` condition
and one Event instead of a crash or a retry loop.

Defaults here match the defaults in ``charts/twitter-system/crds/``; a chart test
compares the two.
"""

from __future__ import annotations

import enum
from typing import Any, Literal

import croniter
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class ServiceName(enum.StrEnum):
    GATEWAY = "gateway"
    ACCOUNT = "account"
    POST = "post"
    TIMELINE = "timeline"


# The services that own a database, in the order migrations visit them.
DATABASE_OWNERS = (ServiceName.ACCOUNT, ServiceName.POST, ServiceName.TIMELINE)
# The timeline database is rebuilt with `twitter-system rebuild-timelines`, so it is not backed up.
BACKED_UP_DATABASES = (ServiceName.ACCOUNT, ServiceName.POST)

SERVICE_PORTS = {
    ServiceName.GATEWAY: 8080,
    ServiceName.ACCOUNT: 8081,
    ServiceName.POST: 8082,
    ServiceName.TIMELINE: 8083,
}

DEFAULT_BACKUP_SCHEDULE = "0 */4 * * *"

# A StatefulSet name longer than 52 characters breaks its pods' controller-revision-hash
# label (at most 63 characters), and the longest one adds 18 ("-timeline-postgres").
MAX_NAME_LENGTH = 34


class InvalidSpecError(Exception):
    """The spec cannot be reconciled as written. The message names the field and the reason."""


class _Model(BaseModel):
    # Unknown fields are errors: the CRD prunes them, so one arriving here means a schema mismatch.
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class ImageSpec(_Model):
    repository: str = Field("twitter-system", min_length=1)
    tag: str = Field("0.1.0", min_length=1)
    pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field("IfNotPresent", alias="pullPolicy")

    def for_service(self, service: ServiceName) -> str:
        return self.for_component(str(service))

    def for_component(self, component: str) -> str:
        """Name the image of ``component``: a service, or ``tools`` (the CLI with PostgreSQL's client programs)."""
        return f"{self.repository}/{component}:{self.tag}"


class AutoscalingSpec(_Model):
    min_replicas: int = Field(1, ge=1, le=100, alias="minReplicas")
    max_replicas: int = Field(..., ge=1, le=100, alias="maxReplicas")
    target_cpu_utilization_percentage: int = Field(80, ge=1, le=100, alias="targetCPUUtilizationPercentage")

    @model_validator(mode="after")
    def _min_not_above_max(self) -> AutoscalingSpec:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"minReplicas {self.min_replicas} is above maxReplicas {self.max_replicas}")
        return self


Quantity = str | int | float


class ResourcesSpec(_Model):
    requests: dict[str, Quantity] = Field(default_factory=dict)
    limits: dict[str, Quantity] = Field(default_factory=dict)


class ServiceSpec(_Model):
    replicas: int = Field(1, ge=0, le=100)
    autoscaling: AutoscalingSpec | None = None
    resources: ResourcesSpec | None = None


class ServicesSpec(_Model):
    gateway: ServiceSpec = Field(default_factory=ServiceSpec)
    account: ServiceSpec = Field(default_factory=ServiceSpec)
    post: ServiceSpec = Field(default_factory=ServiceSpec)
    timeline: ServiceSpec = Field(default_factory=ServiceSpec)

    def of(self, service: ServiceName) -> ServiceSpec:
        return getattr(self, service.value)


class SecretKeyRef(_Model):
    name: str = Field(..., min_length=1)
    key: str = Field("url", min_length=1)


class ManagedPostgresSpec(_Model):
    image: str = Field("postgres:15", min_length=1)
    storage: str = Field("1Gi", min_length=1)
    storage_class_name: str | None = Field(None, alias="storageClassName")
    resources: ResourcesSpec | None = None


class DatabaseSpec(_Model):
    """Either a Secret holding the SQLAlchemy URL, or a PostgreSQL the operator runs."""

    secret_ref: SecretKeyRef | None = Field(None, alias="secretRef")
    postgres: ManagedPostgresSpec | None = None

    @model_validator(mode="after")
    def _exactly_one_source(self) -> DatabaseSpec:
        if (self.secret_ref is None) == (self.postgres is None):
            raise ValueError("set exactly one of secretRef (your own PostgreSQL) or postgres (run by the operator)")
        return self


def _managed_database() -> DatabaseSpec:
    return DatabaseSpec(postgres=ManagedPostgresSpec())


class DatabasesSpec(_Model):
    account: DatabaseSpec = Field(default_factory=_managed_database)
    post: DatabaseSpec = Field(default_factory=_managed_database)
    timeline: DatabaseSpec = Field(default_factory=_managed_database)

    def of(self, owner: ServiceName) -> DatabaseSpec:
        return getattr(self, owner.value)


class RestartOnFaultSpec(_Model):
    enabled: bool = True
    unready_seconds: int = Field(300, ge=30, le=86400, alias="unreadySeconds")
    max_replacements_per_hour: int = Field(6, ge=0, le=1000, alias="maxReplacementsPerHour")


class PersistentVolumeClaimDestination(_Model):
    claim_name: str = Field(..., min_length=1, alias="claimName")


class SecretRef(_Model):
    name: str = Field(..., min_length=1)


class S3Destination(_Model):
    """A Secret whose keys become the backup job's environment (bucket, endpoint, credentials)."""

    secret_ref: SecretRef = Field(..., alias="secretRef")


class BackupDestination(_Model):
    persistent_volume_claim: PersistentVolumeClaimDestination | None = Field(None, alias="persistentVolumeClaim")
    s3: S3Destination | None = None

    @model_validator(mode="after")
    def _exactly_one_destination(self) -> BackupDestination:
        if (self.persistent_volume_claim is None) == (self.s3 is None):
            raise ValueError("set exactly one backup destination: persistentVolumeClaim or s3")
        return self


class BackupSpec(_Model):
    schedule: str = DEFAULT_BACKUP_SCHEDULE
    keep_last: int = Field(6, ge=1, le=1000, alias="keepLast")
    suspend: bool = False
    destination: BackupDestination | None = None


class TwitterSystemSpec(_Model):
    image: ImageSpec = Field(default_factory=ImageSpec)
    services: ServicesSpec = Field(default_factory=ServicesSpec)
    databases: DatabasesSpec = Field(default_factory=DatabasesSpec)
    restart_on_fault: RestartOnFaultSpec = Field(default_factory=RestartOnFaultSpec, alias="restartOnFault")
    backup: BackupSpec = Field(default_factory=BackupSpec)


def parse_spec(raw: Any) -> TwitterSystemSpec:
    """Validate a ``TwitterSystem`` spec, including what its OpenAPI schema cannot express.

    Raises:
        InvalidSpecError: with every problem found, each prefixed by its field path.
    """
    try:
        spec = TwitterSystemSpec.model_validate(raw or {})
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or 'spec'}: {problem['msg']}"
            for problem in error.errors()
        )
        raise InvalidSpecError(problems) from error

    _check_cron(spec.backup.schedule)
    return spec


def check_name(name: str) -> None:
    """Reject a ``TwitterSystem`` name too long for the names of its children.

    Raises:
        InvalidSpecError: naming the limit.
    """
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidSpecError(
            f"metadata.name: {name!r} has {len(name)} characters; at most {MAX_NAME_LENGTH} fit its children's names"
        )


def _check_cron(schedule: str) -> None:
    # Kubernetes CronJobs take five fields; croniter also accepts six or seven, so count first.
    fields = schedule.split()
    if len(fields) != 5:
        raise InvalidSpecError(f"backup.schedule: {schedule!r} must have five cron fields, not {len(fields)}")
    try:
        croniter.croniter(schedule)
    except (croniter.CroniterError, ValueError) as error:
        raise InvalidSpecError(f"backup.schedule: {schedule!r} is not a valid cron expression: {error}") from error
