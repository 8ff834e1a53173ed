# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Docker's API client and container event stream, shared by the registrator and the announcer.

``DockerEventSource`` is a thread that follows the engine's container events and posts
``(RESYNC, reason)`` after every (re)connection, ``(UNREACHABLE, reason)`` once when Docker goes
away and ``(CONTAINER, (id, action, name))`` per event on the daemon's queue; ``STOP`` is the item a daemon posts to itself to end its loop.
"""

import logging
import os
import threading

try:
    import docker
    from docker.errors import NotFound as DockerNotFound
    HAS_DOCKER = True
    DOCKER_IMPORT_ERROR = None
except ImportError as _exc:  # pragma: no cover - exercised on hosts without python3-docker
    docker = None
    DockerNotFound = LookupError
    HAS_DOCKER = False
    DOCKER_IMPORT_ERROR = _exc

from etcdfleet_agents.runtime import Backoff, close_quietly, error_text

EVENT_ACTIONS = ("start", "restart", "die", "stop", "kill", "destroy", "rename", "health_status",
                 "pause", "unpause")
# Queue items: (kind, payload)
STOP = "stop"
RESYNC = "resync"
UNREACHABLE = "unreachable"
CONTAINER = "container"


def short_container_id(container_id):
    """The 12-character form of a container id, as ``docker ps`` shows it."""
    return container_id[:12]


def docker_client(environ=None, url=None):
    """A low-level Docker API client from DOCKER_HOST & co. in ``environ`` (or ``url``)."""
    if not HAS_DOCKER:
        raise RuntimeError("the Python Docker SDK is required (python3-docker): %s" % DOCKER_IMPORT_ERROR)
    kwargs = docker.utils.kwargs_from_env(environment=os.environ if environ is None else environ)
    if url:
        kwargs["base_url"] = url
    return docker.APIClient(version="auto", timeout=30, **kwargs)


def inspect_or_none(api, container):
    """The container's inspect document, or None when it does not exist (any more)."""
    try:
        return api.inspect_container(container)
    except DockerNotFound:
        return None


class DockerEventSource(threading.Thread):
    """Follows Docker's container events and posts them on a queue; reconnects with backoff.

    Posts ``(RESYNC, reason)`` after every (re)connection (the stream is open first, so nothing
    that happens during the resync is lost), ``(UNREACHABLE, reason)`` once per outage and ``(CONTAINER, (id, action, name))`` per event.
    ``filters`` adds Docker event filters (for example ``{"container": [name]}``).
    """

    def __init__(self, connect, post, stopping, log, filters=None):
        super(DockerEventSource, self).__init__(name="docker-events", daemon=True)
        self.connect = connect
        self.post = post
        self.stopping = stopping
        self.log = log
        self.filters = {"type": "container", "event": list(EVENT_ACTIONS)}
        self.filters.update(filters or {})
        self._stream = None
        self._lock = threading.Lock()

    def close(self):
        with self._lock:
            stream = self._stream
            self._stream = None
        if stream is not None:
            close_quietly(stream)

    def run(self):
        backoff = Backoff()
        connected_before = False
        failing = False
        while not self.stopping.is_set():
            client = None
            try:
                client = self.connect()
                client.ping()
                stream = client.events(decode=True, filters=self.filters)
                with self._lock:
                    self._stream = stream
                if self.stopping.is_set():
                    break
                self.log.info("%s Docker events at %s", "reconnected to" if connected_before else "following",
                              client.base_url)
                self.post((RESYNC, "Docker reconnected" if connected_before else "start"))
                connected_before = True
                failing = False
                backoff.reset()
                for event in stream:
                    self._dispatch(event)
                    if self.stopping.is_set():
                        break
                if not self.stopping.is_set():
                    self.log.warning("Docker event stream ended; reconnecting")
            except Exception as exc:  # pylint: disable=broad-except
                if self.stopping.is_set():
                    break
                delay = backoff.next_delay()
                if not failing:
                    self.log.warning("Docker unreachable: %s: %s; retrying with backoff",
                                     type(exc).__name__, error_text(exc))
                    self.post((UNREACHABLE, "%s: %s" % (type(exc).__name__, error_text(exc))))
                failing = True
                self.stopping.wait(delay)
            finally:
                self.close()
                if client is not None:
                    close_quietly(client)

    def _dispatch(self, event):
        if not isinstance(event, dict) or event.get("Type", "container") != "container":
            return
        actor = event.get("Actor") or {}
        cid = actor.get("ID") or event.get("id")
        action = (event.get("Action") or event.get("status") or "").strip()
        if not cid or not action:
            return
        name = (actor.get("Attributes") or {}).get("name") or short_container_id(cid)
        self.post((CONTAINER, (cid, action, name)))


def quiet_sdk_logging():
    """The Docker SDK's HTTP requests are not actions of a daemon: log them from WARNING up."""
    logging.getLogger("urllib3").setLevel(logging.WARNING)
