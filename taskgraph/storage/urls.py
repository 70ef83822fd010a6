"""Where the records database is: URL precedence, validation and password masking.

The URL comes from ``--storage``, else ``TASKGRAPH_STORAGE``, else the study spec's
``storage`` field, else ``sqlite:///taskgraph.db``.  Only SQLite and PostgreSQL (through
psycopg 3) are supported; ``postgresql://`` and ``postgres://`` are read as
``postgresql+psycopg://``.  Passwords never appear in messages: every message goes through
:func:`mask_url` (a URL) or :func:`mask_secrets` (a driver's message), and never in what is
stored: a spec is stored through :func:`storable_spec`.

Masking replaces *fields*, never substrings: the URL's password (``user:***@``), a
``password`` query parameter (``?password=***``) and a libpq ``password=`` keyword.  Replacing
every occurrence of the password's text instead would garble messages (a password ``p``
turned "port" into "***ort") and reveal the password to whoever reads the garbled message.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from taskgraph.errors import ConfigError, StorageURLError, option_name

__all__ = [
    "DEFAULT_STORAGE_URL",
    "STORAGE_ENV",
    "ResolvedURL",
    "delete_command",
    "last_resolved_url",
    "mask_secrets",
    "mask_url",
    "parse_storage_url",
    "resolve_storage_url",
    "resume_command",
    "sqlite_path",
    "sqlite_url_relative_to",
    "storable_spec",
    "storage_url_origin",
]

STORAGE_ENV = "TASKGRAPH_STORAGE"
DEFAULT_STORAGE_URL = "sqlite:///taskgraph.db"
#: where a resolved storage URL came from (:func:`storage_url_origin`)
StorageOrigin = Literal["option", "env", "spec", "default"]

_SUPPORTED = {"sqlite": ("sqlite", "pysqlite"), "postgresql": ("postgresql", "psycopg")}
MASK = "***"
# user:password@ inside a string SQLAlchemy could not parse (or would misread).  The password
# runs to the *last* '@' of the URL: an unencoded '@' in it ends SQLAlchemy's password early,
# and masking only up to the first '@' would show the rest of it as the host.
_PASSWORD_IN_TEXT = re.compile(r"(?P<head>://[^:/@\s]*:)(?P<password>[^\s'\"<>`]*)(?P<tail>@)")
# A password field in a query string (?password=…&) or a libpq conninfo (password=… / '…').
_PASSWORD_FIELD = re.compile(
    r"(?P<head>\bpassword\s*=\s*)(?P<password>'(?:[^'\\]|\\.)*'|[^&\s;,\"')]*)", re.IGNORECASE
)
# A URL inside a message: a scheme, ://, then everything up to a blank or a closing quote.
_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>`]+")
# Punctuation that ends a sentence rather than a URL ("... at sqlite:///x.db.").
_URL_TRAILER = ".,;:)]}"
# Stands for the masked query value while SQLAlchemy renders (it would percent-encode ***).
_SENTINEL = "TASKGRAPHMASKEDPASSWORD"


class ResolvedURL(str):
    """A storage URL as :func:`resolve_storage_url` chose it, with ``origin``: where it took it
    from (:data:`StorageOrigin`).

    It is the URL's text everywhere a string goes (SQLAlchemy, Optuna, JSON, the environment).
    The origin travels with the value rather than being looked up by its text: the same text
    may be the default in one call and given explicitly in the next.  A string operation
    (``strip``, slicing, an f-string) gives a plain ``str``, which has no origin.
    """

    origin: StorageOrigin

    def __new__(cls, url: str, *, origin: StorageOrigin) -> ResolvedURL:
        resolved = super().__new__(cls, url)
        resolved.origin = origin
        return resolved

    def __reduce__(self) -> tuple[Any, ...]:
        # str's own pickling would rebuild it from the text alone (without its origin).
        return (_rebuild_resolved_url, (str(self), self.origin))


def _rebuild_resolved_url(url: str, origin: StorageOrigin) -> ResolvedURL:
    return ResolvedURL(url, origin=origin)


def resolve_storage_url(
    option: str | None = None, *, spec_storage: str | None = None, spec_origin: str | None = None
) -> ResolvedURL:
    """Return the storage URL: ``option``, else ``$TASKGRAPH_STORAGE``, else the spec's, else the default.

    The chosen URL is checked (:func:`parse_storage_url`) and a bad one is a
    :class:`~taskgraph.errors.StorageURLError` that names where it came from (``--storage``,
    ``TASKGRAPH_STORAGE`` or the spec's ``storage`` field).  An empty ``--storage`` is refused
    rather than read as "not given"; an empty environment variable counts as unset.  The
    URL is returned as a :class:`ResolvedURL`, which carries where it came from.
    ``spec_origin`` names where the spec's value came from when not the file (``--set
    storage``).
    """
    if option is not None and not isinstance(option, str):
        hint = (
            f" (for a SQLite file: 'sqlite:///{option}')" if isinstance(option, os.PathLike) else ""
        )
        # Only the Python API can pass a non-string (the command line gives text).
        raise ConfigError(f"`storage` must be a database URL string, but got {option!r}{hint}")
    if option is not None and not option.strip():
        raise ConfigError(
            f"{option_name('storage')} is empty: give a database URL, e.g. sqlite:///taskgraph.db"
        )
    chosen, origin = DEFAULT_STORAGE_URL, "the default"
    source: StorageOrigin = "default"
    candidates: tuple[tuple[str | None, str, StorageOrigin], ...] = (
        (option, option_name("storage"), "option"),
        (os.environ.get(STORAGE_ENV), STORAGE_ENV, "env"),
        (spec_storage, spec_origin or "the spec's storage field", "spec"),
    )
    for candidate, where, kind in candidates:
        if candidate is not None and candidate.strip():
            chosen, origin, source = candidate.strip(), where, kind
            break
    try:
        parse_storage_url(chosen)
    except StorageURLError as error:
        raise StorageURLError(f"{origin}: {error}") from None
    # Remembered (masked) so that a failure raised by Optuna's storage, which does not say
    # which database it was, can be reported with it.
    _resolved.append(mask_url(chosen))
    return ResolvedURL(chosen, origin=source)


_resolved: list[str] = []


def storage_url_origin(url: str) -> StorageOrigin | None:
    """Return where :func:`resolve_storage_url` took ``url`` from: ``option`` (``--storage``,
    the ``storage`` keyword), ``env`` (``TASKGRAPH_STORAGE``), ``spec`` (its ``storage``
    field) or ``default``; ``None`` for a plain string, which it never chose."""
    return url.origin if isinstance(url, ResolvedURL) else None


def last_resolved_url() -> str | None:
    """Return the last URL :func:`resolve_storage_url` chose, masked (``None``: none yet)."""
    return _resolved[-1] if _resolved else None


def _ambiguous_userinfo(url: str) -> bool:
    """Return True when ``url`` has more than one '@' after '://' (and a host part).

    SQLAlchemy ends the password at its first '@'; whatever follows up to the next '@' would
    be read as the host (and shown unmasked).  Every '@' after '://' counts, not only those
    before the first '/': an unencoded password may hold '/', '?' or '#' as well.  A SQLite
    path (``sqlite:///a@b.db``) has no host part and is never ambiguous.
    """
    _, separator, rest = url.partition("://")
    return bool(separator) and not rest.startswith("/") and rest.count("@") > 1


def mask_url(url: str | URL) -> str:
    """Return ``url`` with its password fields replaced by ``***`` (safe for messages, logs
    and the database): the ``user:password@`` part and a ``password`` query parameter."""
    text = url if isinstance(url, str) else url.render_as_string(hide_password=False)
    if _ambiguous_userinfo(text):
        return _mask_text_fields(text)
    try:
        parsed = url if isinstance(url, URL) else make_url(url)
    except (ArgumentError, ValueError):
        return _mask_text_fields(str(url))
    secret_keys = [key for key in parsed.query if key.lower() == "password"]
    if secret_keys:
        parsed = parsed.update_query_dict({key: _SENTINEL for key in secret_keys})
    return parsed.render_as_string(hide_password=True).replace(_SENTINEL, MASK)


def resume_command(study: str | None, url: str | None) -> str:
    """Return the command that continues ``study`` (``NAME`` when unknown) in the database at
    ``url``, its password masked (``--storage`` left out when ``url`` is None, or when it came
    from ``$TASKGRAPH_STORAGE`` with a password: the variable gives it again, unmasked).

    On the command line (:func:`~taskgraph.errors.command_line_wording`) the ``taskgraph
    study resume`` command; from Python the ``taskgraph.resume_study(...)`` call.
    """
    return _study_command("resume", study or "NAME", url)


def delete_command(study: str, url: str | None) -> str:
    """Return the command that deletes ``study`` and its records in the database at ``url``,
    worded as :func:`resume_command` words its command (``taskgraph study delete`` on the
    command line, ``taskgraph.delete_study(...)`` from Python)."""
    return _study_command("delete", study, url)


def _study_command(verb: str, study: str, url: str | None) -> str:
    """Return ``taskgraph study VERB STUDY [--storage URL]`` (from Python
    ``taskgraph.VERB_study(STUDY[, storage=URL])``), the URL's password masked."""
    import shlex

    from taskgraph.errors import worded_for_command_line

    if isinstance(url, ResolvedURL) and url.origin == "env" and mask_url(url) != str(url):
        # Its password would be masked (a command that cannot be pasted): $TASKGRAPH_STORAGE,
        # which gave it, gives it again without --storage.
        url = None
    if not worded_for_command_line():
        storage = "" if url is None else f", storage={mask_url(url)!r}"
        return f"taskgraph.{verb}_study({study!r}{storage})"
    command = f"taskgraph study {verb} {shlex.quote(study)}"
    # Without --storage the command would name a study in the default database.
    return command if url is None else f"{command} --storage {shlex.quote(mask_url(url))}"


def _mask_text_fields(text: str) -> str:
    text = _PASSWORD_IN_TEXT.sub(rf"\g<head>{MASK}\g<tail>", text)
    return _PASSWORD_FIELD.sub(rf"\g<head>{MASK}", text)


def mask_secrets(text: str, url: str | URL | None = None) -> str:
    """Return ``text`` (e.g. a driver's error message) with every password field masked.

    URLs inside it are rendered by :func:`mask_url`; ``password=`` fields (query strings,
    libpq conninfo) become ``password=***``.  When ``url`` is given, a verbatim copy of it in
    the text (as rendered with its password) is replaced by the masked URL as a whole.
    """
    if url is not None:
        parsed = url if isinstance(url, URL) else _try_parse(url)
        if parsed is not None and (parsed.password or _has_query_password(parsed)):
            text = text.replace(parsed.render_as_string(hide_password=False), mask_url(parsed))
    text = _URL_IN_TEXT.sub(_mask_match, text)
    return _mask_text_fields(text)


def _mask_match(match: re.Match[str]) -> str:
    found = match.group(0)
    url = found.rstrip(_URL_TRAILER)
    return mask_url(url) + found[len(url) :]


def _try_parse(url: str) -> URL | None:
    try:
        return make_url(url)
    except (ArgumentError, ValueError):
        return None


def _has_query_password(url: URL) -> bool:
    return any(key.lower() == "password" for key in url.query)


def storable_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of a spec (as JSON data) that is safe to store: its ``storage`` URL masked.

    The spec is stored in the database (the Optuna study's ``taskgraph:spec`` attribute and
    ``tg_studies.spec``), which optuna-dashboard serves to anyone who can reach it; the
    password never goes there.  Resuming needs no password from the stored spec: the
    database is reached with the URL given to ``study resume``.
    """
    data = dict(spec)
    storage = data.get("storage")
    if isinstance(storage, str) and storage:
        data["storage"] = mask_url(storage)
    return data


def parse_storage_url(url: str, *, check_directory: bool = True) -> URL:
    """Return the parsed, normalised URL; raise :class:`~taskgraph.errors.StorageURLError`
    naming what is wrong.

    Checks the syntax, the dialect and driver, and for a SQLite file (not in memory, no query
    parameters) that its directory exists and that it is not a directory itself, unless
    ``check_directory`` is off (a spec checked on another machine than the one that runs
    it).  Nothing is created here.

    The text is parsed once per process (:func:`_parsed`): a study asks for the same URL for
    its records, Optuna's storage and every setup lock.  The file system is looked at on every
    call, since it may have changed in between.
    """
    parsed = _parsed(url)
    if parsed.get_backend_name() != "sqlite":
        return parsed
    path = sqlite_path(parsed)
    if path is None:
        # Optuna and the records each open their own connection: an in-memory database
        # would be two empty databases.
        raise StorageURLError(
            f"storage URL {mask_url(url)!r} is an in-memory SQLite database, which the study's "
            f"connections cannot share: {_file_url_hint(url, parsed)}"
        )
    if parsed.host or parsed.username or parsed.password or parsed.port:
        # `sqlite://demo/x.db`: SQLite has no host, and SQLAlchemy drops it: the file would be
        # x.db in the working directory, not demo/x.db.
        part = "a host part" if parsed.host else "a user or port part"
        where = "" if Path(str(parsed.database)).is_absolute() else " in the working directory"
        raise StorageURLError(
            f"storage URL {mask_url(url)!r} has {part}, which SQLite ignores (the file would be "
            f"{parsed.database!r}{where}): {_file_url_hint(url, parsed)}"
        )
    if parsed.query:
        raise StorageURLError(
            f"storage URL {mask_url(url)!r} has query parameters "
            f"({', '.join(sorted(parsed.query))}), which taskgraph's SQLite connections do not "
            "take: give the file alone"
        )
    if check_directory and not path.parent.is_dir():
        raise StorageURLError(
            f"storage URL {mask_url(url)!r}: directory {str(path.parent)!r} does not exist"
        )
    if check_directory and path.is_dir():
        # SQLite would only say "unable to open database file".
        raise StorageURLError(
            f"storage URL {mask_url(url)!r}: {str(path)!r} is a directory, not a database file"
        )
    return parsed


def _file_url_hint(url: str, parsed: URL) -> str:
    """Return how to name a file instead of the in-memory SQLite database ``url``."""
    scheme, _, rest = url.partition("://")
    rest = rest.partition("?")[0]  # query parameters are refused on their own
    # `sqlite://demo.db`: the name went into the host part, and SQLite opens no file for a
    # host; a third slash makes it the path.  A user, password or port is no file name, nor
    # is a host before an absolute path (`sqlite://demo//tmp/x.db`).
    absolute = Path(str(parsed.database or "")).is_absolute()
    if parsed.host and not (parsed.username or parsed.password or parsed.port or absolute):
        return f"did you mean {f'{scheme}:///{rest}'!r} (three slashes)?"
    return "use a file, e.g. 'sqlite:///taskgraph.db'"


@functools.lru_cache(maxsize=32)
def _parsed(url: str) -> URL:
    """Return ``url`` parsed, its dialect and driver checked and normalised (text only).

    Cached: the answer depends on the text alone, and a :class:`URL` is immutable.  A
    refused URL raises each time (``lru_cache`` keeps no exceptions).  The URL is masked only
    for a message: masking parses it too.
    """
    if _ambiguous_userinfo(url):
        raise StorageURLError(
            f"storage URL {mask_url(url)!r} has more than one '@' after '://': percent-encode "
            "every '@' but the one before the host (e.g. in the password) as '%40'"
        )
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as error:
        raise StorageURLError(
            f"storage URL {mask_url(url)!r} is malformed: expected e.g. 'sqlite:///taskgraph.db' "
            f"or 'postgresql+psycopg://user:password@host:5432/dbname' ({error})"
        ) from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "postgres":  # Heroku-style alias
        backend = "postgresql"
    if backend not in _SUPPORTED:
        raise StorageURLError(
            f"storage URL {mask_url(url)!r} has unsupported database {backend!r}: "
            f"expected one of {sorted(_SUPPORTED)} (e.g. 'sqlite:///taskgraph.db')"
        )
    allowed = _SUPPORTED[backend]
    if driver and driver not in allowed:
        raise StorageURLError(
            f"storage URL {mask_url(url)!r} uses driver {driver!r}: taskgraph supports "
            f"'{backend}+{allowed[1]}'"
        )
    if backend == "sqlite":
        return parsed.set(drivername="sqlite")
    parsed = parsed.set(drivername="postgresql+psycopg")
    if not parsed.database:
        raise StorageURLError(f"storage URL {mask_url(url)!r} names no database (…/dbname)")
    return parsed


def sqlite_path(url: URL) -> Path | None:
    """Return the file of a SQLite URL, or ``None`` for an in-memory database."""
    database = url.database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    return Path(database).expanduser().resolve()


def sqlite_url_relative_to(url: str, base: Path) -> str:
    """Return ``url`` with a relative SQLite file made absolute against the folder ``base``.

    Any other URL is returned as given: another database, a SQLite URL with a user, host or
    port part, an in-memory database, an absolute, ``~`` or ``file:`` path, or text SQLAlchemy
    cannot parse.  The rest of the URL (driver, query) is kept as written.
    """
    text = url.strip()
    parsed = _try_parse(text)
    if parsed is None or parsed.get_backend_name() != "sqlite":
        return url
    head = f"{parsed.drivername}:///"
    if not text.startswith(head):
        return url  # a user, host or port part: not a plain file
    # SQLAlchemy's split: the file runs to the first '?'.  It stays as written (percent
    # escapes and all), so the URL reads back as the same file.
    database, mark, query = text[len(head) :].partition("?")
    if not database or database.startswith(("/", "~", ":memory:", "file:")):
        return url
    return f"{head}{(base / database).resolve()}{mark}{query}"
