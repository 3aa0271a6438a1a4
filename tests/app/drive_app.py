"""A user's session with the app in headless Chromium, as the app's browser test runs it in its
own process group (so that a hung browser is killed with it):

    python -m tests.app.drive_app URL OUT --photo P --label_map L --broken B --bomb X

Segment: upload the photo and wait for the overlay, then a broken file and a bomb and wait for
their messages, then pick the example "chelsea"; Generate: seeds 5, 6 and 5 again; Translate:
upload the label map and wait for the photo. What the page served is written under OUT
(``overlay.jpg``, ``example.jpg``, ``grid_5.png``, ``grid_6.png``, ``grid_5_again.png``,
``photo.png``) with ``results.json``: the messages shown, every URL the page requested, and the
seconds from upload to overlay.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from bench import browser


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("out", type=Path)
    for flag in ("--photo", "--label_map", "--broken", "--bomb"):
        parser.add_argument(flag, type=Path, required=True)
    parser.add_argument("--chromium", default=None)
    options = parser.parse_args(argv)
    out: Path = options.out
    out.mkdir(parents=True, exist_ok=True)
    results: dict = {"messages": []}
    with browser.chromium_page(out / "profile", options.chromium) as page:
        browser.open_app(page, options.url, "Segment")
        overlay, seconds = browser.segment(page, options.photo)
        (out / "overlay.jpg").write_bytes(overlay)
        results["upload_to_overlay_s"] = seconds
        for bad, text in ((options.broken, "cannot decode"), (options.bomb, "megapixels")):
            browser.clear_photos(page)
            browser.upload(page, "#segment-photos", bad)
            results["messages"].append(browser.page_message(page, text))
        browser.clear_photos(page)
        (out / "example.jpg").write_bytes(browser.segment_example(page, "chelsea"))

        browser.show_tab(page, "Generate")
        for seed, name in ((5, "grid_5"), (6, "grid_6"), (5, "grid_5_again")):
            (out / f"{name}.png").write_bytes(browser.generate(page, seed))

        browser.show_tab(page, "Translate")
        (out / "photo.png").write_bytes(browser.translate_upload(page, options.label_map))
        results["requested"] = list(page.requested)
    (out / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
