"""Send background work once the data it needs is committed: the one way every app enqueues."""

from __future__ import annotations

import logging
from typing import Any, TypedDict

import dramatiq
from django.db import transaction

logger = logging.getLogger(__name__)


class ActorOptions(TypedDict, total=False):
    """The options an app's actors share, spread into ``dramatiq.actor(**options)`` (docs/source/guide.rst
    of Dramatiq): the queue, how often and how soon a failure retries, the time limit, which errors do not."""

    queue_name: str
    max_retries: int
    min_backoff: int  # milliseconds
    max_backoff: int  # milliseconds
    time_limit: int  # milliseconds
    throws: tuple[type[Exception], ...]


def send_now(actor_name: str, *args: Any, delay_ms: int | None = None) -> bool:
    """Send a message to the actor called ``actor_name``; False (logged) when the broker refused it.

    Actors are found by name (every app's AppConfig.ready imports its ``actors`` module), so a service
    never imports the actors that import it. A refused send loses nothing: the rows are committed
    and each workflow's resume command (`pipeline_resume`, `replicas sync`, ...) sends it again.
    """
    try:
        dramatiq.get_broker().get_actor(actor_name).send_with_options(args=args, delay=delay_ms)
    except Exception:  # the caller's rows are committed; the resume commands send the work again
        logger.exception("could not enqueue %s%s; its resume command will send it again", actor_name, args)
        return False
    return True


def send_on_commit(actor_name: str, *args: Any, delay_ms: int | None = None) -> None:
    """Send the message after the current transaction commits (at once outside a transaction)."""
    transaction.on_commit(lambda: send_now(actor_name, *args, delay_ms=delay_ms))
