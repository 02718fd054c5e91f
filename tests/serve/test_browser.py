"""End to end in a real headless browser: Playwright driving Debian's chromium draws a 7 on
the page of a real `lenet5 serve`, and sees the prediction and the feature maps appear.

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
