"""Seals the stored webhook signing secrets at start-up (a resource).

The key-encryption key is a secret setting, never in the database, so no SQL migration
can seal: this step, run after the migrations and before deliveries start, seals the
secrets left plain from before sealing existed and re-seals those sealed with a KEK that
is no longer first. It refuses to start without a KEK.
"""

from __future__ import annotations

import logging

from interlock.common.resources import Lifecycle
from interlock.notification.service import NotificationService

_log = logging.getLogger(__name__)


class StoredSecretsSealing(Lifecycle):
    """Seals every stored secret with the first KEK when the service starts.

    Args:
        service: Holds the KEKs and the subscriptions.
    """

    name = "secrets"

    def __init__(self, service: NotificationService) -> None:
        self._service = service

    async def start(self) -> None:
        """Seal what is plain or sealed with an older KEK.

        Instances starting together do not conflict: each locks the rows it changes, and
        one that waited finds them sealed already.
        """
        changed = await self._service.seal_stored_secrets()
        if changed:
            _log.info("webhook secrets sealed", extra={"subscriptions": changed})

    async def stop(self) -> None:
        """Nothing to close."""

    async def check(self) -> None:
        """Always ready once started."""
