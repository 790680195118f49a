"""The Lambda artefact: `make package` (`python -m deploy.package`) writes build/ocrlab-lambda.zip.

In it: the ocrlab modules the handler can import on the Bedrock path (deploy.closure) with the
package data beside them (the prompts), and the distributions pinned in deploy/requirements.lock,
as wheels for Lambda's runtime and platform. ocrlab's optional extras stay out (rapidocr, pandas,
the notebooks): the closure meets them only in functions the handler never calls, and the build
lists them as left out.

The lock (`python -m deploy.package --lock`) pins the versions installed here, where the tests
ran, to wheels built for the runtime. The dependencies are installed and zipped once per lock
(build/cache/); a rebuild only adds ocrlab's own files. The zip is reproducible: entries sorted,
timestamps fixed, so an unchanged build uploads nothing new.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .closure import Closure, closure, module_file

REPO = Path(__file__).resolve().parents[1]
RUNTIME = "python3.13"  # the template's Runtime (a test holds them equal)
PYTHON_VERSION = RUNTIME.removeprefix("python")
# Lambda's python3.13 runs on Amazon Linux 2023 (glibc 2.34), x86_64: any manylinux wheel up to 2.34.
# pip matches platform tags literally, so every older one is named too.
PLATFORMS = [f"manylinux_2_{minor}_x86_64" for minor in range(34, 16, -1)] + ["manylinux2014_x86_64"]
LOCK = REPO / "deploy" / "requirements.lock"
OUTPUT = REPO / "build" / "ocrlab-lambda.zip"
CACHE = REPO / "build" / "cache"
# Lambda's limits on a function's code (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).
ZIPPED_LIMIT = 50 * 2**20      # a zip uploaded directly; `sam deploy` uploads through S3 instead
UNZIPPED_LIMIT = 250 * 2**20   # the code unpacked, layers included: the limit that binds
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
SKIPPED_PARTS = {"__pycache__", "bin"}  # bytecode compiled here, console scripts of the dependencies


class BuildError(Exception):
    """The artefact cannot be built as asked; the message says what to do."""


@dataclass
class Report:
    path: Path
    zipped: int
    unzipped: int
    modules: list[str]
    data_files: list[str]
    dependencies: dict[str, str]                                   # name -> version
    left_out: dict[str, list[str]] = field(default_factory=dict)   # import -> ocrlab modules importing it

    def describe(self) -> str:
        mb = lambda n: f"{n / 2**20:.1f} MB"  # noqa: E731
        lines = [f"{self.path}: {mb(self.zipped)} zipped, {mb(self.unzipped)} unzipped",
                 (f"  Lambda's limits: {mb(UNZIPPED_LIMIT)} unzipped ({100 * self.unzipped / UNZIPPED_LIMIT:.0f}% used); "
                  f"{mb(ZIPPED_LIMIT)} zipped for a direct upload ({100 * self.zipped / ZIPPED_LIMIT:.0f}%; "
                  "sam deploy uploads through S3, where only the unzipped limit applies)"),
                 f"  runtime {RUNTIME}, x86_64; {len(self.modules)} ocrlab modules, {len(self.data_files)} data files",
                 "  dependencies: " + ", ".join(f"{n} {v}" for n, v in sorted(self.dependencies.items()))]
        lines += [f"  left out: {name} (not a core dependency), imported by {', '.join(sorted(users))}"
                  for name, users in sorted(self.left_out.items())]
        return "\n".join(lines)


def entry_points() -> list[str]:
    """The handler, and the engine it runs (engines are loaded by name, so no import names it)."""
    from ocrlab.ocr.engines import REGISTRY
    return ["ocrlab.aws.handler", REGISTRY["bedrock"].split(":")[0]]


def core_requirements() -> dict[str, Requirement]:
    """ocrlab's own dependencies (not its extras), by canonical name, from pyproject.toml."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {canonicalize_name(r.name): r for r in map(Requirement, project["dependencies"])}


def _with_dependencies(names: Iterable[str]) -> set[str]:
    """The distributions and, as installed here, everything they require (extras aside)."""
    found: set[str] = set()
    pending = list(names)
    while pending:
        name = pending.pop()
        if name in found:
            continue
        found.add(name)
        for text in importlib.metadata.requires(name) or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(canonicalize_name(requirement.name))
    return found


def needed_distributions(found: Closure) -> tuple[set[str], dict[str, list[str]]]:
    """The distributions the closure imports that ocrlab requires (directly or through another),
    and the imports left out: optional extras, or unknown here."""
    core = _with_dependencies(core_requirements())
    providers = importlib.metadata.packages_distributions()
    needed: set[str] = set()
    left_out: dict[str, list[str]] = {}
    for name, users in found.imports.items():
        dists = {canonicalize_name(d) for d in providers.get(name, [])} & core
        if dists:
            needed |= dists
        else:
            left_out[name] = sorted(users)
    return needed, left_out


def read_lock(path: Path = LOCK) -> dict[str, str]:
    """name -> version of every pinned distribution."""
    if not path.exists():
        raise BuildError(f"{path} is missing: run `python -m deploy.package --lock`")
    pins: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, rest = line.partition("==")
            pins[canonicalize_name(name)] = rest.split()[0]
    return pins


def _pip(*args: str) -> None:
    run = subprocess.run([sys.executable, "-m", "pip", *args, "--disable-pip-version-check",
                          "--only-binary=:all:", "--implementation", "cp", "--python-version", PYTHON_VERSION,
                          *(a for p in PLATFORMS for a in ("--platform", p))],
                         capture_output=True, text=True, timeout=900)
    if run.returncode != 0:
        errors = [line for line in run.stderr.splitlines() if "is ignored" not in line]
        raise BuildError("pip failed:\n" + "\n".join(errors[-20:]))


def lock(path: Path = LOCK) -> dict[str, str]:
    """Pin the needed distributions and their dependencies, at the versions installed here, to runtime wheels."""
    needed, _ = needed_distributions(closure(entry_points(), REPO))
    core = core_requirements()
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()}
    with tempfile.TemporaryDirectory() as tmp:
        constraints = Path(tmp, "constraints.txt")
        constraints.write_text("".join(f"{n}=={v}\n" for n, v in sorted(installed.items())), encoding="utf-8")
        report = Path(tmp, "report.json")
        _pip("install", "--dry-run", "--quiet", "--ignore-installed", "--target", str(Path(tmp, "site")),
             "--report", str(report), "-c", str(constraints), *(str(core.get(n, n)) for n in sorted(needed)))
        chosen = json.loads(report.read_text(encoding="utf-8"))["install"]
    pins = {canonicalize_name(c["metadata"]["name"]): (c["metadata"]["version"],
                                                       c["download_info"]["archive_info"]["hashes"]["sha256"])
            for c in chosen}
    path.write_text(
        f"# The Lambda function's dependencies: wheels for {RUNTIME} on manylinux x86_64, at the versions the\n"
        "# tests ran with. Written by `python -m deploy.package --lock`; `make package` installs exactly these.\n"
        + "".join(f"{n}=={v} --hash=sha256:{h}\n" for n, (v, h) in sorted(pins.items())), encoding="utf-8")
    return {n: v for n, (v, _) in pins.items()}


def _zip_tree(root: Path, out: zipfile.ZipFile) -> None:
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and not SKIPPED_PARTS & set(rel.parts):
            _add(out, path, rel.as_posix())


def _add(out: zipfile.ZipFile, path: Path, name: str) -> None:
    info = zipfile.ZipInfo(name, ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16  # readable by the runtime's user; nothing needs to be executable
    out.writestr(info, path.read_bytes())


def dependencies_zip(lock_file: Path = LOCK, cache: Path = CACHE) -> Path:
    """The locked distributions installed for the runtime and zipped, once per lock."""
    key = hashlib.sha256("\n".join([lock_file.read_text(encoding="utf-8"), RUNTIME, *PLATFORMS]).encode())
    target = cache / f"dependencies-{key.hexdigest()[:16]}.zip"
    if target.exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        site = Path(tmp, "site")
        _pip("install", "--quiet", "--no-deps", "--require-hashes", "--no-compile", "--target", str(site),
             "-r", str(lock_file))
        partial = Path(tmp, "dependencies.zip")
        with zipfile.ZipFile(partial, "w") as out:
            _zip_tree(site, out)
        os.replace(partial, target)
    return target


def package_files(found: Closure) -> Iterator[tuple[Path, str]]:
    """(file, name in the zip) of each module, then of the package data whose package ships (the prompts)."""
    for path in found.files(REPO):
        yield path, path.relative_to(REPO).as_posix()
    shipped = {module_file(REPO, m).parent for m in found.modules if module_file(REPO, m).name == "__init__.py"}
    data = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["package-data"]
    for pattern in data["ocrlab"]:
        for path in sorted((REPO / "ocrlab").glob(pattern)):
            owner = next(p for p in path.parents if (p / "__init__.py").exists())
            if owner in shipped:
                yield path, path.relative_to(REPO).as_posix()


def build(output: Path = OUTPUT, cache: Path = CACHE, lock_file: Path = LOCK) -> Report:
    found = closure(entry_points(), REPO)
    needed, left_out = needed_distributions(found)
    pins = read_lock(lock_file)
    if missing := needed - pins.keys():
        raise BuildError(f"{lock_file} lacks {', '.join(sorted(missing))}, which the handler imports: "
                         "run `python -m deploy.package --lock`")
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_suffix(".partial")
    shutil.copyfile(dependencies_zip(lock_file, cache), partial)
    files = list(package_files(found))
    with zipfile.ZipFile(partial, "a") as out:
        for path, name in files:
            _add(out, path, name)
        unzipped = sum(info.file_size for info in out.infolist())
    os.replace(partial, output)
    if unzipped > UNZIPPED_LIMIT:
        raise BuildError(f"{output} unzips to {unzipped / 2**20:.1f} MB, over Lambda's {UNZIPPED_LIMIT / 2**20:.0f} MB")
    return Report(output, output.stat().st_size, unzipped, sorted(found.modules),
                  [name for _, name in files if not name.endswith(".py")], pins, left_out)


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.package", description=__doc__.splitlines()[0])
    parser.add_argument("--lock", action="store_true", help="pin the dependencies (deploy/requirements.lock) first")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(None if argv is None else list(argv))
    try:
        if args.lock:
            pins = lock()
            print(f"{LOCK}: {len(pins)} distributions pinned")
        print(build(args.output).describe())
    except BuildError as exc:
        print(f"deploy.package: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
