"""The routes of ``ltrec serve``, its errors (always JSON) and :func:`serve`.

Recommendation routes run on the event loop itself: scoring is CPU work under the GIL, so a
thread hop would add latency without adding throughput, and one loop thread means the session
is read by one thread at a time. Events (an fsync) and reloads (loading a run) run in worker
threads. Lists are answered as a :class:`JSONResponse` of the dict: FastAPI's generic encoder
cost more than the list itself. Every error is
``{"error": {"type", "message", "hint", "field", "status"}}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ltrec import safejson
from ltrec.app import audit
from ltrec.app import live_experiments as expmod
from ltrec.app.auth import is_loopback
from ltrec.app.live_events import MAX_BATCH, EventError, ServerBusyError, _server_lock
from ltrec.errors import BadIdError, BadInputError, ConfigError, LtrecError, StoreBusyError
from ltrec.ids import clean_id
from ltrec.serve import keys as keymod
from ltrec.serve.keys import ApiKey, KeyRole
from ltrec.serve.service import Service
from ltrec.store.connect import connect

#: Largest request body (bytes): a full batch of events with long ids fits.
MAX_BODY = 1024 * 1024
#: Longest list the API returns.
MAX_K = 100
#: Most users in one batch request.
MAX_USERS = 100


class ApiError(Exception):
    """An error answered as JSON with this status."""

    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        *,
        hint: str | None = None,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.type, self.message = status, type_, message
        self.hint, self.field, self.headers = hint, field, headers

    def response(self) -> JSONResponse:
        body = {
            "error": {
                "type": self.type,
                "message": self.message,
                "hint": self.hint,
                "field": self.field,
                "status": self.status,
            }
        }
        return JSONResponse(body, status_code=self.status, headers=self.headers)


_RERANK_FIELD = re.compile(r"^bad re-ranking setting: ([A-Za-z_][A-Za-z0-9_.]*): ")


def _from_ltrec(err: LtrecError, field: str | None = None) -> ApiError:
    if isinstance(err, EventError):
        return ApiError(422, "BadEvent", err.message, hint=err.hint, field=err.field)
    if isinstance(err, StoreBusyError | ServerBusyError):
        return ApiError(503, type(err).__name__, err.message, hint=err.hint)
    if isinstance(err, ConfigError) and field == "rerank":
        m = _RERANK_FIELD.match(err.message)
        where = f"rerank.{m.group(1)}" if m else "rerank"
        return ApiError(422, "BadRerankSetting", err.message, hint=err.hint, field=where)
    status = 422 if isinstance(err, BadInputError) or err.exit_code == 2 else 500
    return ApiError(status, type(err).__name__, err.message, hint=err.hint, field=field)


# ----------------------------------------------------------------------------- bodies


class EventIn(BaseModel):
    """One event, as the shop writes it. ``ts``: ISO 8601 or unix time (s, ms or us by
    magnitude, as the importer reads them); missing: now."""

    model_config = ConfigDict(extra="forbid")

    user_id: str | int = Field(description="the shop's user id (text as written)")
    item_id: str | int = Field(description="an item id the served run knows")
    event_type: str = Field(
        max_length=64, description="impression, view, cart or purchase (or an import alias)"
    )
    ts: Annotated[str, Field(max_length=64)] | float | None = None
    quantity: float | None = Field(None, description="units of a purchase (a positive integer)")
    price: float | None = Field(
        None, description="unit price of a purchase (revenue = quantity x price)"
    )


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[EventIn] = Field(min_length=1, max_length=MAX_BATCH)


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_ids: list[str] = Field(min_length=1, max_length=MAX_USERS)
    k: int = Field(10, ge=1, le=MAX_K)
    rerank: dict[str, Any] | str | None = None


class ReloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_id: str | None = Field(None, max_length=200)


def _schema(model: type[BaseModel], *alts: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI request body for routes that read their body themselves (size-limited)."""
    schemas = [
        m.model_json_schema(ref_template="#/components/schemas/{model}") for m in (model, *alts)
    ]
    schema = schemas[0] if not alts else {"oneOf": schemas}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if part in ("body", "query", "path", "function-after[...]"):
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


async def _read_json(request: Request, limit: int = MAX_BODY, empty: Any = None) -> Any:
    """The body as JSON, refused past ``limit`` bytes (also when sent chunked); an empty body
    is ``empty`` when given."""
    size = request.headers.get("content-length")
    if size is not None and size.isdigit() and int(size) > limit:
        raise _too_large(int(size), limit)
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise _too_large(total, limit)
        chunks.append(chunk)
    try:
        text = b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "BadBody", "the body is not UTF-8 text") from None
    if empty is not None and not text.strip():
        return empty
    try:
        return safejson.loads(text, "the request body")
    except ConfigError as err:
        raise ApiError(400, "BadBody", err.message, hint="send a JSON object") from None


def _too_large(size: int, limit: int = MAX_BODY) -> ApiError:
    return ApiError(
        413,
        "BodyTooLarge",
        f"the body is {size:,} bytes or more; at most {limit:,} are accepted",
        hint=f"send at most {MAX_BATCH} events per request" if limit == MAX_BODY else None,
    )


def _parse(model: type[BaseModel], obj: Any) -> Any:
    try:
        return model.model_validate(obj)
    except ValidationError as err:
        first = err.errors(include_url=False)[0]
        where = _loc(tuple(first["loc"])) or None
        raise ApiError(
            422, "BadRequest", f"{where or 'body'}: {first['msg']}", field=where
        ) from None


def _check_id(value: str | int, name: str) -> str:
    """The id by the one id rule (:func:`ltrec.ids.clean_id`), else a 422 naming ``name``."""
    try:
        return clean_id(value, name)
    except BadIdError as err:
        raise ApiError(422, "BadRequest", err.message, field=name) from None


# ----------------------------------------------------------------------------- the app


class _Observe:
    """Counts and times every request by route template (plain ASGI: no per-request task)."""

    def __init__(self, app: Any, metrics: Any) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def send_status(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            path = getattr(route, "path_format", None) or "unmatched"
            self.metrics.observe(scope["method"], path, status[0], time.perf_counter() - start)


class _Exposures:
    """Group commit of served lists on the event loop: the lists that arrive while one batch is
    written and fsynced by a worker thread go out together in the next, so the loop and the
    worker trade places once per batch, not once per list (each hand-over costs a thread
    wake-up, which on a loaded machine costs more than the list). Loop thread only: no lock.
    """

    def __init__(self, service: Service) -> None:
        self.service = service
        self.lists: list[dict[str, Any]] = []
        self.waiters: list[asyncio.Future] = []
        self.task: asyncio.Task | None = None

    async def log(self, lists: list[dict[str, Any]]) -> None:
        """Return once the lists' impressions are on disk (raise if they could not be)."""
        done = asyncio.get_running_loop().create_future()
        self.lists.extend(lists)
        self.waiters.append(done)
        if self.task is None:
            self.task = asyncio.create_task(self._drain())
        await done

    async def _drain(self) -> None:
        waiters: list[asyncio.Future] = []
        try:
            while self.lists:
                lists, waiters = self.lists, self.waiters
                self.lists, self.waiters = [], []
                try:
                    n = await anyio.to_thread.run_sync(self.service.expose, lists)
                except Exception as err:  # noqa: BLE001 - each waiting request answers it
                    for w in waiters:
                        if not w.done():  # (a client that left cancelled its own)
                            w.set_exception(err)
                    continue
                self.service.metrics.exposed([o["arm"] for o in lists], n)
                for w in waiters:
                    if not w.done():
                        w.set_result(None)
        except BaseException:  # cancelled (shutdown): nothing of this batch is acknowledged
            for w in (*waiters, *self.waiters):
                if not w.done():
                    w.cancel()
            raise
        finally:
            self.task = None


def create_app(service: Service) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        # on SIGTERM / SIGINT: uvicorn re-raises the signal after the shutdown, so this (not
        # serve's finally) is where the last events reach the store
        await anyio.to_thread.run_sync(service.close)

    app = FastAPI(
        lifespan=lifespan,
        title="ltrec recommendation API",
        version="1",
        description="Recommendations with re-ranking and explanations, real-time events. "
        "Every /v1 route needs `Authorization: Bearer <key>` (`ltrec apikey create`).",
    )
    app.state.service = service

    # ---------------------------------------------------------------- errors

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, err: ApiError) -> JSONResponse:
        return err.response()

    @app.exception_handler(LtrecError)
    async def _ltrec_error(_: Request, err: LtrecError) -> JSONResponse:
        return _from_ltrec(err).response()

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0]
        where = _loc(tuple(first.get("loc", ()))) or None
        msg = f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
        return ApiError(422, "BadRequest", msg, field=where).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, err: StarletteHTTPException) -> JSONResponse:
        names = {404: "NotFound", 405: "MethodNotAllowed"}
        return ApiError(
            err.status_code,
            names.get(err.status_code, "HTTPError"),
            str(err.detail),
            headers=getattr(err, "headers", None),
        ).response()

    @app.exception_handler(Exception)
    async def _internal(_: Request, err: Exception) -> JSONResponse:
        print(f"ltrec serve: internal error: {type(err).__name__}: {err}", file=sys.stderr)
        return ApiError(500, "InternalError", f"{type(err).__name__}: {str(err)[:300]}").response()

    # ---------------------------------------------------------------- auth

    def role(needed: KeyRole):
        async def check(request: Request) -> ApiKey:  # async: no thread hop per request
            header = request.headers.get("authorization", "")
            scheme, _, key = header.partition(" ")
            if not header or scheme.lower() != "bearer" or not key.strip():
                raise ApiError(
                    401,
                    "Unauthorized",
                    "missing API key",
                    hint="send Authorization: Bearer <key> (`ltrec apikey create NAME`)",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            record = service.keys.check(key.strip())
            if record is None:
                raise ApiError(
                    401,
                    "Unauthorized",
                    "unknown or revoked API key",
                    hint="see `ltrec apikey list`",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            if not record.role.allows(needed):
                raise ApiError(
                    403,
                    "Forbidden",
                    f"API key {record.name!r} ({record.role.value}) may not do this: it needs "
                    f"the {needed.value} role",
                    hint=f"create a key with `ltrec apikey create NAME --role {needed.value}`",
                )
            return record

        return Depends(check)

    reader = role(KeyRole.READER)
    writer = role(KeyRole.WRITER)
    exposures = _Exposures(service)

    # ---------------------------------------------------------------- metrics

    app.add_middleware(_Observe, metrics=service.metrics)

    def _served(out: dict[str, Any]) -> None:
        tail = service.session.context.bucket_names[-1]
        items = out["items"]
        service.metrics.served(
            bool(out["fallback"]), len(items), sum(1 for i in items if i["bucket"] == tail)
        )

    def _one(
        session: Any, user_id: str, k: int, arm: str | None = None, exp: Any = None
    ) -> dict[str, Any]:
        out = session.recommend(user_id, k)
        out = {"run_id": out["run_id"], "user_id": user_id, **out}
        if exp is None:
            out["experiment"] = out["arm"] = out["request_id"] = None
        else:
            out["experiment"], out["arm"], out["request_id"] = exp.id, arm, service.request_id()
        _served(out)
        return out

    def _session(rerank: str | None) -> Any:
        try:
            return service.with_rerank(rerank)
        except ConfigError as err:
            raise _from_ltrec(err, "rerank") from None

    def _no_override(exp: Any, rerank: Any) -> None:
        if rerank is not None:
            raise ApiError(
                422,
                "BadRequest",
                f"this server runs experiment {exp.id}: each user's arm sets the re-ranking",
                hint="leave rerank out while arms are served",
                field="rerank",
            )

    async def _arm_lists(users: list[str], k: int) -> list[dict[str, Any]]:
        """Each user's list from the session of their arm, logged as impressions (fsynced by
        a worker thread: the loop keeps serving) before the caller answers."""
        exp = service.experiment
        out = []
        for user in users:
            arm, session = service.arm_of(user)
            out.append(_one(session, user, k, arm, exp))
        await exposures.log(out)
        return out

    # ---------------------------------------------------------------- routes

    @app.get("/health", tags=["status"])
    async def health() -> dict[str, Any]:
        """Liveness and what is served (no key needed)."""
        return service.health()

    @app.get("/metrics", tags=["status"], response_class=PlainTextResponse)
    async def metrics(_: ApiKey = reader) -> PlainTextResponse:
        """Prometheus text: requests, latency histogram, fallback share, tail share."""
        text = service.metrics.render(service.gauges())
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    @app.get("/v1/recommendations/{user_id:path}", tags=["recommendations"])
    async def recommend(
        user_id: str,
        k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
        rerank: Annotated[
            str | None,
            Query(
                description='a re-ranking setting as JSON, e.g. {"strategy": "tail_boost", '
                '"beta": 0.5} (default: the server\'s)'
            ),
        ] = None,
        _: ApiKey = reader,
    ) -> JSONResponse:
        """One user's list, re-ranked, each item with its reasons. An unknown user gets the
        fallback ranking (``fallback`` names it)."""
        user_id = _check_id(user_id, "user_id")
        exp = service.experiment
        if exp is None:
            return JSONResponse(_one(_session(rerank), user_id, k))
        _no_override(exp, rerank)
        return JSONResponse((await _arm_lists([user_id], k))[0])

    @app.post("/v1/recommendations", tags=["recommendations"], openapi_extra=_schema(BatchRequest))
    async def recommend_batch(request: Request, _: ApiKey = reader) -> JSONResponse:
        """Lists of up to 100 users in one request."""
        body = _parse(BatchRequest, await _read_json(request))
        users = [_check_id(u, f"user_ids[{pos}]") for pos, u in enumerate(body.user_ids)]
        exp = service.experiment
        if exp is not None:
            _no_override(exp, body.rerank)
            results = await _arm_lists(users, body.k)
            return JSONResponse({"run_id": service.session.run_id, "k": body.k, "results": results})
        text = (
            body.rerank
            if isinstance(body.rerank, str) or body.rerank is None
            else (json.dumps(body.rerank, sort_keys=True))
        )
        session = _session(text)
        results = [_one(session, u, body.k) for u in users]
        return JSONResponse({"run_id": session.run_id, "k": body.k, "results": results})

    @app.get("/v1/items/{item_id:path}/similar", tags=["recommendations"])
    async def similar(
        item_id: str, k: Annotated[int, Query(ge=1, le=MAX_K)] = 10, _: ApiKey = reader
    ) -> JSONResponse:
        """Items the model ranks highest after this item alone."""
        item_id = _check_id(item_id, "item_id")
        return JSONResponse(service.similar(item_id, k))

    @app.post(
        "/v1/events",
        tags=["events"],
        openapi_extra=_schema(EventIn, EventBatch),
    )
    async def events(request: Request, _: ApiKey = writer) -> dict[str, Any]:
        """One event, or ``{"events": [...]}`` (up to 1000). Validated like an import, written
        durably before the answer, and applied to the user's history at once. All or none: a
        bad event rejects the batch."""
        obj = await _read_json(request)
        if isinstance(obj, dict) and "events" in obj:
            raw = [e.model_dump() for e in _parse(EventBatch, obj).events]
            for e in raw:
                e["user_id"], e["item_id"] = str(e["user_id"]), str(e["item_id"])
        else:
            one = _parse(EventIn, obj).model_dump()
            raw = [{**one, "user_id": str(one["user_id"]), "item_id": str(one["item_id"])}]
        done = await anyio.to_thread.run_sync(service.accept, raw)
        return {
            "accepted": len(done),
            "first_seq": done[0].seq,
            "last_seq": done[-1].seq,
            "durable": True,
        }

    @app.post("/v1/admin/reload", tags=["admin"], openapi_extra=_schema(ReloadRequest))
    async def reload(request: Request, key: ApiKey = writer) -> dict[str, Any]:
        """Serve another run (``run_id``; none: the production, else the newest, run now)
        without a restart; requests in flight finish on the old run. Audited."""
        raw = await _read_json(request, 4096, empty={})
        body = _parse(ReloadRequest, raw)
        before = service.session.run_id

        def log(outcome: audit.Outcome, message: str) -> None:
            audit.append(
                f"api key {key.name}", key.role.value, "reload served run",
                f"dataset {service.dataset}", outcome, message,
                {"key_id": key.id, "run_id": body.run_id}, data_dir=service.data_dir,
            )  # fmt: skip

        try:
            out = await anyio.to_thread.run_sync(service.reload, body.run_id)
        except LtrecError as err:
            service.metrics.reloaded("error")
            await anyio.to_thread.run_sync(log, "error", err.message)
            raise
        service.metrics.reloaded("ok")
        await anyio.to_thread.run_sync(log, "ok", f"{before} -> {out['run_id']}")
        return out

    return app


# ----------------------------------------------------------------------------- serve


def serve(
    dataset: str,
    run_id: str | None = None,
    rerank: Any = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    data_dir: Path | str | None = None,
    allow_stale: bool = False,
    flush_interval: float = 5.0,
    arms: Sequence[str] = (),
    split: str | None = None,
    experiment: str | None = None,
    stop_experiment: bool = False,
) -> None:
    """Load the run, replay the live events and serve until stopped (SIGINT / SIGTERM flush
    what is left into the store).

    ``arms``: ``NAME=JSON`` policies of an A/B experiment (two to four; ``split``:
    percentages "50,50", default equal; ``experiment``: its id, default derived);
    ``stop_experiment`` alone stops the running experiment and returns without serving.
    """
    import uvicorn  # lazy: only `ltrec serve` runs a server
    from threadpoolctl import threadpool_limits  # lazy: only the server caps BLAS threads

    parsed = expmod.parse_arms(arms) if arms else None  # a bad arm: nothing starts
    if parsed is None and (split is not None or experiment is not None):
        raise BadInputError(
            "--split and --experiment need --arm",
            hint="for example --arm control='{}' --arm boost='{\"strategy\": \"tail_boost\"}'",
        )
    shares = expmod.parse_split(split, len(parsed)) if parsed else None
    if stop_experiment and parsed is None:
        connect(dataset, data_dir).close()  # an unknown dataset: its own error first
        with _server_lock(dataset, data_dir, "served by a running `ltrec serve`: stop it first"):
            done = expmod.stop(data_dir, dataset)
        print(
            f"stopped experiment {done.id} of dataset {dataset} (started {done.started_at}, "
            f"arms {', '.join(done.arms)}); its records and impressions are kept"
        )
        return

    # One BLAS thread for the whole server process: a request scores one user (a GEMV), and a
    # second BLAS thread on a loaded 2-core machine only queues behind the event loop and the
    # other processes (one ALS user measured 20 ms threaded vs 0.2 ms on one thread).
    threadpool_limits(limits=1, user_api="blas")

    if not 0.01 <= flush_interval <= 3600:
        raise BadInputError(
            f"--flush-every must be between 0.01 and 3600 seconds, got {flush_interval:g}"
        )
    if not 0 <= port <= 65535:
        raise BadInputError(f"--port must be between 0 and 65535, got {port}")
    service = Service.start(
        dataset, run_id, rerank, data_dir, allow_stale=allow_stale,
        flush_interval=flush_interval, arms=parsed, split=shares, experiment_id=experiment,
        stop_experiment=stop_experiment,
    )  # fmt: skip
    try:
        app = create_app(service)
        where = f"http://{host}:{port}"
        print(
            f"ltrec serve: dataset {dataset}, run {service.session.run_id} "
            f"({service.session.model.name}) at {where} (API docs: {where}/docs)",
            file=sys.stderr,
            flush=True,
        )
        if service.stopped is not None:
            print(
                f"ltrec serve: stopped experiment {service.stopped.id} (its data is kept)",
                file=sys.stderr,
            )
        exp = service.experiment
        if exp is not None:
            arms_text = ", ".join(f"{a} {s:.0%}" for a, s in zip(exp.arms, exp.split, strict=True))
            print(f"ltrec serve: experiment {exp.id}: {arms_text}", file=sys.stderr, flush=True)
        elif (other := expmod.running(data_dir, dataset)) is not None:
            print(
                f"ltrec serve: experiment {other.id} is running but not served (no --arm): "
                f"posted events are not attributed to it; `ltrec serve {dataset} "
                "--stop-experiment` stops it",
                file=sys.stderr,
            )
        if not any(k.active for k in keymod.load(data_dir)):
            print(
                "ltrec serve: no API key exists yet: create one with "
                "`ltrec apikey create NAME --role reader`",
                file=sys.stderr,
            )
        if not is_loopback(host):
            print(
                f"ltrec serve: listening on {host}: reachable from other machines "
                "(every /v1 route still needs a key)",
                file=sys.stderr,
            )
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            loop="uvloop",
            http="httptools",
            access_log=False,
            log_level="warning",
            timeout_graceful_shutdown=10,
        )
        uvicorn.Server(config).run()
    finally:
        service.close()
