"""End to end in a real headless browser: Playwright driving Debian's chromium draws a 7 on
the page of a real `lenet5 serve`, and sees the prediction and the feature maps appear; with
a reader served too, writes a number in number mode and sees it read, the digits' boxes and
the output strip drawn.

Skips where chromium or the playwright package is missing (`.ci/run` installs both). Set
LENET5_SCREENSHOT=docs/serve.png to also write the README's screenshot.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]
READY = """() => document.body.dataset.state === 'ready'
    && ['C1', 'S2', 'C3', 'S4'].every(l => document.querySelector(`.layer[data-layer="${l}"]`))"""
# the grey levels drawn in each layer's maps: not all one colour
SPREAD = """() => Object.fromEntries([...document.querySelectorAll('.layer[data-layer]')].map(fig => {
    const vals = [...fig.querySelectorAll('canvas')].flatMap(c =>
        [...c.getContext('2d').getImageData(0, 0, c.width, c.height).data].filter((_, i) => i % 4 === 0));
    return [fig.dataset.layer, vals.length ? Math.max(...vals) - Math.min(...vals) : null];
}))"""


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def draw(page, points: list[tuple[float, float]]) -> None:
    """One mouse stroke through ``points`` given as fractions of the pad."""
    box = page.locator("#pad").bounding_box()
    at = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*at[0])
    page.mouse.down()
    for x, y in at[1:]:
        page.mouse.move(x, y, steps=12)
    page.mouse.up()


SEVEN = [(0.25, 0.22), (0.75, 0.22), (0.45, 0.82)]


def test_draw_a_seven_and_watch_it_read(browser, server_url, tmp_path):
    page = browser.new_page(viewport={"width": 1060, "height": 940})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server_url + "/")
    assert page.text_content("#digit") == "?"
    assert page.locator("#picker").is_hidden()  # one model: no picker
    assert page.locator("#modes").is_hidden()  # no reader: no number mode
    before = page.locator("#pad").bounding_box()
    draw(page, SEVEN)
    page.wait_for_function(READY, timeout=20_000)
    assert page.locator("#pad").bounding_box() == before  # the pad never moves under the pen
    assert page.text_content("#digit") == "7"
    assert page.locator(".bar.top .lbl").text_content() == "7"
    assert page.locator(".layer canvas.map").count() == 1 + 6 + 6 + 16 + 16
    spread = page.evaluate(SPREAD)
    assert all(spread[layer] > 50 for layer in ("C1", "S2", "C3", "S4")), spread
    seen = page.evaluate("""() => [...document.getElementById('seen').getContext('2d')
        .getImageData(0, 0, 28, 28).data].filter((v, i) => i % 4 === 0 && v > 128).length""")
    assert seen > 20  # the 28x28 image the model saw has ink
    page.wait_for_timeout(300)  # the bars' 0.15 s transition
    page.screenshot(path=str(tmp_path / "serve.png"), full_page=True)
    if target := os.environ.get("LENET5_SCREENSHOT"):  # 64 colours: a small file for the README
        Image.open(tmp_path / "serve.png").convert("RGB").quantize(64).save(target, optimize=True)

    page.click("#clear")
    assert page.text_content("#digit") == "?"
    assert page.locator(".layer[data-layer='C1']").count() == 0
    assert errors == []
    page.close()


def test_a_phone_draws_too(browser, server_url, tmp_path):
    page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                            is_mobile=True, has_touch=True)
    page.goto(server_url + "/")
    draw(page, [(0.5, 0.15), (0.5, 0.85)])  # a 1
    page.wait_for_function(READY, timeout=20_000)
    assert page.text_content("#digit") == "1"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing sticks out sideways
    pad = page.locator("#pad").bounding_box()
    assert pad["width"] > 300  # the pad takes the phone's width
    page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
    page.close()


def test_upload_an_image(browser, server_url, tmp_path, mnist):
    import numpy as np

    img = 255 - np.kron(mnist.test.images[0].numpy(), np.ones((5, 5), dtype=np.uint8))  # a 7 on paper
    Image.fromarray(img).save(tmp_path / "seven.png")
    page = browser.new_page(viewport={"width": 1060, "height": 940})
    page.goto(server_url + "/")
    page.set_input_files("#file", str(tmp_path / "seven.png"))
    page.wait_for_function(READY, timeout=20_000)
    assert page.text_content("#digit") == str(int(mnist.test.labels[0]))
    assert "seven.png" in page.text_content("#status")
    page.close()


@pytest.fixture(scope="module")
def both_url(checkpoint, tiny_reader):
    """`lenet5 serve` with a digit model and a reader."""
    from tests.serve.conftest import Server

    s = Server(str(checkpoint), str(tiny_reader))
    yield s.url
    s.stop()


# number mode: the answer to the latest drawing shown, and its output strip drawn
NUMBER_READY = """() => document.body.dataset.state === 'ready' && document.body.dataset.mode === 'number'
    && document.querySelectorAll('#reading .chip').length === document.getElementById('digit')
       .textContent.replace('–', '').length"""
LIT = """(id) => { const c = document.getElementById(id);
    return [...c.getContext('2d').getImageData(0, 0, c.width, c.height).data]
        .filter((v, i) => i % 4 === 3 && v > 0).length; }"""  # pixels drawn on a canvas
PAD_READING = """async () => {  // what the API reads in the pad as it is now
    const blob = await new Promise((ok) => document.getElementById('pad').toBlob(ok, 'image/png'));
    const body = new FormData();
    body.append('file', blob, 'pad.png');
    return (await (await fetch('/api/read', { method: 'POST', body })).json()).text; }"""
FOUR = [[(0.08, 0.25), (0.08, 0.6), (0.2, 0.6)], [(0.17, 0.2), (0.17, 0.85)]]  # a 4 in two strokes
ONE = [[(0.4, 0.15), (0.4, 0.85)]]
SEVEN_NUMBER = [[(0.55, 0.2), (0.72, 0.2), (0.6, 0.85)]]


def test_number_mode_reads_as_you_write(browser, both_url, tmp_path):
    page = browser.new_page(viewport={"width": 1060, "height": 1100})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    reads: list[str] = []
    page.on("request", lambda r: reads.append(r.url) if r.url.endswith("/api/read") else None)
    page.goto(both_url + "/")
    page.wait_for_selector("#modes:not([hidden])")
    assert page.get_attribute("#modes [data-mode=digit]", "aria-pressed") == "true"
    page.click("#modes [data-mode=number]")
    assert page.locator("#strip").is_visible() and page.locator("#bars").is_hidden()
    assert page.locator(".network").is_hidden()
    box = page.locator("#pad").bounding_box()
    assert box["width"] > 2.5 * box["height"]  # a wide pad
    strokes = FOUR + ONE + SEVEN_NUMBER
    for stroke in strokes:
        draw(page, stroke)
    page.wait_for_function(NUMBER_READY, timeout=20_000)
    assert 1 <= len(reads) <= len(strokes)  # debounced: not a request per pointer move
    text = page.text_content("#digit")
    assert text == "–" or text.isdigit()
    assert text.replace("–", "") == page.evaluate(PAD_READING)  # the API's reading of the pad
    assert page.evaluate(LIT, "strip") > 1000  # the output strip under the pad
    assert page.evaluate(LIT, "linestrip") > 100 and page.evaluate(LIT, "line") > 100
    if text != "–":
        assert page.evaluate(LIT, "boxes") > 50  # each digit's box over the pad
    page.screenshot(path=str(tmp_path / "number.png"), full_page=True)

    page.click("#clear")
    assert page.text_content("#digit") == "?" and page.evaluate(LIT, "strip") == 0
    # digit mode still reads digits, feature maps and all
    page.click("#modes [data-mode=digit]")
    assert page.locator("#pad").bounding_box()["width"] == pytest.approx(320, abs=2)
    draw(page, SEVEN)
    page.wait_for_function(READY, timeout=20_000)
    assert page.text_content("#digit") == "7"
    assert errors == []
    page.close()


def test_number_mode_reads_an_upload(browser, both_url, tmp_path, mnist):
    import httpx
    import numpy as np
    import torch

    from lenet5.data.strings import StringOptions, compose

    s = compose(mnist.test, 1, StringOptions(length=(5, 5)), torch.Generator().manual_seed(3))
    line = np.kron(s.images[0, :, :int(s.widths[0])].numpy(), np.ones((4, 4), dtype=np.uint8))
    Image.fromarray(255 - np.pad(line, 30)).save(tmp_path / "number.png")  # dark ink on paper
    want = httpx.post(both_url + "/api/read",
                      files={"file": ("number.png", (tmp_path / "number.png").read_bytes())}).json()
    page = browser.new_page(viewport={"width": 1060, "height": 1100})
    page.goto(both_url + "/")
    page.wait_for_selector("#modes:not([hidden])")
    page.click("#modes [data-mode=number]")
    page.set_input_files("#file", str(tmp_path / "number.png"))
    page.wait_for_function(NUMBER_READY, timeout=20_000)
    assert page.text_content("#digit") == (want["text"] or "–")
    assert "number.png" in page.text_content("#status")
    assert page.locator("#reading .chip").count() == len(want["digits"])
    page.close()
