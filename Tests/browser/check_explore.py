"""Drives `deconvnet explore`'s page in Debian's Chromium (Playwright, never `playwright install`).

Usage: check_explore.py URL ARTEFACTS CLI_NPY UPLOAD_PNG

Opens the page and times how long until its image browser is usable, clicks test image 0, conv2's map
of channel 3 and the unit (5, 6) in the large map, waits for the projections, and asserts that the
deconvnet projection's pixels on the page equal the API's PNG and that the API's NPY for that unit
equals CLI_NPY (written by `deconvnet project --npy` for the same arguments). It moves the epoch slider
(the server has two snapshots) and checks that the projection becomes the other snapshot's, pixel for
pixel its PNG, and different. Then it moves the unit with the keyboard, waits for the top 9 and the
occlusion maps, and uploads UPLOAD_PNG. Any console error or page error fails the check. Screenshots go to ARTEFACTS. Prints `usable_ms=N` on success.
"""
import io
import json
import sys
import time
import urllib.request

from PIL import Image
from playwright.sync_api import sync_playwright

url, artefacts, cli_npy, upload_png = sys.argv[1:5]
IMAGE, LAYER, CHANNEL, Y, X = 0, "conv2", 3, 5, 6


def fetch(path):
    with urllib.request.urlopen(url.rstrip("/") + path) as response:
        return response.read()


def check_shown_is_api(page, src, what, problems):
    """Adds to `problems` unless the pixels #proj-deconvnet shows are those of the API's PNG at `src`."""
    shown = page.evaluate("""() => {
        const img = document.getElementById('proj-deconvnet'), c = document.createElement('canvas');
        c.width = img.naturalWidth; c.height = img.naturalHeight;
        const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
        return { w: c.width, h: c.height, data: Array.from(ctx.getImageData(0, 0, c.width, c.height).data) };
    }""")
    api = Image.open(io.BytesIO(fetch(src))).convert("RGBA")
    if (shown["w"], shown["h"]) != api.size:
        problems.append(f"{what}: the page shows {shown['w']}x{shown['h']}, the API's PNG is {api.size}")
    elif shown["data"] != list(api.tobytes()):
        problems.append(f"{what}: the page's pixels differ from the API's PNG")


def main():
    problems = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        # a picture whose src the page replaced before it arrived is aborted, which is no failure
        page.on("requestfailed", lambda r: None if "ERR_ABORTED" in (r.failure or "") else problems.append(f"request failed: {r.url}: {r.failure}"))

        start = time.perf_counter()
        page.goto(url)
        page.wait_for_selector("html[data-status=ready]", timeout=30000)
        page.wait_for_function("[...document.querySelectorAll('#grid img')].length > 0 && [...document.querySelectorAll('#grid img')].every(i => i.complete && i.naturalWidth > 0)", timeout=30000)
        usable_ms = (time.perf_counter() - start) * 1000
        page.screenshot(path=f"{artefacts}/1-browser.png", full_page=True)

        page.click(f".thumb[data-image='{IMAGE}']")
        page.wait_for_selector("#one:not([hidden])")
        page.wait_for_selector(f".map[data-layer='2'][data-channel='{CHANNEL}']")
        page.click(f".map[data-layer='2'][data-channel='{CHANNEL}']")
        page.wait_for_function(f"document.getElementById('proj-deconvnet').src.includes('channel={CHANNEL}&')")
        # the large map shows conv2's 14x14 channel; click the middle of unit (Y, X)
        box = page.locator("#bigmap").bounding_box()
        page.locator("#bigmap").click(position={"x": (X + 0.5) * box["width"] / 14, "y": (Y + 0.5) * box["height"] / 14})
        wanted = f"channel={CHANNEL}&y={Y}&x={X}&method=deconvnet"
        page.wait_for_function(f"(() => {{ const i = document.getElementById('proj-deconvnet'); return i.src.includes('{wanted}') && i.complete && i.naturalWidth > 0; }})()")
        page.screenshot(path=f"{artefacts}/2-unit.png", full_page=True)

        src = page.get_attribute("#proj-deconvnet", "src")
        check_shown_is_api(page, src, "deconvnet projection", problems)
        npy = fetch(f"/api/project?image={IMAGE}&layer={LAYER}&channel={CHANNEL}&y={Y}&x={X}&method=deconvnet&format=npy")
        if npy != open(cli_npy, "rb").read():
            problems.append("the API's NPY differs from `deconvnet project --npy`")

        # the epoch slider: the same unit's projection in the other snapshot, then back
        model = json.loads(fetch("/api/model"))
        snapshots, default = model["checkpoints"], model["checkpoint"]
        if len(snapshots) < 2:
            problems.append(f"the server has {len(snapshots)} checkpoints; the slider needs two")
        else:
            other = 1 - default
            page.locator("#epoch").fill(str(other))
            page.wait_for_function(f"(() => {{ const i = document.getElementById('proj-deconvnet'); return i.src.includes('?checkpoint={other}&') && i.src.includes('{wanted}') && i.complete && i.naturalWidth > 0; }})()")
            if f"epoch {snapshots[other]['epoch']} " not in page.text_content("#epoch-label"):
                problems.append(f"the slider's label says {page.text_content('#epoch-label')!r}, not epoch {snapshots[other]['epoch']}")
            page.screenshot(path=f"{artefacts}/3-epoch-{snapshots[other]['epoch']}.png", full_page=True)
            moved = page.get_attribute("#proj-deconvnet", "src")
            check_shown_is_api(page, moved, f"projection at epoch {snapshots[other]['epoch']}", problems)
            if fetch(moved) == fetch(src):
                problems.append("the projection is the same in both snapshots: the slider changed nothing")
            page.locator("#epoch").fill(str(default))
            page.wait_for_function(f"document.getElementById('proj-deconvnet').src.includes('?checkpoint={default}&')")
            page.locator("#epoch").blur()  # arrows on a focused slider move the slider, not the unit

        page.keyboard.press("ArrowRight")
        page.wait_for_function(f"document.getElementById('proj-deconvnet').src.includes('y={Y}&x={X + 1}&')")
        page.keyboard.press("]")
        page.wait_for_function(f"document.getElementById('proj-deconvnet').src.includes('channel={CHANNEL + 1}&')")
        page.wait_for_function("document.querySelectorAll('#top9 .tile').length === 9 && [...document.querySelectorAll('#top9 img')].every(i => i.complete && i.naturalWidth > 0)", timeout=300000)
        page.wait_for_function("document.getElementById('occlusion-status').textContent.includes('positions in')", timeout=60000)
        page.screenshot(path=f"{artefacts}/4-top9-occlusion.png", full_page=True)

        page.set_input_files("#file", upload_png)
        page.wait_for_function("document.getElementById('conversion').textContent.includes('model input')", timeout=30000)
        page.wait_for_function("document.getElementById('image-title').textContent === 'upload'")
        page.wait_for_function("(() => { const i = document.getElementById('proj-deconvnet'); return i.src.includes('upload=') && i.complete && i.naturalWidth > 0; })()")
        page.screenshot(path=f"{artefacts}/5-upload.png", full_page=True)
        browser.close()
    if problems:
        print("\n".join(problems))
        sys.exit(1)
    print(f"usable_ms={usable_ms:.0f}")


main()
