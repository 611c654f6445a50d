"""The delivery jobs: one per channel queue, all running `delivery.deliver`."""

from __future__ import annotations

from herald.notifications.delivery import deliver
from herald.notifications.unit_of_work import deliver_job_name
from herald.queue import job
from herald.vocabulary import CHANNELS

for _channel in CHANNELS:
    job(queue=_channel, name=deliver_job_name(_channel), log_args=("notification_id", "attempt"))(
        deliver
    )
