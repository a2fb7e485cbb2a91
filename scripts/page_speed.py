"""How fast the page feels in a real browser: headless Chromium (selenium) uploads a real phone
photo, types a tweak and clicks Search, and times from the click until (1) every result photo is
shown and (2) the stylist's reply is there (the automatic summary: no model is called).

Two servers of the same engine run side by side and take turns, search by search, so machine load
hits both alike: the app as it serves, and the same app with every result photo through Gradio's
own file route instead of from memory (serving/images.py). Each has its own browser; the first
searches warm up and are not counted. Prints medians and p95s per server. The browsers run on the
same two cores as the servers, as when the app runs on a shopper's own laptop: keep the machine
otherwise idle (a forgotten browser in the background changes every figure).

    python scripts/page_speed.py              # 20 searches each, after 3 to warm up
    python scripts/page_speed.py --runs 40
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
from loadtest import TWEAKS, free_port  # noqa: E402

from fashion_rag.data.photos import load_photos  # noqa: E402

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
# What the page shows, and when (page clock): the click is stamped by a listener set before it.
STATE = """const shown = [...document.querySelectorAll('#gallery img')];
return [shown.map(i => i.src), shown.length > 0 && shown.every(i => i.complete && i.naturalWidth > 0),
        (document.querySelector('#reply') || {}).innerText || '', performance.now() - window.clicked];"""
SUMMARY = "Automatic summary"  # how the reply starts without a model (while it waits: a timer, then "Styling")
STAMP = """window.clicked = Infinity;
document.addEventListener('click', () => { window.clicked = performance.now(); }, {capture: true, once: true});"""


def browser(profile: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--no-first-run",
                "--window-size=1440,1000", f"--user-data-dir={profile}"]:
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


class Page:
    """One server and the browser that searches on it."""

    def __init__(self, engine, name: str, profile: str, from_memory: bool = True):
        from fashion_rag import ui
        self.name, self.demo, port = name, ui.build_demo(engine), free_port()
        ui.launch(self.demo, photo_folders=ui.image_dirs(engine) if from_memory else (), prevent_thread_lock=True,
                  server_name="127.0.0.1", server_port=port, quiet=True)
        try:
            self.driver = browser(profile)
        except Exception:
            self.demo.close()
            raise
        self.driver.get(f"http://127.0.0.1:{port}/")
        self.samples: dict[str, list[float]] = {"photos shown": [], "reply shown": []}

    def search(self, photo: str, tweak: str, record: bool, timeout: float = 60.0) -> None:
        from selenium.webdriver.common.by import By
        driver = self.driver
        self._until(lambda: driver.find_elements(By.CSS_SELECTOR, "input[type=file]"), timeout)[0].send_keys(photo)
        self._until(lambda: driver.find_elements(By.CSS_SELECTOR, "#query-image img"), timeout)
        box = driver.find_element(By.CSS_SELECTOR, "textarea")
        box.clear()
        box.send_keys(tweak)
        before_photos, _, before_reply, _ = driver.execute_script(STATE)
        button = driver.find_element(By.XPATH, "//button[normalize-space()='Search']")
        driver.execute_script(STAMP)
        started, done = time.perf_counter(), {}
        button.click()
        while len(done) < 2:
            if time.perf_counter() - started > timeout:
                raise TimeoutError(f"{self.name}: no results after {timeout:.0f} s")
            photos, complete, reply, now = driver.execute_script(STATE)
            if "photos shown" not in done and complete and photos != before_photos:
                done["photos shown"] = now / 1e3
            if "reply shown" not in done and reply.startswith(SUMMARY) and reply != before_reply:
                done["reply shown"] = now / 1e3
            time.sleep(0.005)
        if record:
            for key, seconds in done.items():
                self.samples[key].append(seconds)

    @staticmethod
    def _until(found, timeout: float):
        end = time.monotonic() + timeout
        while not (value := found()):
            if time.monotonic() > end:
                raise TimeoutError("the page did not get ready")
            time.sleep(0.05)
        return value

    def close(self) -> None:
        self.driver.quit()
        self.demo.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=20, help="searches counted per server")
    p.add_argument("--warmup", type=int, default=3)
    args = p.parse_args(argv)
    if not CHROMIUM.exists():
        sys.exit("needs /usr/bin/chromium and chromedriver (apt-get install chromium chromium-driver)")
    os.environ.pop("OPENAI_API_KEY", None)  # the automatic summary: the page's own time, not a model's
    from fashion_rag import settings
    settings.UPLOADS_PER_MINUTE = settings.UPLOADS_PER_MINUTE_ALL = 10 ** 6  # one browser uploads them all
    from fashion_rag.engine import load_engine
    engine = load_engine()
    table = load_photos("validation")
    photos = list(table["path"])[:: max(1, len(table) // (args.runs + args.warmup))]
    with tempfile.TemporaryDirectory() as profiles:
        pages: list[Page] = []
        try:  # every browser and server started is closed, whatever fails
            pages.append(Page(engine, "as served", f"{profiles}/a"))
            pages.append(Page(engine, "photos through Gradio's file route", f"{profiles}/b", from_memory=False))
            for n in range(args.warmup + args.runs):
                photo, tweak = photos[n % len(photos)], TWEAKS[n % len(TWEAKS)]
                for page in pages if n % 2 else pages[::-1]:  # each goes first in turn
                    page.search(photo, tweak, record=n >= args.warmup)
        finally:
            for page in pages:
                page.close()
    print(f"page speed: {args.runs} photo + text searches per server in headless Chromium, "
          f"from the click (after {args.warmup} to warm up)")
    print(f"{'server':<36} {'until':<14} {'n':>3} {'p50 ms':>8} {'p95 ms':>8}")
    for page in pages:
        for key, seconds in page.samples.items():
            ms = sorted(s * 1e3 for s in seconds)
            p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
            print(f"{page.name:<36} {key:<14} {len(ms):>3} {statistics.median(ms):>8.0f} {p95:>8.0f}")


if __name__ == "__main__":
    main()
