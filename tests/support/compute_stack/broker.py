"""The web-service stand-in's side of RabbitMQ: the queues it hands out and what it moves.

What travels, and where the installed code defines it:

* **Registration answer** (globus_compute_endpoint/cli.py:804-858 sends it,
  endpoint/core_endpoint.py:240-256 reads it): ``command_queue_info``
  (``connection_url``, ``queue``) and ``heartbeat_queue_info`` (``connection_url``,
  ``queue``, ``exchange``, ``queue_publish_kwargs``).
* **Start command** to a core endpoint's command queue (core_endpoint.py:619-700): a JSON
  body ``{"command": "cmd_start_endpoint", "globus_effective_identity",
  "globus_identity_set", "globus_username", "args", "kwargs"}`` with
  ``content_type="application/json"`` and a ``timestamp`` within 3 minutes of now;
  ``kwargs`` holds ``name``, ``user_opts`` (the SDK's ``user_endpoint_config``),
  ``user_runtime`` and ``amqp_creds`` = ``{"endpoint_id", "task_queue_info",
  "result_queue_info", "heartbeat_queue_info"}`` (core_endpoint.py:975-1000,
  endpoint/endpoint.py:522-528).
* **Task** on a user endpoint's task queue (interchange.py:418-440): the body is a
  messagepack ``Task(task_id, task_buffer)``, headers ``function_uuid``, ``task_uuid``,
  ``resource_specification`` (JSON text) and ``result_serializers``; ``task_buffer`` is
  ``pack_buffers([function, args, kwargs])`` as ``engines/helper.py:98-106`` unpacks it.
* **Result** from the endpoint (interchange.py:376-397, a messagepack ``Result`` published
  with ``result_queue_info["queue_publish_kwargs"]``), forwarded unchanged to the task
  group's queue ``queue_prefix + task_group_id`` that the SDK's result watcher consumes
  (globus_compute_sdk/sdk/executor.py:1706-1716 and 1792-1796).
* **Heartbeat** (``EPStatusReport``; interchange.py:497-515, core_endpoint.py:489-511):
  ``global_state["heartbeat_period"]`` (0 when shutting down) or ``global_state["error"]``
  when a user endpoint failed to start (endpoint/utils/__init__.py:235-270).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["EXCHANGE", "Broker"]

#: The direct exchange every stand-in queue is bound to.
EXCHANGE = "compute"
RESULTS, HEARTBEATS = "results", "heartbeats"
TASK_GROUP_PREFIX = "taskgroup."


class Broker:
    """Queues on the stack's RabbitMQ, and the thread that takes results and heartbeats.

    Parameters
    ----------
    url : str
        ``amqp://`` URL of the web-service account.
    on_result, on_heartbeat : callable
        Called (in the consuming thread) with each message body from the endpoints.
    """

    def __init__(self, url: str, *, on_result: Callable[[bytes], None],
                 on_heartbeat: Callable[[bytes], None]) -> None:
        import pika

        self.url = url
        self._pika = pika
        self._lock = threading.Lock()
        self._connect()
        for name in (RESULTS, HEARTBEATS):
            self._on_channel(lambda channel, name=name: self._declare(channel, name))
        self._handlers = {RESULTS: on_result, HEARTBEATS: on_heartbeat}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._consume, name="compute-standin-ingest",
                                        daemon=True)
        self._thread.start()

    def _connect(self) -> None:
        self._publisher = self._pika.BlockingConnection(self._pika.URLParameters(self.url))
        self._channel = self._publisher.channel()
        self._channel.exchange_declare(EXCHANGE, exchange_type="direct", durable=True)

    def _on_channel(self, operation: Callable[[Any], Any]) -> Any:
        """Run ``operation(channel)``, reconnecting once if the broker dropped the connection.

        The publishing connection sits idle between tests; a blocking connection answers no
        heartbeats while idle, so RabbitMQ closes it after its heartbeat timeout.
        """
        dropped = (self._pika.exceptions.AMQPConnectionError,
                   self._pika.exceptions.ChannelWrongStateError)
        with self._lock:
            try:
                return operation(self._channel)
            except dropped:
                self._connect()
                return operation(self._channel)

    @staticmethod
    def _declare(channel: Any, queue: str) -> None:
        channel.queue_declare(queue, durable=True)
        channel.queue_bind(queue, EXCHANGE, routing_key=queue)

    def queue_info(self, queue: str, *, publish: bool = False) -> dict[str, Any]:
        """``*_queue_info`` for ``queue`` (with ``queue_publish_kwargs`` to publish to it)."""
        info: dict[str, Any] = {"connection_url": self.url, "exchange": EXCHANGE,
                                "queue": queue}
        if publish:
            info["queue_publish_kwargs"] = {
                "exchange": EXCHANGE, "routing_key": queue, "mandatory": True,
                "properties": {"delivery_mode": 2, "content_type": "application/octet-stream"}}
        return info

    def endpoint_queues(self, endpoint_id: str) -> dict[str, Any]:
        """Declare an endpoint's task and command queues; the ``amqp_creds`` it gets."""
        for prefix in ("tasks.", "commands."):
            self._on_channel(lambda channel, q=prefix + endpoint_id: self._declare(channel, q))
        return {"endpoint_id": endpoint_id,
                "task_queue_info": self.queue_info("tasks." + endpoint_id),
                "result_queue_info": self.queue_info(RESULTS, publish=True),
                "heartbeat_queue_info": self.queue_info(HEARTBEATS, publish=True),
                "command_queue_info": self.queue_info("commands." + endpoint_id)}

    def task_group_queue(self, task_group_id: str) -> None:
        """Declare the queue the SDK's result watcher reads for ``task_group_id``."""
        self._on_channel(lambda channel: channel.queue_declare(TASK_GROUP_PREFIX + task_group_id,
                                                              durable=True))

    def publish(self, queue: str, body: bytes, *, headers: dict[str, Any] | None = None,
                content_type: str = "application/octet-stream") -> None:
        """Publish ``body`` to ``queue`` (through the default exchange: by queue name)."""
        props = self._pika.BasicProperties(content_type=content_type, delivery_mode=2,
                                           headers=headers, timestamp=int(time.time()))
        self._on_channel(lambda channel: channel.basic_publish("", queue, body, properties=props))

    def purge(self, queue: str) -> None:
        """Drop every message waiting in ``queue``."""
        self._on_channel(lambda channel: channel.queue_purge(queue))

    def _consume(self) -> None:
        connection = self._pika.BlockingConnection(self._pika.URLParameters(self.url))
        channel = connection.channel()
        for queue, handler in self._handlers.items():
            def deliver(ch: Any, method: Any, _props: Any, body: bytes,
                        handler: Callable[[bytes], None] = handler) -> None:
                try:
                    handler(body)
                finally:
                    ch.basic_ack(method.delivery_tag)
            channel.basic_consume(queue, deliver)
        while not self._stop.is_set():
            connection.process_data_events(time_limit=0.2)
        connection.close()

    def close(self) -> None:
        """Stop consuming and close both connections."""
        self._stop.set()
        self._thread.join(10)
        with self._lock:
            if self._publisher.is_open:
                # the broker may have dropped it already (idle past its heartbeat timeout)
                with contextlib.suppress(self._pika.exceptions.AMQPConnectionError):
                    self._publisher.close()
