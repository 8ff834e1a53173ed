# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""render -> compare -> check -> install -> reload, with the outcome as an ApplyResult."""

import hashlib
from typing import NamedTuple, Optional

from etcdfleet_agents.haproxy.process import ConfigInvalid, ReloadFailed, remove_file
from etcdfleet_agents.haproxy.render import TemplateError

# Results of Updater.apply
UNCHANGED = "unchanged"
RELOADED = "reloaded"
RENDER_FAILED = "render-failed"
INVALID = "invalid"
RELOAD_FAILED = "reload-failed"


def digest(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


class ApplyResult(NamedTuple):
    """What ``Updater.apply`` did.

    action   unchanged | reloaded | render-failed | invalid | reload-failed
    message  one line saying why (errors) or what (reload), empty when unchanged
    digest   short hash of the rendered text (None when it did not render)
    state_saved  whether server state was saved before the reload
    """
    action: str
    message: str = ""
    digest: Optional[str] = None
    state_saved: bool = False

    @property
    def ok(self):
        return self.action in (UNCHANGED, RELOADED)


class Updater(object):
    """Turns a template context into a running HAProxy configuration, safely.

    A failed reload is retried at the next ``apply`` even when the render is unchanged, also
    after a restart: the file is UNCHANGED only when HAProxy was last reloaded successfully with
    it (``Haproxy.applied``); otherwise ``apply`` reloads and ``reload_pending`` stays set until
    a reload succeeds.
    """

    def __init__(self, template, haproxy):
        self.template = template
        self.haproxy = haproxy
        self.reload_pending = False

    def render(self, context):
        return self.template.render(context)

    def check(self, context):
        """Render and check without installing; returns the text or raises TemplateError /
        ConfigInvalid (the candidate is removed either way)."""
        text = self.render(context)
        candidate = self.haproxy.check(text)
        remove_file(candidate)
        return text

    def apply(self, context):
        try:
            text = self.render(context)
        except TemplateError as exc:
            return ApplyResult(RENDER_FAILED, str(exc))
        text_digest = digest(text)
        if text == self.haproxy.current() and not self.reload_pending:
            if self.haproxy.applied() == text_digest:
                return ApplyResult(UNCHANGED, "", text_digest)
            self.reload_pending = True
        try:
            candidate = self.haproxy.check(text)
        except ConfigInvalid as exc:
            return ApplyResult(INVALID, "%s (rejected file: %s)" % (exc, exc.path), text_digest)
        self.haproxy.install(candidate)
        saved = False
        try:
            saved = self.haproxy.save_server_state()
        except OSError:
            saved = False
        try:
            self.haproxy.reload()
        except ReloadFailed as exc:
            self.reload_pending = True
            return ApplyResult(RELOAD_FAILED, str(exc), text_digest, saved)
        self.reload_pending = False
        self.haproxy.mark_applied(text_digest)
        return ApplyResult(RELOADED, "", text_digest, saved)
