"""The wheel carries the runbooks (docs/runbooks/*.md) beside serving/runbooks.py, which serves them."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

RUNBOOKS = Path(__file__).parent / "docs" / "runbooks"


class BuildWithRunbooks(build_py):
    """build_py, then the runbooks copied into the built package (they live in docs/, where reviewers read them)."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "sepm_exporter" / "serving" / "runbooks"
        target.mkdir(parents=True, exist_ok=True)
        for page in sorted(RUNBOOKS.glob("*.md")):
            shutil.copyfile(page, target / page.name)


setup(cmdclass={"build_py": BuildWithRunbooks})
