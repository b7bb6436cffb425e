"""The stand-in's link to RabbitMQ outlives an idle spell in a long test session."""

from __future__ import annotations

import uuid

import pika
from compute_stack.broker import TASK_GROUP_PREFIX


def test_the_broker_reconnects_after_rabbitmq_drops_its_connection(compute_stack) -> None:
    broker = compute_stack.compute.broker
    # What RabbitMQ does to a blocking connection left idle past its heartbeat timeout.
    broker._publisher.close()
    group = str(uuid.uuid4())
    broker.task_group_queue(group)
    queue = TASK_GROUP_PREFIX + group
    broker.publish(queue, b"still here")
    connection = pika.BlockingConnection(pika.URLParameters(broker.url))
    try:
        channel = connection.channel()
        _method, _props, body = channel.basic_get(queue, auto_ack=True)
        channel.queue_delete(queue)
    finally:
        connection.close()
    assert body == b"still here"
