"""The README's screenshots: `.venv/bin/python scripts/screenshots.py` (needs Chromium, as
`make test` does).

It starts Headwater on loopback with sample content (tests/support/sample_site.py: a channel
whose conda mirror has run, an uploaded wheel matched by CVEs), signs in as the administrator
and saves the main screens, 1280 by 800 pixels, as PNGs in docs/screenshots/.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.support, run from anywhere

from tests.conftest import make_settings  # noqa: E402
from tests.support.browser import chromium, sign_in  # noqa: E402
from tests.support.conda_packages import PackageSpec  # noqa: E402
from tests.support.python_packages import Dist  # noqa: E402
from tests.support.sample_site import sample_site  # noqa: E402
from tests.support.server import ADMIN, PASSWORD  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
SIZE = {"width": 1280, "height": 800}
CHANNEL = "data-science"
PY312 = "python >=3.12,<3.13.0a0"
PACKAGES = [
    PackageSpec("python", "3.12.7", build="hc5c86c4_0_cpython", license="Python-2.0",
                license_family=None),
    PackageSpec("python-dateutil", "2.9.0", build="pyhd8ed1ab_0", subdir="noarch",
                depends=("python >=3.8", "six >=1.5"), license="Apache-2.0"),
    PackageSpec("six", "1.16.0", build="pyh6c4a22f_0", subdir="noarch"),
    PackageSpec("tzdata", "2024b", build="hc8b5060_0", subdir="noarch",
                license="LicenseRef-Public-Domain", license_family=None),
    PackageSpec("numpy", "2.0.2", build="py312h58c1407_0", depends=(PY312,),
                license="BSD-3-Clause", license_family="BSD"),
    PackageSpec("numpy", "2.1.3", build="py312h58c1407_0", depends=(PY312,),
                license="BSD-3-Clause", license_family="BSD"),
    PackageSpec("pandas", "2.2.3", build="py312hf9745cd_1",
                depends=("numpy >=1.22.4", PY312, "python-dateutil >=2.8.1", "tzdata >=2022.7"),
                license="BSD-3-Clause", license_family="BSD"),
    PackageSpec("scipy", "1.14.1", build="py312h62794b6_1", depends=("numpy >=1.23.5", PY312),
                license="BSD-3-Clause", license_family="BSD"),
]  # fmt: skip
# Each screen: its file name, the path it shows, and what to wait for.
SCREENS = [
    ("dashboard.png", "/", "h1"),
    ("channel-packages.png", f"/channels/{CHANNEL}/packages", "#packages"),
    ("package.png", f"/channels/{CHANNEL}/packages/numpy", "#files"),
    ("mirror-form.png", f"/channels/{CHANNEL}/mirrors/{{mirror_id}}/edit", "form"),
    ("run.png", "/runs/{run_id}", "#run"),
    ("cve.png", "/cves/{cve_id}", "h1"),
]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        with (
            sample_site(
                root,
                make_settings(root / "var"),
                channel=CHANNEL,
                packages=PACKAGES,
                package="numpy",
                mirror_name="conda-forge",
                dist=Dist("urllib3", "1.26.4"),
            ) as site,
            chromium() as browser,
        ):
            base = site.headwater.url
            page = browser.new_context(viewport=SIZE).new_page()
            sign_in(page, base, ADMIN, PASSWORD, then="/account")
            page.wait_for_url(base + "/account")
            for name, path, ready in SCREENS:
                page.goto(base + path.format(**site.params))
                page.locator(ready).first.wait_for()
                page.screenshot(path=OUT / name)
                kib = (OUT / name).stat().st_size // 1024
                print(f"{OUT.relative_to(ROOT) / name}: {path.format(**site.params)}, {kib} KiB")


if __name__ == "__main__":
    main()
