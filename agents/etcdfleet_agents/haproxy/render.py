# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""HAProxy configuration text: the Jinja2 template, its filters and the context it is rendered with."""

import re

try:
    import jinja2
    HAS_JINJA2 = True
    JINJA2_IMPORT_ERROR = None
except ImportError as _exc:  # pragma: no cover - depends on the host
    jinja2 = None
    HAS_JINJA2 = False
    JINJA2_IMPORT_ERROR = _exc

_IDENT_BAD = re.compile(r"[^A-Za-z0-9_.:-]")
_LINE_BREAKING = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\u2028\u2029\x85]")


class HaproxyError(Exception):
    """Base of the errors of this module; ``str()`` is a one-line message."""


class TemplateError(HaproxyError):
    """The template is missing, unreadable, not valid Jinja2, or failed while rendering."""


def haproxy_quote(value):
    """Quote one word for an HAProxy configuration line.

    Single quotes keep everything literal; a value containing a single quote is written in double
    quotes with ``\\``, ``"`` and ``$`` escaped. Newlines cannot be written and raise ValueError.
    """
    text = str(value)
    if "\n" in text or "\r" in text or "\x00" in text:
        raise ValueError("a value written into the HAProxy configuration must be one line: %r" % text)
    if "'" not in text:
        return "'%s'" % text
    return '"%s"' % text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")


def haproxy_ident(text):
    """``text`` as an HAProxy proxy or server name: characters other than letters, digits and
    ``_.:-`` become ``_``."""
    result = _IDENT_BAD.sub("_", str(text))
    return result or "_"


def one_line(value):
    """Every ``{{ expression }}`` of a template goes through this: a value can never end the line
    it is written on (control characters and line breaks become ``?``)."""
    if isinstance(value, str):
        return _LINE_BREAKING.sub("?", value)
    return value


class Template(object):
    """A Jinja2 template file rendered with strict undefined variables."""

    def __init__(self, path):
        self.path = path

    def source(self):
        try:
            with open(self.path, encoding="utf-8") as handle:
                return handle.read()
        except OSError as exc:
            raise TemplateError("cannot read the template %s: %s" % (self.path, exc.strerror or exc))
        except UnicodeDecodeError as exc:
            raise TemplateError("template %s is not UTF-8 text: %s" % (self.path, exc))

    def render(self, context):
        if not HAS_JINJA2:
            raise TemplateError("the Python library jinja2 (Debian: python3-jinja2) is required: %s"
                                % JINJA2_IMPORT_ERROR)
        source = self.source()
        env = jinja2.Environment(undefined=jinja2.StrictUndefined, trim_blocks=True,
                                 lstrip_blocks=True, keep_trailing_newline=True, autoescape=False,
                                 finalize=one_line)
        env.filters["haproxy_quote"] = haproxy_quote
        env.filters["haproxy_ident"] = haproxy_ident
        try:
            template = env.from_string(source)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError("template %s line %s: %s" % (self.path, exc.lineno, exc.message))
        try:
            text = template.render(**context)
        except jinja2.TemplateError as exc:
            raise TemplateError("template %s failed to render: %s" % (self.path, exc))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise TemplateError("template %s failed to render: %s: %s" % (self.path, type(exc).__name__, exc))
        if not text.endswith("\n"):
            text += "\n"
        return text


def _bind_for(address, port):
    return "%s:%d" % (address, port)


def server_name(instance):
    """Server name in HAProxy: the instance id and its address, so that a key whose address
    changes becomes a new server (the saved state of the old one must not move to it)."""
    backend = instance.backend
    return haproxy_ident("%s_%s_%d" % (instance.id, backend.host, backend.port))


def build_context(settings, catalog, exposures):
    """The template's variables (documented in docs/docker_discover.md)."""
    services = []
    for exposure in exposures:
        servers = []
        for instance in catalog.instances.get(exposure.name, ()):
            host, port = instance.backend
            servers.append({
                "name": server_name(instance),
                "id": instance.id,
                "host": host,
                "port": port,
                "address": ("[%s]:%d" % (host, port)) if ":" in host else ("%s:%d" % (host, port)),
            })
        ident = haproxy_ident(exposure.name)
        services.append({
            "name": exposure.name,
            "port": exposure.port,
            "mode": exposure.mode,
            "balance": exposure.balance,
            "source": exposure.source,
            "bind": _bind_for(settings["bind_address"], exposure.port),
            "frontend": "fe_%s_%d" % (ident, exposure.port),
            "backend": "be_%s_%d" % (ident, exposure.port),
            "servers": servers,
        })
    return {
        "prefix": settings["prefix"],
        "services": services,
        "catalog": catalog.as_dict(),
        "stats": dict(settings["stats"]),
        "haproxy": dict(settings["haproxy"]),
        "check": dict(settings["check"]),
        "timeouts": dict(settings["timeouts"]),
        "retries": settings["retries"],
        "vars": dict(settings["vars"]),
    }
