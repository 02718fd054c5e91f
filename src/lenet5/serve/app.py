"""The web app of ``lenet5 serve``: a JSON API (FastAPI, OpenAPI at /openapi.json) and the
drawing page (plain HTML/JS/CSS from ``static/``, no build step).

    POST /api/predict   an image file (multipart field ``file``) or JSON ``{"pixels": 28x28}``
    POST /api/read      an image of a written number, file or JSON pixels: a reader's reading
    GET  /api/models    the checkpoints being served
    GET  /healthz       liveness

Every bad request gets a 4xx and ``{"detail": "one line"}``; anything unexpected a 500 with
the same shape. The server never dies from a request. What a request may cost is bounded
(:mod:`.limits`: body size, decodes at a time; :mod:`.protocol`: time, connections).
"""

from __future__ import annotations

import io
import logging
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from PIL import Image
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from .. import __version__
from ..data.images import decode_pixels, load_digit, mnistify, open_image
from ..errors import Lenet5Error
from .engine import Batcher, Prediction, ServedModel, load_models
from .limits import BodyLimit, Busy, DecodePool, Limits
from .reader import NumberReading, ServedReader
from .schemas import Pixel, ReadJSON, ReadResponse, read_response

log = logging.getLogger("lenet5.serve")
STATIC = Path(__file__).parent / "static"
SIDE = 28

Row = Annotated[list[Pixel], Field(min_length=SIDE, max_length=SIDE)]


class PredictJSON(BaseModel):
    """A digit as MNIST stores it: 28 rows of 28 grey levels, 0 = background, 255 = ink."""

    pixels: Annotated[list[Row], Field(min_length=SIDE, max_length=SIDE)] = Field(
        description="28x28 grey levels from 0 (background) to 255 (ink), as in MNIST; "
                    "fractions are rounded. Scale 0..1 data by 255 first.")
    model: str | None = Field(None, description="a model id from GET /api/models; default: the first")
    activations: bool = Field(False, description="also return the feature maps of C1, S2, C3, S4")
    mnistify: bool = Field(False, description="first crop, scale to a 20x20 box and centre by "
                                              "mass, as MNIST was made (for raw drawings)")


class FeatureMaps(BaseModel):
    layer: str = Field(description="C1, S2, C3 or S4")
    shape: list[int] = Field(description="[maps, height, width]")
    min: float
    max: float
    maps: list[list[list[float]]] = Field(description="the layer's output, rounded to 3 decimals")


class PredictResponse(BaseModel):
    """The most likely class is named three ways, as in ``lenet5 predict --json``."""

    model: str = Field(description="the id of the model that answered")
    label: int = Field(description="the most likely class: its index, into `probabilities`")
    class_name: str = Field(alias="class", description='its name: "7", or "Ankle boot" '
                                                       "for a Fashion-MNIST model")
    digit: int | None = Field(description="the digit that name is; null when the model's "
                                          "classes are not digits")
    probability: float = Field(description="its probability, rounded to 6 decimals")
    probabilities: list[float] = Field(description="softmax of the scores, one per class in "
                                                     "label order, rounded to 6 decimals")
    input: list[list[int]] = Field(description="the 28x28 uint8 image the model saw (ink 255)")
    activations: list[FeatureMaps] | None = Field(None, description="when asked for")


class ModelInfo(BaseModel):
    id: str
    model: str = Field(description="the architecture's registry name")
    task: str = Field(description='"classify": one digit, POST /api/predict; "read": a '
                                  "written number, POST /api/read")
    checkpoint: str = Field(description="the checkpoint's file name")
    parameters: int
    classes: int
    class_names: list[str] = Field(description="the classes' names, in label order")
    test_accuracy: float | None = Field(description="as recorded in the checkpoint (a reader's: "
                                                    "its exact match, the share of numbers read right)")
    layers: list[str] = Field(description="feature map layers it can show")


class ModelsResponse(BaseModel):
    default: str = Field(description="the first model served")
    defaults: dict[str, str] = Field(description="per task, the model a request without "
                                                 "`model` gets: the first of that task")
    models: list[ModelInfo]


class Health(BaseModel):
    status: str
    models: int


class ErrorResponse(BaseModel):
    detail: str


class ApiError(Exception):
    def __init__(self, status: int, detail: str):
        self.status, self.detail = status, detail


def _peer(request: Request) -> str:
    return f"{request.client.host}:{request.client.port}" if request.client else "a client"


def _first_error(e: ValidationError | RequestValidationError) -> str:
    err = e.errors()[0]
    where = ".".join(str(x) for x in err.get("loc", ()) if x != "body")
    return f"{where}: {err['msg']}" if where else err["msg"]


def _feature_maps(layer: str, a: np.ndarray) -> FeatureMaps:
    return FeatureMaps.model_construct(layer=layer, shape=list(a.shape), min=float(a.min()),
                                       max=float(a.max()),
                                       maps=np.round(a.astype(np.float64), 3).tolist())


_MULTIPART_SCHEMA = {
    "type": "object", "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary",
                 "description": "an image of one digit (PNG, JPEG, BMP, GIF, WebP, TIFF, PPM), "
                                "at most 16.8 megapixels decoded (a large JPEG is decoded at "
                                "1/2, 1/4 or 1/8 scale); preprocessed as `lenet5 predict` does"},
        "model": {"type": "string", "description": "a model id from GET /api/models"},
        "activations": {"type": "boolean", "description": "also return the feature maps"},
    },
}


_READ_MULTIPART_SCHEMA = {
    "type": "object", "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary",
                 "description": "an image of one written number, dark on light or light on "
                                "dark; the same formats and limits as /api/predict"},
        "model": {"type": "string", "description": "a reader's id from GET /api/models"},
    },
}
_ENDPOINTS = {"classify": ("/api/predict", "one digit at a time"),
              "read": ("/api/read", "whole numbers")}


def parse(schema: type[BaseModel], body: bytes):
    """A JSON body as ``schema``, or a 422 naming the first thing wrong."""
    try:
        return schema.model_validate_json(body)
    except ValidationError as e:
        raise ApiError(422, _first_error(e)) from None


def _read_upload(served: ServedReader, data: bytes, name: str) -> NumberReading:
    """On a decode thread: the upload decoded (bounded as for /api/predict), then read;
    boxes in the upload's own pixels, however much it was reduced to be read."""
    img = open_image(data, name)
    with Image.open(io.BytesIO(data)) as stored:  # its header: the size before reduction
        factor = max(stored.size) / max(img.size)
    try:
        return served.read_image(img, factor, name)
    except Lenet5Error as e:  # every refusal names the upload, once
        message = str(e)
        raise Lenet5Error(message if message.startswith(f"{name}: ") else f"{name}: {message}"
                          ) from None


def create_app(checkpoints: list[str | Path], limits: Limits | None = None) -> FastAPI:
    """The app serving ``checkpoints`` (the first is the default model) within ``limits``."""
    limits = limits or Limits()
    models = load_models(checkpoints)
    decoder = DecodePool(limits.decode_workers, limits.decode_queue, limits.light_pixels)
    default = next(iter(models))
    defaults = {}
    for model_id, m in models.items():
        defaults.setdefault(m.task, model_id)
    batchers = {model_id: Batcher(m) for model_id, m in models.items() if m.task == "classify"}
    @asynccontextmanager
    async def lifespan(app):
        yield
        decoder.close()

    app = FastAPI(title="lenet5", version=__version__, lifespan=lifespan,
                  description="Draw a digit, watch LeNet-5 read it: predictions and feature maps.")
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes, discard_bytes=limits.discard_bytes)
    app.state.models, app.state.limits, app.state.decoder = models, limits, decoder

    @app.exception_handler(ApiError)
    async def api_error(request, e: ApiError):
        return JSONResponse({"detail": e.detail}, status_code=e.status)

    @app.exception_handler(Lenet5Error)
    async def bad_input(request, e: Lenet5Error):
        return JSONResponse({"detail": str(e)}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def bad_params(request, e: RequestValidationError):
        return JSONResponse({"detail": _first_error(e)}, status_code=422)

    @app.exception_handler(Busy)
    async def busy(request, e: Busy):
        return JSONResponse({"detail": str(e)}, status_code=503, headers={"retry-after": "1"})

    @app.exception_handler(ClientDisconnect)
    async def gone(request, e: ClientDisconnect):  # nobody to answer; not an error of ours
        log.info("%s left before sending the whole request", _peer(request))
        return JSONResponse({"detail": "client disconnected"}, status_code=400)

    @app.exception_handler(Exception)
    async def internal(request, e: Exception):
        return JSONResponse({"detail": f"internal error: {type(e).__name__}"}, status_code=500)

    def pick(model_id: str | None, task: str):
        if model_id is None or model_id == "":
            if task not in defaults:
                raise ApiError(422, f"no model served here does {_ENDPOINTS[task][1]}; "
                                    f"served: {', '.join(models)}")
            return models[defaults[task]]
        if model_id not in models:
            raise ApiError(422, f"unknown model {model_id!r}; served: {', '.join(models)}")
        m = models[model_id]
        if m.task != task:
            raise ApiError(422, f"model {model_id!r} does {_ENDPOINTS[m.task][1]}: "
                                f"POST {_ENDPOINTS[m.task][0]}")
        return m

    async def upload(request: Request):
        """The image file of a multipart form, and the form."""
        form = await request.form(max_files=1, max_fields=8)
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise ApiError(422, "the form needs the image in a file field named 'file'")
        return await file.read(), file.filename or "file", form

    def content_type(request: Request) -> str:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in ("multipart/form-data", "application/json", ""):
            raise ApiError(415, f"send application/json or multipart/form-data, not {ctype!r}")
        return ctype

    async def answer(served: ServedModel, digit: np.ndarray, activations: bool) -> PredictResponse:
        p: Prediction = await batchers[served.id].predict(digit, activations)
        if not np.isfinite(p.probabilities).all():
            raise ApiError(500, f"model {served.id!r} gave non-finite probabilities for this input")
        maps = [_feature_maps(k, v) for k, v in p.activations.items()] if activations else None
        return PredictResponse.model_construct(model=served.id, label=p.label,
                                               class_name=p.class_name, digit=p.digit,
                                               probability=round(p.probability, 6),
                                               probabilities=[round(x, 6) for x in p.probabilities],
                                               input=digit.tolist(), activations=maps)

    errors: dict[int | str, dict[str, Any]] = {
        code: {"model": ErrorResponse, "description": text} for code, text in [
            (408, "the request did not arrive in time"),
            (413, f"body over {limits.max_body_bytes // 2**20} MB"), (415, "neither JSON nor multipart"),
            (422, "not an image, too large an image, bad pixels, unknown model"),
            (503, "too many uploads waiting to be decoded, or too many connections"),
        ]}

    @app.post("/api/predict", response_model=PredictResponse, responses=errors,
              summary="Read one digit",
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": PredictJSON.model_json_schema()},
                  "multipart/form-data": {"schema": _MULTIPART_SCHEMA}}}})
    async def predict(request: Request,
                      model: Annotated[str | None, Query(description="model id")] = None,
                      activations: Annotated[bool, Query(description="return feature maps")] = False):
        """An image file (multipart field `file`) or JSON pixels in; the digit, the
        probabilities, the 28x28 image the model saw and, if asked, the feature maps out.
        `model` and `activations` may be given as query parameters or in the body."""
        if content_type(request) == "multipart/form-data":
            data, name, form = await upload(request)
            served = pick(str(form.get("model", model) or "") or None, "classify")
            want = str(form.get("activations", activations)).lower() in ("true", "1", "yes", "on")
            digit = await decoder.run(load_digit, data, name, pixels=partial(decode_pixels, data))
            return await answer(served, digit, want)
        req = parse(PredictJSON, await request.body())
        served = pick(req.model if req.model is not None else model, "classify")
        digit = np.rint(np.asarray(req.pixels, dtype=np.float32)).astype(np.uint8)
        if req.mnistify:
            digit = await run_in_threadpool(mnistify, Image.fromarray(digit), "pixels")
        return await answer(served, digit, req.activations or activations)

    @app.post("/api/read", response_model=ReadResponse, responses=errors,
              summary="Read a written number",
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": ReadJSON.model_json_schema()},
                  "multipart/form-data": {"schema": _READ_MULTIPART_SCHEMA}}}})
    async def read(request: Request,
                   model: Annotated[str | None, Query(description="model id (a reader)")] = None):
        """An image of one written number (multipart field `file`), or JSON pixels of an ink
        map; the number read, its confidence, each digit's probability and box, and the
        output strip: each position of the window along the line, its best class (a digit
        or "none") and that class's probability. Same limits as /api/predict."""
        if content_type(request) == "multipart/form-data":
            data, name, form = await upload(request)
            served = pick(str(form.get("model", model) or "") or None, "read")
            got = await decoder.run(_read_upload, served, data, name,
                                    pixels=partial(decode_pixels, data))
        else:
            req = parse(ReadJSON, await request.body())
            served = pick(req.model if req.model is not None else model, "read")
            got = await decoder.run(served.read_ink, req.ink())
        return read_response(served.id, got, served.classes)

    @app.get("/api/models", response_model=ModelsResponse, summary="The models being served")
    async def list_models() -> ModelsResponse:
        return ModelsResponse(default=default, defaults=defaults, models=[
            ModelInfo(id=m.id, model=m.name, task=m.task, checkpoint=m.path.name,
                      parameters=m.parameters, classes=m.num_classes,
                      class_names=list(m.classes),
                      test_accuracy=m.test_accuracy, layers=list(m.layers))
            for m in models.values()])

    @app.get("/healthz", response_model=Health, summary="Liveness")
    async def healthz() -> Health:  # async: on the event loop, never behind a decode
        return Health(status="ok", models=len(models))

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(HTTPException)
    async def http_error(request, e: HTTPException):
        return JSONResponse({"detail": str(e.detail)}, status_code=e.status_code,
                            headers=getattr(e, "headers", None))

    return app
