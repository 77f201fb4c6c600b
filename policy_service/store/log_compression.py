"""The decision log's texts compressed: zstd (the `zstandard` package) with a raw-content dictionary made from the
rulebook in force, stored in the database so every row stays readable after the rules change.

A logged decision's texts are mostly the rulebook's own words (each trace entry repeats its rule's title,
effect, citation and confidence, and its `because` sentence follows the rule's template) and the response's fixed
shape (every fact name, every key, and mostly the same values). A dictionary holding those texts lets zstd replace
each of them by a short reference: a decision's request and response (~6–11 KB of JSON) are stored in well under
1 KB. Besides the rulebook's texts and the shapes, the caller may give sample rows (the service layer's
decisions of a few example requests, service.decisions.dictionary_samples): whole representative texts, so
most of a row is one long match, which is both smaller and faster to find.

Dictionaries are stored in `decision_log_dictionary`, one per distinct content (sha256 digest), with the
rulebook version they were made for; a row names its dictionary by id. A dictionary is never changed or
deleted while rows use it, so a row is decompressed with exactly the bytes it was compressed with, whatever the
rules or this module's code are by then.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import orjson
import peewee
import zstandard

from ..core.facts import DISPLAY_VALUES, FACT_TYPES
from .database import StoredModel, database_proxy, stored_time

if TYPE_CHECKING:
    from ..core.rulebook import Rulebook

# zstd level 3 for a decision's usual texts: measured on the 170 fixture rows (masked, request and response) with the
# rulebook dictionary and the service's sample rows, a median of ~390 bytes in ~11 µs CPU (without sample rows:
# level 3 ~920 bytes in ~19 µs, level 6 ~740 bytes in ~58 µs). Texts past LARGE bytes (a long inline history:
# 10,000 events are ~1.1 MB) take LARGE_LEVEL (the same level today; kept apart so either can be tuned alone).
LEVEL = 3
LARGE_LEVEL = 3
LARGE = 64 * 1024
# Rows written before compression hold their texts in the request/response columns and no dictionary; a row
# compressed without a dictionary (no rulebook given) names none either: DICTIONARY_NONE.
DICTIONARY_NONE = 0


class LogDictionary(StoredModel):
    """One compression dictionary of the decision log: its bytes, their sha256, and the rulebook they came from."""

    digest = peewee.CharField(max_length=64, unique=True)
    rulebook_version = peewee.CharField(max_length=40)
    created_at = peewee.DateTimeField()
    content = peewee.BlobField()

    class Meta:
        table_name = "decision_log_dictionary"


def dictionary_content(rulebook: Rulebook, samples: Sequence[bytes] = ()) -> bytes:
    """The raw-content dictionary for a rulebook: every rule's trace entry as the response renders it (rule id,
    title, effect, citation, confidence and its `because` templates), then the shapes of a request and a response
    with every fact name, then `samples` (whole rows as `frame` joins them). Deterministic: the same rulebook, code
    and samples give the same bytes. zstd references text near the end of a dictionary most cheaply, so the
    commonest (the shapes, then the sample rows) comes last."""
    parts = []
    for rule in rulebook.rules:
        entry = orjson.dumps({"rule": rule.id, "title": rule.title, "effect": rule.effect,
                              "citation": rule.citation, "confidence": rule.confidence})
        parts.append(entry[:-1] + b',"because":' + orjson.dumps(rule.because)[:-1])
        if rule.because_if_denied:
            parts.append(orjson.dumps(rule.because_if_denied)[1:-1])
    request = {"send": {"at": "", "to": "+", "type": "template", "phone_number_id": "",
                        "template": {"name": "", "language": "en_US", "category": "marketing", "status": "APPROVED"}},
               "history": [{"direction": "inbound", "at": "", "type": "text"},
                           {"direction": "outbound", "at": "", "type": "template", "status": "delivered"}],
               "history_ref": {"phone_number_id": "", "contact": ""}, "context": {}}
    defaults = {bool: False, int: 0, str: "none"}
    facts = {"seen_by_rules": {name: defaults.get(kind) for name, kind in FACT_TYPES.items()},
             "times_and_names": dict.fromkeys(DISPLAY_VALUES, "none"), "defaults_used": [], "sources": {},
             "open_periods": []}
    response = {"decision_id": "", "decision": "allow", "status": "decided", "required_message_type": "template",
                "charge": {"billable": True, "pricing_model": "PMP", "category": "marketing", "type": "regular",
                           "opens_conversation": False, "conversation_expires_at": None, "rule": "",
                           "participants": None, "price": None, "price_reason": "", "price_lines": []},
                "policy_version": "", "rulebook_version": rulebook.version, "determining_rules": [],
                "error_codes": [], "error": None, "trace": [], "why_not": [], "facts": facts,
                "history_source": {"ref": {"phone_number_id": "", "contact": ""}, "events": ["wamid."]}}
    parts += [orjson.dumps(request), orjson.dumps(response),
              b'"determining":false,"defaults":[],"note":null,"sources":{}},{"rule":"',
              b'"determining":true,"defaults":[],"note":null,"sources":{}},{"rule":"', *samples]
    return b"".join(parts)


class _Codec:
    """A dictionary ready for use: zstd contexts are not thread-safe, so each thread gets its own."""

    def __init__(self, content: bytes | None) -> None:
        self.dictionaries = {LEVEL: None, LARGE_LEVEL: None}
        if content is not None:
            for level in self.dictionaries:
                # A dictionary is prepared for one level (zstd's CDict); the same bytes serve both.
                prepared = zstandard.ZstdCompressionDict(content, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
                prepared.precompute_compress(level=level)
                self.dictionaries[level] = prepared
        self._local = threading.local()

    def compress(self, data: bytes) -> bytes:
        level = LARGE_LEVEL if len(data) > LARGE else LEVEL
        compressor = getattr(self._local, f"compressor{level}", None)
        if compressor is None:
            # No checksum or dictionary id in the frame: the row names its dictionary, and the database keeps
            # the bytes intact (4 + 4 bytes saved per row).
            compressor = zstandard.ZstdCompressor(level=level, dict_data=self.dictionaries[level],
                                                  write_checksum=False, write_dict_id=False)
            setattr(self._local, f"compressor{level}", compressor)
        return compressor.compress(data)

    def decompress(self, data: bytes) -> bytes:
        decompressor = getattr(self._local, "decompressor", None)
        if decompressor is None:
            decompressor = self._local.decompressor = zstandard.ZstdDecompressor(dict_data=self.dictionaries[LEVEL])
        return decompressor.decompress(data)


class _Known:
    """What this process knows of one database's dictionaries: id -> codec, rulebook version -> id."""

    def __init__(self) -> None:
        self.codecs: dict[int, _Codec] = {}
        self.ids: dict[str, int] = {}


# Per database object (a process may open several, as tests do), forgotten with it.
_known: weakref.WeakKeyDictionary[peewee.Database, _Known] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _here() -> _Known:
    database = database_proxy.obj
    known = _known.get(database)
    if known is None:
        with _lock:
            known = _known.setdefault(database, _Known())
    return known


def dictionary_for(rulebook: Rulebook | None, samples: Callable[[], Sequence[bytes]] | None = None) -> int:
    """The id of the stored dictionary for this rulebook, stored now if it is new (DICTIONARY_NONE without one).
    `samples`, called once per rulebook in this process, gives the sample rows for its dictionary
    (dictionary_content). Raises what the database raises when it cannot be stored (a storage fault: the
    decision is not logged)."""
    if rulebook is None:
        return DICTIONARY_NONE
    known = _here()
    found = known.ids.get(rulebook.version)
    if found is not None:
        return found
    with _lock:
        found = known.ids.get(rulebook.version)
        if found is None:
            content = dictionary_content(rulebook, samples() if samples is not None else ())
            found = _stored(content, rulebook.version)
            known.codecs.setdefault(found, _Codec(content))
            known.ids[rulebook.version] = found
    return found


def _stored(content: bytes, rulebook_version: str) -> int:
    digest = hashlib.sha256(content).hexdigest()
    row = LogDictionary.get_or_none(LogDictionary.digest == digest)
    if row is not None:
        return row.id
    try:
        with database_proxy.atomic():
            return LogDictionary.insert(digest=digest, rulebook_version=rulebook_version[:40],
                                        created_at=stored_time(datetime.now(UTC)), content=content).execute()
    except peewee.IntegrityError:
        # Another process stored the same dictionary first.
        return LogDictionary.get(LogDictionary.digest == digest).id


def _codec(dictionary: int) -> _Codec:
    known = _here()
    codec = known.codecs.get(dictionary)
    if codec is None:
        content = None
        if dictionary != DICTIONARY_NONE:
            content = bytes(LogDictionary.get_by_id(dictionary).content)
        codec = known.codecs.setdefault(dictionary, _Codec(content))
    return codec


def frame(texts: tuple[bytes, bytes]) -> bytes:
    """The request's and the response's JSON (UTF-8 bytes) as one text, as a row stores them before compression:
    joined by a NUL byte, which JSON text never holds (control characters are escaped inside strings)."""
    return texts[0] + b"\x00" + texts[1]


def compress(texts: tuple[bytes, bytes], dictionary: int) -> bytes:
    """The request's and the response's JSON (UTF-8 bytes) as one zstd frame (their `frame`), with the dictionary
    of that id (dictionary_for)."""
    return _codec(dictionary).compress(frame(texts))


def decompress(data: bytes, dictionary: int) -> tuple[str, str]:
    """The request's and the response's JSON text of a compressed row (compress's inverse)."""
    request, _, response = _codec(dictionary).decompress(bytes(data)).partition(b"\x00")
    return request.decode(), response.decode()
