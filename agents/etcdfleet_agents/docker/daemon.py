# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The base of the daemons driven by Docker's container events (the registrator, the announcer)."""

import queue
import threading
import time

from etcdfleet_agents.docker.events import STOP, DockerEventSource, docker_client, quiet_sdk_logging
from etcdfleet_agents.runtime import Daemon


class DockerEventsDaemon(Daemon):
    """A daemon with one Docker API client (made on first use, from ``--docker-url`` or DOCKER_HOST
    & co.), an event thread posting ``(kind, payload)`` items on ``self.queue``, and a ``stop``
    that wakes the daemon's loop with ``(STOP, None)``, safely from a signal handler.

    ``event_filters`` adds Docker event filters (for example ``{"container": [name]}``).
    """

    event_filters = None

    def __init__(self, args=None, environ=None, docker_factory=None):
        super(DockerEventsDaemon, self).__init__(args=args, environ=environ)
        quiet_sdk_logging()
        self._docker_factory = docker_factory or self._default_docker
        self._api = None
        self.queue = queue.Queue()
        self.events = None

    def _default_docker(self):
        return docker_client(self.environ, getattr(self.args, "docker_url", None))

    @property
    def api(self):
        if self._api is None:
            self._api = self._docker_factory()
        return self._api

    def post(self, item):
        self.queue.put(item)

    def stop(self, *_ignored):
        super(DockerEventsDaemon, self).stop()
        # from a signal handler: never block on the queue's lock in this thread
        threading.Thread(target=self.queue.put, args=((STOP, None),), daemon=True).start()

    def start_events(self):
        if self.events is None or not self.events.is_alive():
            self.events = DockerEventSource(self._docker_factory, self.post, self.stopping, self.log,
                                            filters=self.event_filters)
            self.events.start()

    def close_events(self):
        if self.events is not None:
            self.events.close()

    def next_item(self, deadlines):
        """The next ``(kind, payload)`` from the queue, or None when the earliest of ``deadlines``
        (``time.monotonic()`` values; None ones ignored) comes first, or a tick passed: the loop
        that calls this is alive as long as it keeps calling."""
        self.alive()
        now = time.monotonic()
        deadlines = [d for d in deadlines if d is not None] + [now + self.tick]
        timeout = max(0.0, min(deadlines) - now)
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            return None
