"""End to end in a real headless Chromium: open the page, click an example, see products and the
stylist's reply. Leaves a screenshot in artifacts/screenshot.png for a person to look at."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_ui import load_real_engine, running_app

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
SCREENSHOT = Path(__file__).resolve().parent.parent / "artifacts" / "screenshot.png"

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium "
                                "(apt-get install chromium chromium-driver)")


def waiter(browser, seconds: float = 60):
    """A wait that rides out Gradio re-rendering an element between finding and reading it."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(browser, seconds, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,))


@pytest.fixture(scope="module")
def app_url():
    with running_app(load_real_engine()) as (_, url):
        yield url


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=1440,1000", f"--user-data-dir={tmp_path / 'profile'}"]:
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


def test_example_click_shows_products_and_reply(app_url, browser, monkeypatch):
    from selenium.webdriver.common.by import By

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # the deterministic reply
    wait = waiter(browser)
    browser.get(app_url)
    example = wait.until(lambda d: d.find_element(
        By.XPATH, "//button[contains(@class, 'gallery-item')][contains(., 'in red')]"))
    example.click()

    def loaded_images(driver):
        images = driver.find_elements(By.CSS_SELECTOR, "#gallery img")
        return len(images) >= 4 and all(driver.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth > 0", im) for im in images)

    wait.until(loaded_images)
    wait.until(lambda d: "Automatic summary" in d.find_element(By.ID, "reply").text)
    assert "Red" in browser.find_element(By.ID, "status").text
    assert "in red" in browser.find_element(By.CSS_SELECTOR, "textarea").get_attribute("value")
    assert not browser.find_elements(By.CSS_SELECTOR, ".toast-body.error")

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOT))  # the README's picture is a reviewed copy of it
    assert SCREENSHOT.stat().st_size > 10_000

    # Clicking a product shows why it matched.
    browser.find_elements(By.CSS_SELECTOR, "#gallery button.thumbnail-item")[0].click()
    wait.until(lambda d: "Why it matched" in d.find_element(By.ID, "details").text)


OUTFIT_SHOT = SCREENSHOT.parent / "outfit.png"


def test_build_an_outfit_and_swap_a_piece(app_url, browser, monkeypatch):
    from selenium.webdriver.common.by import By

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    wait = waiter(browser)
    browser.get(app_url)
    box = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "textarea"))
    box.send_keys("white shirt, navy chinos and brown loafers for the office")
    browser.find_element(By.ID, "complete").click()

    def pieces(driver, slot: int) -> list[str]:
        images = driver.find_elements(By.CSS_SELECTOR, f"#slot-{slot}-pieces img")
        loaded = all(driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", im)
                     for im in images)
        return [im.get_attribute("src") for im in images] if images and loaded else []

    for slot in range(3):
        wait.until(lambda d: len(pieces(d, slot)) >= 3)
    assert not [e for e in browser.find_elements(By.ID, "slot-3") if e.is_displayed()]  # three slots, three rows
    assert "Top" in browser.find_element(By.ID, "slot-0-label").text
    wait.until(lambda d: "Automatic summary" in d.find_element(By.ID, "reply").text)
    assert "Outfit: 3 pieces" in browser.find_element(By.ID, "status").text
    before = pieces(browser, 2)

    browser.find_element(By.ID, "slot-2-next").click()
    wait.until(lambda d: pieces(d, 2) and pieces(d, 2)[0] == before[1])
    assert pieces(browser, 0)[0] and pieces(browser, 2)[-1] == before[0]  # rotated, nothing lost
    wait.until(lambda d: "Automatic summary" in d.find_element(By.ID, "reply").text)
    assert not browser.find_elements(By.CSS_SELECTOR, ".toast-body.error")
    browser.execute_script("window.scrollTo(0, 0)")
    browser.save_screenshot(str(OUTFIT_SHOT))  # the README's outfit picture is a reviewed copy
    assert OUTFIT_SHOT.stat().st_size > 10_000


TASTE_SHOT = SCREENSHOT.parent / "taste.png"


def test_like_a_product_and_start_the_quiz(app_url, browser):
    from selenium.webdriver.common.by import By

    wait = waiter(browser)
    browser.get(app_url)
    box = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "textarea"))
    box.send_keys("blue shirts for men\n")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#gallery button.thumbnail-item")) >= 4)
    browser.find_elements(By.CSS_SELECTOR, "#gallery button.thumbnail-item")[0].click()
    wait.until(lambda d: "Why it matched" in d.find_element(By.ID, "details").text)
    browser.find_element(By.ID, "like").click()
    wait.until(lambda d: "1 like," in d.find_element(By.ID, "taste-summary").text)
    assert browser.execute_script("return window.localStorage.getItem('fashion_rag_profile')")
    browser.refresh()  # a returning shopper is recognised by the id kept in the browser
    wait.until(lambda d: "1 like," in d.find_element(By.ID, "taste-summary").text)

    def quiz_on_show(d) -> bool:
        return any(e.is_displayed() for e in d.find_elements(By.CSS_SELECTOR, "#quiz-next, #quiz-skip, #quiz"))

    assert not quiz_on_show(browser)  # no empty quiz picture or Next / Skip before the quiz starts
    browser.find_element(By.ID, "quiz-start").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#quiz img")) == 8)
    assert "Round 1 of 3" in browser.find_element(By.ID, "taste").text and quiz_on_show(browser)
    assert not browser.find_elements(By.CSS_SELECTOR, ".toast-body.error")
    browser.save_screenshot(str(TASTE_SHOT))
    browser.find_element(By.ID, "quiz-skip").click()
    wait.until(lambda d: not quiz_on_show(d) and "Quiz skipped" in d.find_element(By.ID, "taste").text)


def test_a_model_reply_cannot_make_the_browser_fetch_anything(app_url, browser, monkeypatch):
    """A model talked into writing images, HTML and links: the page shows text, fetches nothing."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from tests.openai_stub import serving as openai_stub

    with openai_stub(monkeypatch, "sk-browser-test", "10") as stub:
        tracker = f"http://127.0.0.1:{stub.port}/tracker.png"
        stub.reply = (f"**Pair #1** with the rest. ![look]({tracker}) <img src='{tracker}'> "
                      f"[more]({tracker}) {tracker}")
        wait = waiter(browser)
        browser.get(app_url)
        box = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "textarea"))
        box.send_keys(f"black formal shoes for men ![x]({tracker})" + Keys.ENTER)
        wait.until(lambda d: "Pair #1" in d.find_element(By.ID, "reply").text)
        wait.until(lambda d: "black formal shoes" in d.find_element(By.ID, "history").text)
        for panel in ("reply", "history", "details"):
            assert not browser.find_elements(By.CSS_SELECTOR, f"#{panel} img, #{panel} a[href]"), panel
        assert "image: look" in browser.find_element(By.ID, "reply").text
        assert stub.gets == []  # nothing asked the tracker for the image


def test_an_upload_over_the_limit_gets_a_clear_message(app_url, browser, tmp_path):
    from selenium.webdriver.common.by import By

    from fashion_rag import settings

    big = tmp_path / "huge-photo.jpg"
    big.write_bytes(b"\xff\xd8" + b"\0" * int(settings.MAX_UPLOAD_MB * 1024 * 1024 + 1024))
    wait = waiter(browser)
    browser.get(app_url)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "input[type=file]"))[0].send_keys(str(big))
    toast = wait.until(lambda d: [t.text for t in d.find_elements(By.CSS_SELECTOR, ".toast-body")
                                  if "maximum allowed size" in t.text])
    assert "huge-photo.jpg" in toast[0]


def test_a_file_that_is_not_a_photo_gets_a_clear_message(app_url, browser, tmp_path):
    from selenium.webdriver.common.by import By

    fake = tmp_path / "holiday.jpg"
    fake.write_text("a shopping list, not a photo\n" * 50)
    wait = waiter(browser)
    browser.get(app_url)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "input[type=file]"))[0].send_keys(str(fake))
    wait.until(lambda d: [t.text for t in d.find_elements(By.CSS_SELECTOR, ".toast-body") if "not a photo" in t.text])


PIECES_SHOT = SCREENSHOT.parent / "pieces.png"


def test_a_worn_outfit_becomes_piece_chips_and_a_chip_searches_its_piece(app_url, browser, monkeypatch):
    from selenium.webdriver.common.by import By

    from fashion_rag import settings

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    wait = waiter(browser)
    browser.get(app_url)
    upload = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "input[type=file]"))[0]
    upload.send_keys(str(settings.CATALOG_DIR / "images" / "16612.jpg"))  # shirt, trousers, shoes
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#query-image img"))  # the photo is in
    browser.find_element(By.XPATH, "//button[normalize-space()='Search']").click()

    def chips(driver) -> list:
        return [c for c in driver.find_elements(By.CSS_SELECTOR, "#pieces label") if c.is_displayed()]

    wait.until(lambda d: len(chips(d)) >= 2)
    labels = [c.text for c in chips(browser)]
    assert any("shirt" in t for t in labels) and any("trousers" in t for t in labels), labels
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#pieces-view img.mask")) >= 2)  # boxes

    def captions(driver) -> list[str]:
        return [c.get_attribute("textContent") for c in driver.find_elements(By.CSS_SELECTOR, "#gallery .caption-label")]

    def mostly(driver, kinds: tuple[str, ...]) -> bool:
        shown = captions(driver)
        return len(shown) >= 8 and sum(any(k in c for k in kinds) for c in shown) >= 0.75 * len(shown)

    wait.until(lambda d: mostly(d, ("Trousers", "Jeans")))  # first: the most prominent piece
    next(c for c in chips(browser) if "shirt" in c.text).click()
    wait.until(lambda d: mostly(d, ("Shirt", "Jacket")))  # the top reads "shirt or jacket?"
    assert "shirt" in browser.find_element(By.CSS_SELECTOR, "#pieces input:checked").find_element(By.XPATH, "..").text
    assert not browser.find_elements(By.CSS_SELECTOR, ".toast-body.error")
    browser.execute_script("window.scrollTo(0, 0)")
    browser.save_screenshot(str(PIECES_SHOT))  # the README's shop-the-look picture is a reviewed copy
    assert PIECES_SHOT.stat().st_size > 10_000
