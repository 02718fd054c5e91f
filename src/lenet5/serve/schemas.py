"""The JSON of ``POST /api/read``: what comes in, what goes out (the OpenAPI schema)."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import BaseModel, Field, model_validator

from .reader import NumberReading

MAX_ROWS, MAX_COLUMNS = 1024, 4096  # an ink map sent as JSON pixels, at most
Pixel = Annotated[float, Field(ge=0, le=255)]  # a grey level, as JSON pixels give it


class ReadJSON(BaseModel):
    """A written number as an ink map: rows of grey levels, 0 = background, 255 = ink."""

    pixels: Annotated[list[list[Pixel]], Field(min_length=1, max_length=MAX_ROWS)] = Field(
        description=f"rows of grey levels from 0 (background) to 255 (ink), all of one length, "
                    f"at most {MAX_ROWS} rows of {MAX_COLUMNS}; fractions are rounded. Any "
                    "size: the line is cropped to its ink and scaled as a file would be.")
    model: str | None = Field(None, description="a reader's id from GET /api/models; default: "
                                                "the first reader")

    @model_validator(mode="after")
    def _rectangular(self) -> ReadJSON:
        width = len(self.pixels[0])
        if not 1 <= width <= MAX_COLUMNS:
            raise ValueError(f"pixels: rows of 1 to {MAX_COLUMNS} grey levels, not {width}")
        if any(len(row) != width for row in self.pixels):
            raise ValueError("pixels: every row must be as long as the first")
        return self

    def ink(self) -> np.ndarray:
        return np.rint(np.asarray(self.pixels, dtype=np.float32)).astype(np.uint8)


class DigitOut(BaseModel):
    digit: int
    probability: float = Field(description="the probability of this digit at its best output")
    box: list[int] = Field(description="x0, y0, x1, y1 in the image's pixels, ends exclusive")


class StripOut(BaseModel):
    class_name: str = Field(alias="class", description='the best class here: "0".."9" or "none"')
    probability: float = Field(description="its probability, rounded to 4 decimals")
    x: float = Field(description="the column of the image the window is centred on")
    column: float = Field(description="the same in `input`")


class ReadResponse(BaseModel):
    model: str = Field(description="the id of the reader that answered")
    text: str = Field(description='the number read: its digits ("" when none are found)')
    confidence: float = Field(description="the probability of that reading given the output "
                                          "strip, rounded to 6 decimals")
    digits: list[DigitOut]
    strip: list[StripOut] = Field(description="the output strip: one entry per position of "
                                              "the window along the line, left to right")
    input: list[list[int]] = Field(description="the line the model saw: 32 rows, ink 255")


def read_response(model_id: str, got: NumberReading, names: tuple[str, ...]) -> ReadResponse:
    r = got.reading
    return ReadResponse.model_construct(
        model=model_id, text=r.text, confidence=round(r.confidence, 6),
        digits=[DigitOut.model_construct(digit=d.digit, probability=round(d.probability, 6),
                                         box=list(d.box)) for d in r.digits],
        strip=[StripOut.model_construct(class_name=names[c.label], probability=round(c.probability, 4),
                                        x=c.x, column=c.column) for c in got.strip],
        input=got.input.tolist())
