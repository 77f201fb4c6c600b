"""The public in-process Python API: decide a send, ingest Meta's webhooks, reconcile and report costs exactly
as the HTTP API does, without Flask or a server.

    from policy_service import PolicyService, ServiceError

    svc = PolicyService()                      # the embedded SQLite file, as `policy-service serve` uses
    body = svc.decide({"send": {...}, "history": [...]})
    body["decision"], body["charge"]           # the JSON body POST /v1/decisions answers

Settings are the server's (config.load_settings): defaults, then POLICY_* environment variables, then the
overrides given here (`PolicyService(database_url=..., mask_phone_numbers=False)`). Every method returns the
JSON-shaped dict (str, int, float, bool, None, lists, dicts) the matching endpoint answers, and every decision
is logged before it is returned, as over HTTP. A request the HTTP API answers with a 4xx raises
`ServiceError` carrying the same body: `.code`, `.status`, `.message`, `.errors` ({field path: [messages]}),
`.as_dict()`. A storage fault (the database unreachable, read-only or full) raises ServiceError 503 with the HTTP
API's body and `.retry_after` (its Retry-After, seconds): nothing was stored, and the same PolicyService works
again once the database does (the broken connection is dropped); so does constructing a PolicyService while the
database is unreachable. Unreadable settings raise config.SettingsError (also a database URL naming a directory, a
file in a missing folder, another application's database or a file that is not a database:
config.DatabaseUrlRefused), a database behind this release's migrations store.SchemaBehind, a bad rule file
core.errors.RulebookError (naming the file).

The store is one database per process (peewee's proxy): a PolicyService and a Flask app in one process
share the database opened last. Methods are safe to call from several threads (SQLite keeps a connection
per thread; with PostgreSQL each call takes a pooled connection and gives it back).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import PurePath
from typing import Any

import orjson
from marshmallow import Schema, ValidationError

from ..config import Settings, load_settings
from ..contract import schemas
from ..contract.parsing import BodyRefused, Limits, batch_limits, decision_limits, parse_json, too_deep
from ..contract.pricing import ANALYTICS_LIMITS, CURRENCY_BODY, FORECAST, FORECAST_LIMITS
from ..contract.queries import (
    AT_QUERY,
    COST_QUERY,
    COUNT_QUERY,
    DECISION_QUERY,
    PAGE,
    RECONCILIATION_QUERY,
    TEMPLATES_IMPORT,
)
from ..contract.schemas import BATCH_REQUEST, EXPLAIN, REQUEST
from ..store import database
from ..store.decision_log import dumps
from . import analytics, decisions, forecast, idempotency, ingest, logged, pricing, reports, state
from .errors import ServiceError

__all__ = ["PolicyService", "ServiceError", "instance_path", "open_store"]

JsonBody = Mapping[str, Any] | bytes | str
# The Python API is a client of its own: its idempotency keys never meet an HTTP client's (service.idempotency).
IDEMPOTENCY_SCOPE = "python-api"
IDEMPOTENCY_ARGUMENT = "idempotency_key"


class PolicyService:
    """The service in this process: the policy loaded from RULES_DIR (and rate cards), the database opened
    (its schema checked, or migrated as DATABASE_AUTO_UPGRADE says), ready to decide.

    `overrides` are settings by name in any case (`database_url`, `mask_phone_numbers`, `max_batch_size`,
    `rules_dir`, ...), applied over the environment's POLICY_* variables and the defaults.
    """

    def __init__(self, **overrides: Any) -> None:
        self.settings: Settings = load_settings(overrides)
        self.config: dict[str, Any] = self.settings.flask_config()
        self.policy = decisions.load_policy(self.config)
        schemas.warm_up()  # the first call naming a waba_timezone does not read the tz database
        try:
            self.database_url = open_store(self.config)
        except database.STORAGE_FAULTS as fault:
            # The database unreachable at construction answers as any call would: 503 with Retry-After.
            raise ServiceError.unavailable(fault) from fault

    def decide(self, request: JsonBody, *, explain: bool | str | None = None,
               idempotency_key: str | None = None) -> dict[str, Any]:
        """Decide one proposed send: the body of POST /v1/decisions (`explain=True` or "full" is
        ?explain=full: every rule in force that did not apply, and why). `request` is the request as a
        JSON-shaped dict, or its JSON text.

        `idempotency_key` is the HTTP Idempotency-Key: a repeat with the same key and the same request (and
        explain) returns the first answer again (same decision_id) and logs nothing; the same key with
        another request raises ServiceError 422 naming `idempotency_key`. Raises ServiceError (400
        unreadable, 422 invalid, by field; 503 storage unavailable)."""
        raw = _body(request, decision_limits())
        proposal = _load(REQUEST, raw)
        explain_why_not = _explain(explain)  # after the body, as the HTTP API reads its arguments
        with self._unit_of_work():
            return self._once("decisions", idempotency_key, {"request": raw, "explain": explain_why_not},
                              lambda: self._decisions().decide(
                                  decisions.proposal(proposal, raw, explain_why_not=explain_why_not)).body)

    def decide_batch(self, requests: Sequence[Mapping[str, Any]] | JsonBody, *,
                     idempotency_key: str | None = None) -> dict[str, Any]:
        """Decide several sends, each evaluated and logged as `decide` would: the body of POST
        /v1/decisions/batch, {"decisions": [...]} in request order. `requests` is the list of requests, or
        the whole batch body ({"requests": [...]}, as a dict or JSON text). At most MAX_BATCH_SIZE; a bad
        request refuses the whole batch (ServiceError, paths starting requests.<index>), and nothing of it is
        logged (all or nothing: decisions.Decisions.decide_all). `idempotency_key`
        as for `decide`: the same batch again gets the first decisions, another batch a 422."""
        body = {"requests": list(requests)} if isinstance(requests, Sequence) and not isinstance(
            requests, str | bytes) else requests
        raw = _body(body, batch_limits(self.config["MAX_BATCH_SIZE"]))
        batch = _load(BATCH_REQUEST, raw)
        pipeline = self._decisions()
        with self._unit_of_work():
            return self._once("decisions/batch", idempotency_key, {"requests": raw["requests"]}, lambda: {
                "decisions": [done.body for done in pipeline.decide_all(
                    [decisions.proposal(proposal, raw["requests"][index])
                     for index, proposal in enumerate(batch["requests"])])]})

    def ingest_webhook(self, body: bytes, signature: str | None) -> dict[str, Any]:
        """Store one of Meta's webhook payloads as POST /v1/webhooks/whatsapp does, and answer its receipt.

        `body` is the payload exactly as received (bytes), `signature` its X-Hub-Signature-256 header
        ("sha256=<hex>"), checked against WHATSAPP_APP_SECRET. The payload is stored first, in one write, and
        then its events are stored before this returns (status "done", with new/known/linked/skipped
        counts) — unless WEBHOOK_PROCESSING is "off": then it stays "pending" for `policy-service webhooks
        process`. The same body again adds nothing ("duplicate": true). Raises ServiceError: 401 unsigned or
        badly signed, 400/422 not a JSON WhatsApp Business Account webhook, 413 larger than
        MAX_CONTENT_LENGTH, 503 no app secret configured or the database unavailable (nothing stored)."""
        if isinstance(body, str):
            body = body.encode()  # JSON text given as str: Meta signs the UTF-8 bytes
        if not isinstance(body, bytes | bytearray) or not (signature is None or isinstance(signature, str)):
            field, expected = (("body", "the payload as received (bytes)") if not isinstance(body, bytes | bytearray)
                               else ("signature", "the X-Hub-Signature-256 header (a string) or None"))
            raise ServiceError(422, f"invalid request: {field}: must be {expected}", {field: [f"must be {expected}"]})
        limit = int(self.config["MAX_CONTENT_LENGTH"])
        if len(body) > limit:
            raise ServiceError(413, f"the body is larger than MAX_CONTENT_LENGTH ({limit:,} bytes)",
                               {"_request": [f"at most {limit:,} bytes, got {len(body):,}"]})
        with self._unit_of_work():
            try:
                return ingest.receive(bytes(body), signature, app_secret=self.config.get("WHATSAPP_APP_SECRET"),
                                      process=self.config.get("WEBHOOK_PROCESSING") != ingest.OFF,
                                      settings=ingest.configured(self.config))
            except ingest.WebhookRefused as refused:
                # Over HTTP the signature is a header (headers.X-Hub-Signature-256); here it is the argument.
                errors = {("signature" if key == f"headers.{ingest.SIGNATURE_HEADER}" else key): value
                          for key, value in refused.errors.items()}
                raise ServiceError(refused.status, refused.message, errors) from None

    def decision(self, decision_id: str) -> dict[str, Any]:
        """A logged decision as GET /v1/decisions/<id> answers it (request masked as logged); ServiceError
        404 when there is none, 422 naming decision_id when it is not a string."""
        if not isinstance(decision_id, str):
            raise ServiceError(422, "invalid request: decision_id: must be a string",
                               {"decision_id": [f"must be a string, got {type(decision_id).__name__}"]})
        with self._unit_of_work():
            found = logged.decision(decision_id)
        if found is None:
            raise logged.missing(decision_id)
        return found

    def decisions(self, *, since: datetime | str | None = None, until: datetime | str | None = None,
                  decision: str | None = None, rule: str | None = None, policy_version: str | None = None,
                  contact: str | None = None, phone_number_id: str | None = None, page: int = 1,
                  page_size: int = 10) -> dict[str, Any]:
        """One page of the logged decisions, newest first, as GET /v1/decisions lists them with the same filters
        (`since`/`until`: ?from=/?to=, aware datetimes or RFC 3339; `decision` allow or deny; `rule` a
        determining rule id; `policy_version` V3 matches its sub-versions V3a, V3b too, V3b only itself; `contact` an
        E.164 number or a BSUID): {"decisions": [entries as `decision()` returns
        them], "pagination": the X-Pagination header's {total, total_pages, first_page, last_page, page,
        previous_page, next_page}}. `page` from 1, `page_size` 1–100. Raises ServiceError 422 naming the argument."""
        filters = _load(DECISION_QUERY, _present({
            "from": _rfc3339(since), "to": _rfc3339(until), "decision": decision, "rule": rule,
            "policy_version": policy_version, "contact": contact, "phone_number_id": phone_number_id}),
            arguments={"from": "since", "to": "until"})
        paging = _load(PAGE, {"page": page, "page_size": page_size})
        with self._unit_of_work():
            return logged.listing(logged.DecisionQuery(**filters), paging["page"], paging["page_size"])

    def count_messages(self, phone_number_id: str, categories: str | Sequence[str], since: datetime | str,
                       until: datetime | str, *, contact: str | None = None, market: str | None = None,
                       distinct_contacts: bool = False) -> dict[str, Any]:
        """Outbound messages Meta priced in the pricing `categories` (a list, or comma-separated), sent by the
        phone number in [since, until) (aware datetimes or RFC 3339), as decisions count them: the body of GET
        /v1/counts ({count, ..., source}); `distinct_contacts` counts users instead of messages."""
        query = _load(COUNT_QUERY, _present({
            "phone_number_id": phone_number_id, "from": _rfc3339(since), "to": _rfc3339(until),
            "categories": _comma_list(categories, "categories"),
            "contact": contact, "market": market, "distinct_contacts": distinct_contacts}),
            arguments={"from": "since", "to": "until"})
        with self._unit_of_work():
            return state.counted(query)

    def templates(self, waba_id: str, *, at: datetime | str | None = None) -> dict[str, Any]:
        """The WABA's template registry, each template's category and status in force `at` (default now) with
        where each came from: the body of GET /v1/wabas/<waba_id>/templates. ServiceError 404 for an id that
        cannot be a WABA's."""
        waba = state.waba(waba_id)
        when = _load(AT_QUERY, _present({"at": _rfc3339(at)})).get("at") or datetime.now(UTC)
        with self._unit_of_work():
            return state.templates_in_force(waba, when)

    def template(self, waba_id: str, name: str, language: str, *, at: datetime | str | None = None
                 ) -> dict[str, Any]:
        """One template's category and status in force `at` (default now) and every stored event: the body of
        GET /v1/wabas/<waba_id>/templates/<name>/<language>; ServiceError 404 when the registry has never
        heard of it."""
        waba = state.waba(waba_id)
        when = _load(AT_QUERY, _present({"at": _rfc3339(at)})).get("at") or datetime.now(UTC)
        for argument, value in (("name", name), ("language", language)):
            if not isinstance(value, str) or not value:
                raise ServiceError(422, f"invalid request: {argument}: must be a non-empty string",
                                   {argument: ["must be a non-empty string"]})
        with self._unit_of_work():
            found = state.template(waba, name, language, when)
        if found is None:
            raise state.missing_template(waba, name, language)
        return found

    def import_templates(self, waba_id: str, response: JsonBody) -> dict[str, Any]:
        """Import Meta's GET /<WABA_ID>/message_templates response (JSON text or the parsed dict) into the
        template registry: the body of POST /v1/wabas/<waba_id>/message_templates ({"imported": n})."""
        waba = state.waba(waba_id)
        body = _body(response, decision_limits())
        _load(TEMPLATES_IMPORT, body)
        with self._unit_of_work():
            try:
                return state.import_templates_response(waba, body)
            except ValidationError as error:
                raise ServiceError.invalid(error.messages) from None

    def billing_currency(self, waba_id: str) -> dict[str, Any]:
        """The WABA's billing currency, when and how it was set: the body of GET
        /v1/wabas/<waba_id>/billing-currency; ServiceError 404 when none was set."""
        waba = state.waba(waba_id)
        with self._unit_of_work():
            return pricing.currency(waba, self.policy.rulebook.rates)

    def reconcile(self, *, phone_number_id: str | None = None, contact: str | None = None, page: int = 1,
                  page_size: int = 100) -> dict[str, Any]:
        """Meta's pricing of each delivered message beside the predicted charge: the body of GET
        /v1/reconciliation with the same filters (contact: a wa_id, a BSUID or a Groups API group id; pages of
        `page_size`)."""
        # None is "not given" for a filter, as in decisions(); page=None is refused there as here (not page 1).
        filters = _load(RECONCILIATION_QUERY, {**_present({"phone_number_id": phone_number_id, "contact": contact}),
                                               "page": page, "page_size": page_size})
        with self._unit_of_work():
            return reports.reconcile(self.policy, **filters)

    def cost_report(self, start: date | str, end: date | str, *, group_by: str | Sequence[str] = "month,category",
                    currency: str = "USD") -> dict[str, Any]:
        """What Meta billed beside what the decisions predicted, from `start` through `end` (UTC days, both
        included; dates or YYYY-MM-DD): the body of GET /v1/costs?from=&to=&group_by=&currency=."""
        query = _load(COST_QUERY, {
            "from": start.isoformat() if isinstance(start, date) else start,
            "to": end.isoformat() if isinstance(end, date) else end,
            "group_by": _comma_list(group_by, "group_by"), "currency": currency},
            arguments={"from": "start", "to": "end"})
        with self._unit_of_work():
            return reports.cost_report(self.policy, query["start"], query["end"], group_by=query["group_by"],
                                       currency=query["currency"])

    def forecast(self, request: JsonBody) -> dict[str, Any]:
        """What lines of messages will cost: the body of POST /v1/costs/forecast for this request body."""
        body = _load(FORECAST, _body(request, FORECAST_LIMITS))
        with self._unit_of_work():
            return forecast.forecast_costs(self.policy, body)

    def import_pricing_analytics(self, response: JsonBody, waba_id: str | None = None) -> dict[str, Any]:
        """Import Meta's pricing_analytics response: the body of POST /v1/pricing-analytics?waba_id= ({waba_id, new,
        updated, unchanged, points}). `response` is the JSON text as received (read exactly: costs as decimals),
        or the parsed dict (a cost given as a Decimal keeps its exact text, a float its shortest repr)."""
        if waba_id is not None:
            waba_id = state.waba(waba_id)
        if isinstance(response, Mapping):
            try:
                response = _json_text(response)
            except (TypeError, ValueError, RecursionError) as error:
                raise _unwritable(response, ANALYTICS_LIMITS, error) from None
        elif not isinstance(response, bytes | bytearray | str):
            raise ServiceError(422, "invalid request: response: must be the JSON text (bytes or str) or a dict",
                               {"response": [f"must be the JSON text (bytes or str) or a dict, got "
                                             f"{type(response).__name__}"]})
        with self._unit_of_work():
            return analytics.import_analytics(bytes(response) if isinstance(response, bytearray) else response,
                                              waba_id)

    def set_billing_currency(self, waba_id: str, currency: str, *, source: str = "Python API") -> dict[str, Any]:
        """Set a WABA's billing currency once: the body of PUT /v1/wabas/<waba_id>/billing-currency
        (ServiceError 404 for an id that cannot be a WABA's, 409 when another currency is set). `source` is
        recorded as who set it (the HTTP API records "API", the command line "CLI")."""
        waba = state.waba(waba_id)
        _load(CURRENCY_BODY, {"currency": currency})
        with self._unit_of_work():
            return pricing.set_currency(waba, currency, str(source), self.policy.rulebook.rates)

    def close(self) -> None:
        """Close this process's connections to the database (pooled idle ones included)."""
        database.close_all()

    def _decisions(self) -> decisions.Decisions:
        return decisions.Decisions(self.policy, mask=self.config["MASK_PHONE_NUMBERS"])

    @staticmethod
    def _once(endpoint: str, key: str | None, request: Any, produce: Callable[[], dict[str, Any]]
              ) -> dict[str, Any]:
        """produce()'s body, once per idempotency key (service.idempotency, as the HTTP endpoint's)."""
        produced: list[dict[str, Any]] = []

        def answer() -> bytes:
            produced.append(produce())
            return dumps(produced[-1])

        given = idempotency.once(f"{endpoint}:{IDEMPOTENCY_SCOPE}", key, request, answer,
                                 argument=IDEMPOTENCY_ARGUMENT)
        return json.loads(given.text) if given.replayed else produced[-1]

    @contextmanager
    def _unit_of_work(self) -> Iterator[None]:
        """One call's use of the database: a storage fault becomes ServiceError 503 (the HTTP API's answer,
        the broken connection dropped so the next call reconnects); the connection is released at the end."""
        try:
            yield
        except database.STORAGE_FAULTS as fault:
            raise ServiceError.unavailable(fault) from fault
        finally:
            database.release()


def open_store(config: Mapping[str, Any]) -> str:
    """Open the database the settings name (upper-case keys; DATABASE_URL, else the embedded SQLite file in
    instance_path()) as this process's, its schema checked or migrated as DATABASE_AUTO_UPGRADE says; its URL.
    Raises store.SchemaBehind for a database behind this release's migrations."""
    url = database.configured_url(config, instance_path())
    database.open_configured(config, url)
    return url


def _explain(explain: bool | str | None) -> bool:
    """?explain as the HTTP API reads it: absent, or "full" (True is "full" too)."""
    if explain is None or explain is False:
        return False
    return _load(EXPLAIN, {"explain": "full" if explain is True else explain}).get("explain") == "full"


def _body(value: JsonBody, limits: Limits) -> Any:
    """The JSON value a caller gave, read as the HTTP API reads a body: JSON text parsed within the
    endpoint's limits; a dict written as JSON first (so its values are JSON's, and the same limits apply)."""
    try:
        text = value if isinstance(value, bytes | str) else _json_text(value)
    except (TypeError, ValueError, RecursionError) as error:
        raise _unwritable(value, limits, error) from None
    try:
        return parse_json(text, limits)
    except BodyRefused as refused:
        raise ServiceError.refused(refused) from None


def _json_text(value: Any) -> bytes | str:
    """A caller's value as JSON text (a Decimal as its exact text). orjson writes a float NaN or infinity as
    null, which would reach the schema as "may not be null"; when its text holds a null, the standard library
    writes the value again, NaN and infinities as the literals the body parser refuses by field path, as the
    HTTP API does."""
    try:
        text = orjson.dumps(value, default=_python_value)
    except orjson.JSONEncodeError:
        text = None  # an integer beyond 64 bits, or a value JSON cannot hold: the standard library says which
    if text is not None and b"null" not in text:
        return text
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=True, default=_python_value)


def _unwritable(value: Any, limits: Limits, error: Exception) -> ServiceError:
    """Why a caller's value could not be written as JSON, at its field path, worded as the HTTP API words the same
    fault in a body: nesting deeper than the limits (400), an integer longer than a number may be (422: past 4,300
    digits Python will not write it), a value JSON has no type for (422: a set, bytes, an object). A walk without
    recursion, made only after writing failed."""
    stack: list[tuple[Any, tuple[str, ...], int]] = [(value, (), 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, Mapping | list | tuple) and depth >= limits.max_depth:
            return ServiceError.refused(too_deep(limits))
        if isinstance(item, Mapping):
            for key, member in item.items():
                if not (key is None or isinstance(key, str | int | float)):
                    return _invalid_at(path, f"a key must be a string, got {type(key).__name__}")
                stack.append((member, (*path, str(key)), depth + 1))
        elif isinstance(item, list | tuple):
            stack.extend((member, (*path, str(index)), depth + 1) for index, member in enumerate(item))
        elif isinstance(item, int) and not isinstance(item, bool) and item:
            length = int(math.log10(abs(item))) + 1 + (item < 0)
            if length > limits.max_number_chars:
                return _invalid_at(path, f"must be a number of at most {limits.max_number_chars} characters, "
                                         f"got {length}")
        elif not (item is None or isinstance(item, str | int | float | Decimal)):
            return _invalid_at(path, "must be a JSON value (str, int, float, bool, None, a list or a dict), got "
                                     + type(item).__name__)
    return ServiceError(400, f"the request is not JSON: {error}", {"_request": [f"not JSON: {error}"]})


def _invalid_at(path: tuple[str, ...], message: str) -> ServiceError:
    return ServiceError.invalid({".".join(path) or "_request": [message]})


def _python_value(value: Any) -> Any:
    """A Decimal as its exact text (marketing_max_price is a decimal string); anything else orjson cannot write
    is a TypeError, reported as a 400 naming the request."""
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _comma_list(value: Any, argument: str) -> str:
    """A list argument as its query parameter gives it: a str as it is, a list or tuple of str joined by commas.
    Raises ServiceError 422 naming the argument for anything else (None, a number, an item that is no str): they
    were a bare TypeError from str.join."""
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        return ",".join(value)
    raise ServiceError(422, f"invalid request: {argument}: must be a string or a list of strings",
                       {argument: [f"must be a string or a list of strings, got {_shown_type(value)}"]})


def _shown_type(value: Any) -> str:
    if isinstance(value, list | tuple):
        return f"a {type(value).__name__} holding " + ", ".join(sorted({type(item).__name__ for item in value
                                                                         if not isinstance(item, str)}))
    return type(value).__name__


def _present(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments a caller gave (None is "not given", as an absent query parameter)."""
    return {name: value for name, value in arguments.items() if value is not None}


def _rfc3339(value: Any) -> Any:
    """A datetime as the RFC 3339 text a query parameter holds (a naive one is refused by the schema as the
    HTTP API refuses a time without an offset); anything else as given, for the schema to judge."""
    return value.isoformat() if isinstance(value, datetime) else value


def _load(schema: Schema, data: Any, *, arguments: Mapping[str, str] | None = None) -> Any:
    """Data loaded by a contract schema; its errors as ServiceError 422 by field path, a query parameter
    named as the keyword argument that gave it (`arguments`: {parameter: argument})."""
    try:
        return schema.load(data)
    except ValidationError as error:
        messages = error.messages
        if arguments and isinstance(messages, dict):
            messages = {arguments.get(key, key): value for key, value in messages.items()}
        raise ServiceError.invalid(messages) from None


def instance_path() -> str:
    """The folder of the embedded SQLite file: the Flask app's instance folder, found the way Flask finds it
    (next to the package in a checkout; <prefix>/var/policy_service-instance when installed), without Flask."""
    spec = importlib.util.find_spec("policy_service")
    package_path = os.path.dirname(os.path.dirname(spec.origin))
    prefix = os.path.abspath(sys.prefix)
    if PurePath(package_path).is_relative_to(prefix):
        return os.path.join(prefix, "var", "policy_service-instance")
    site_parent, site_folder = os.path.split(package_path)
    if site_folder.lower() == "site-packages":
        parent, folder = os.path.split(site_parent)
        if folder.lower() == "lib":
            installed = parent
        elif os.path.basename(parent).lower() == "lib":
            installed = os.path.dirname(parent)
        else:
            installed = site_parent
        return os.path.join(installed, "var", "policy_service-instance")
    return os.path.join(package_path, "instance")
