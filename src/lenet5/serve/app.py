"""The web app of ``lenet5 serve``: a JSON API (FastAPI, OpenAPI at /openapi.json) and the
drawing page (plain HTML/JS/CSS from ``static/``, no build step).

    POST /api/predict   an image file (multipart field ``file``) or JSON ``{"pixels": 28x28}``
    GET  /api/models    the checkpoints being served
    GET  /healthz       liveness

Every bad request gets a 4xx and ``{"detail": "one line"}``; anything unexpected a 500 with
the same shape. The server never dies from a request. What a request may cost is bounded
(:mod:`.limits`: body size, decodes at a time; :mod:`.protocol`: time, connections).
"""

from __future__ import annotations

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
from ..data.images import decode_pixels, load_digit, mnistify
from ..errors import Lenet5Error
from .engine import Batcher, Prediction, ServedModel, load_models
from .limits import BodyLimit, Busy, DecodePool, Limits

log = logging.getLogger("lenet5.serve")
STATIC = Path(__file__).parent / "static"
SIDE = 28

Pixel = Annotated[float, Field(ge=0, le=255)]
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
    checkpoint: str = Field(description="the checkpoint's file name")
    parameters: int
    classes: int
    class_names: list[str] = Field(description="the classes' names, in label order")
    test_accuracy: float | None = Field(description="as recorded in the checkpoint")
    layers: list[str] = Field(description="feature map layers it can show")


class ModelsResponse(BaseModel):
    default: str
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


def create_app(checkpoints: list[str | Path], limits: Limits | None = None) -> FastAPI:
    """The app serving ``checkpoints`` (the first is the default model) within ``limits``."""
    limits = limits or Limits()
    models = load_models(checkpoints)
    decoder = DecodePool(limits.decode_workers, limits.decode_queue, limits.light_pixels)
    default = next(iter(models))
    batchers = {model_id: Batcher(m) for model_id, m in models.items()}
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

    def pick(model_id: str | None) -> ServedModel:
        if model_id is None or model_id == "":
            return models[default]
        if model_id not in models:
            raise ApiError(422, f"unknown model {model_id!r}; served: {', '.join(models)}")
        return models[model_id]

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
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "multipart/form-data":
            form = await request.form(max_files=1, max_fields=8)
            file = form.get("file")
            if not isinstance(file, UploadFile):
                raise ApiError(422, "the form needs the image in a file field named 'file'")
            data = await file.read()
            served = pick(str(form.get("model", model) or "") or None)
            want = str(form.get("activations", activations)).lower() in ("true", "1", "yes", "on")
            digit = await decoder.run(load_digit, data, file.filename or "file",
                                      pixels=partial(decode_pixels, data))
            return await answer(served, digit, want)
        if ctype in ("application/json", ""):
            body = await request.body()
            try:
                req = PredictJSON.model_validate_json(body)
            except ValidationError as e:
                raise ApiError(422, _first_error(e)) from None
            served = pick(req.model if req.model is not None else model)
            digit = np.rint(np.asarray(req.pixels, dtype=np.float32)).astype(np.uint8)
            if req.mnistify:
                digit = await run_in_threadpool(mnistify, Image.fromarray(digit), "pixels")
            return await answer(served, digit, req.activations or activations)
        raise ApiError(415, f"send application/json or multipart/form-data, not {ctype!r}")

    @app.get("/api/models", response_model=ModelsResponse, summary="The models being served")
    async def list_models() -> ModelsResponse:
        return ModelsResponse(default=default, models=[
            ModelInfo(id=m.id, model=m.name, checkpoint=m.path.name, parameters=m.parameters,
                      classes=m.num_classes, class_names=list(m.predictor.classes),
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
