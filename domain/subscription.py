"""A department's webhook subscription (API.md §11), one stream per subscription: created, failing after
its last retry (or a 410), resumed, deleted. The secret is kept sealed (`delivery.secrets`): the domain
never sees it in clear."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate

from domain.errors import Forbidden, InvalidInput, NotFound
from domain.repository import CachedApplication

EVENT_TYPES = (
    "Raised", "Accepted", "InfoRequested", "InfoSupplied", "Forwarded", "Replied", "Declined", "Withdrawn",
    "Closed", "ProofRevoked", "Overdue", "Urged",
)


class Subscription(Aggregate):
    TOPIC = "nocert:subscription"

    class Event(Aggregate.Event):
        actor: str

    class Created(Event, Aggregate.Created):
        TOPIC = "nocert:subscription:Created"
        department: str
        url: str
        types: list[str] | None
        sealed_secret: str

    class BecameFailing(Event):
        TOPIC = "nocert:subscription:BecameFailing"
        position: int  # the delivery that failed last
        status_code: int | None
        error: str

        def apply(self, subscription: Subscription) -> None:
            subscription.status = "failing"

    class Resumed(Event):
        TOPIC = "nocert:subscription:Resumed"

        def apply(self, subscription: Subscription) -> None:
            subscription.status = "active"

    class Deleted(Event):
        TOPIC = "nocert:subscription:Deleted"

        def apply(self, subscription: Subscription) -> None:
            subscription.deleted = True

    def __init__(self, department: str, url: str, types: list[str] | None, sealed_secret: str, actor: str) -> None:
        self.department = department
        self.url = url
        self.types = types
        self.sealed_secret = sealed_secret
        self.status = "active"
        self.deleted = False

    @staticmethod
    def validate_types(types: Any) -> list[str] | None:
        if types is None:
            return None
        if not isinstance(types, list) or not types or any(kind not in EVENT_TYPES for kind in types):
            raise InvalidInput(f"types must be null or a non-empty list of {list(EVENT_TYPES)}")
        return list(dict.fromkeys(types))

    def require_owner(self, department: str) -> None:
        if self.deleted or department != self.department:
            raise NotFound.of("subscription")

    def fail(self, position: int, status_code: int | None, error: str) -> None:
        if self.status != "failing" and not self.deleted:
            self.trigger_event(self.BecameFailing, actor="platform", position=position, status_code=status_code, error=error)

    def resume(self, actor: str) -> None:
        self.require_owner(actor)
        if self.status == "failing":
            self.trigger_event(self.Resumed, actor=actor)

    def delete(self, actor: str) -> None:
        self.require_owner(actor)
        self.trigger_event(self.Deleted, actor=actor)


class SubscriptionCommands(CachedApplication):
    """The subscription commands of `Platform`."""

    def subscription(self, subscription_id: UUID) -> Subscription:
        found: Subscription = self._get(subscription_id, Subscription, "subscription")
        return found

    def own_subscription(self, subscription_id: UUID, department: str) -> Subscription:
        """The department's own live subscription; 404 for another's or a deleted one."""
        subscription = self.subscription(subscription_id)
        subscription.require_owner(department)
        return subscription

    def subscribe(self, department: str, url: str, types: Any, sealed_secret: str) -> tuple[Subscription, int]:
        if not department:
            raise Forbidden("only a department subscribes")
        subscription = Subscription._create(
            Subscription.Created, id=uuid4(), department=department, url=url,
            types=Subscription.validate_types(types), sealed_secret=sealed_secret, actor=department,
        )
        return subscription, self._save(subscription)

    def unsubscribe(self, subscription_id: UUID, department: str) -> int:
        subscription = self.own_subscription(subscription_id, department)
        subscription.delete(department)
        return self._save(subscription)

    def resume_subscription(self, subscription_id: UUID, department: str) -> tuple[Subscription, int]:
        subscription = self.own_subscription(subscription_id, department)
        subscription.resume(department)
        return subscription, self._save(subscription) if subscription.pending_events else 0

    def subscription_failing(self, subscription_id: UUID, position: int, status_code: int | None, error: str) -> int:
        """The dispatcher gives up on a delivery until the department resumes (§11)."""
        subscription = self.subscription(subscription_id)
        subscription.fail(position, status_code, error)
        return self._save(subscription) if subscription.pending_events else 0
