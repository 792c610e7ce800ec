"""Build the Blender extension zips: dist/infinite_landmarks-<version>-<platform>.zip, one per platform.

    python build_addon.py                          # every platform whose wheels can be downloaded
    python build_addon.py --platform linux-x64     # one platform (linux-x64, windows-x64, macos-arm64, macos-x64)

What goes in (a private folder under build/, then zipped by Blender's own extension builder):
- blender_addon/ (the add-on) with its blender_manifest.toml, whose `platforms` and `wheels` are rewritten to
  what was actually downloaded;
- vendor/core: the project's `core` package WITHOUT core/model (torch); the build fails if any vendored module
  imports torch, or imports scipy at module level (Blender has neither). It is a subpackage of the extension
  (bl_ext.<repo>.infinite_landmarks.vendor.core), never a top-level `core` that another add-on's `core` could
  shadow or be shadowed by: core imports itself relatively, and the staged add-on's `from core... import`
  lines are rewritten to relative imports of vendor.core (as pip's vendoring tool rewrites vendored imports);
- vendor/core/assets: layouts, the default model (assets/models/default.onnx and its card) when it exists, and
  the ICT face model npz with its MIT LICENSE, README and a NOTICE (from assets/facekit or ../shared/facekit);
- wheels/: onnxruntime and opencv-python-headless for Python 3.11 (Blender 4.2-5.x), downloaded with pip for each
  platform and cached in build/wheels/<platform>/; a platform whose wheels cannot be fetched is skipped with a
  warning. numpy comes with Blender and is not bundled.

Each zip is then checked with Blender's validator (`blender_ext.py validate`, found in the installed bpy module,
or `blender --command extension validate` when a `blender` binary is on PATH).
"""
from __future__ import annotations

import argparse
import importlib.util
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent
ADDON_SRC = ROOT / "blender_addon"
CORE_SRC = ROOT / "core"
ASSETS_SRC = ROOT / "assets"
# core.runtime.session.BUNDLED_MODELS' files, the default first (tests/test_models.py checks they agree).
BUNDLED_MODEL_FILES = ("default.onnx", "permissive.onnx")
BUILD_DIR = ROOT / "build"
WHEEL_CACHE = BUILD_DIR / "wheels"
DIST_DIR = ROOT / "dist"
FACEKIT_DIRS = (ASSETS_SRC / "facekit", ROOT.parent / "shared" / "facekit")
FACEKIT_FILES = ("ict_facekit_light.npz", "LICENSE", "README.md")

PYTHON_VERSION = "3.11"  # Blender 4.2 to 5.x
REQUIREMENTS = ("onnxruntime==1.20.1", "opencv-python-headless==4.11.0.86")
# Blender platform -> pip --platform tags, most specific first (pip accepts any of them).
PLATFORM_TAGS: dict[str, tuple[str, ...]] = {
    "linux-x64": ("manylinux_2_28_x86_64", "manylinux2014_x86_64"),
    "windows-x64": ("win_amd64",),
    # onnxruntime 1.20.1 ships macOS 13 universal2 wheels; the tag below accepts macOS <= 14 builds.
    "macos-arm64": ("macosx_14_0_arm64",),
    "macos-x64": ("macosx_14_0_x86_64",),
}

FACEKIT_NOTICE = """The ICT Face Model Light (ict_facekit_light.npz, packed from ICT-FaceKit's FaceXModel) is
Copyright (c) 2020 USC Institute for Creative Technologies and licensed under the MIT License: see LICENSE in
this folder, which must accompany every copy. The rest of the Infinite Landmarks add-on is GPL-3.0-or-later.
"""
TORCH_IMPORT = re.compile(r"^\s*(import|from)\s+torch\b", re.MULTILINE)
TOP_LEVEL_SCIPY_IMPORT = re.compile(r"^(import|from)\s+scipy\b", re.MULTILINE)
CORE_FROM_IMPORT = re.compile(r"^(\s*)from core((?:\.\w+)*) import ", re.MULTILINE)
ABSOLUTE_CORE_IMPORT = re.compile(r"^\s*(import\s+core\b|from\s+core\b)", re.MULTILINE)


class BuildError(RuntimeError):
    pass


def log(message: str) -> None:
    print(f"build_addon: {message}", flush=True)


def warn(message: str) -> None:
    print(f"build_addon: WARNING: {message}", file=sys.stderr, flush=True)


def read_manifest() -> dict:
    with open(ADDON_SRC / "blender_manifest.toml", "rb") as fh:
        return tomllib.load(fh)


# --- wheels -----------------------------------------------------------------------------------------------------

def _requirement_name(requirement: str) -> str:
    """'opencv-python-headless==4.11.0.86' -> 'opencv_python_headless-4.11.0.86' (a wheel file name prefix)."""
    name, version = requirement.split("==")
    return f"{name.replace('-', '_')}-{version}-"


def cached_wheels(platform: str) -> list[Path] | None:
    """The cached wheels of a platform when every requirement is there, else None."""
    folder = WHEEL_CACHE / platform
    wheels = sorted(folder.glob("*.whl")) if folder.is_dir() else []
    found = [next((w for w in wheels if w.name.startswith(_requirement_name(r))), None) for r in REQUIREMENTS]
    return None if None in found else found  # type: ignore[return-value]


def download_wheels(platform: str) -> list[Path] | None:
    """Wheels for one platform (cached in build/wheels/<platform>), or None with a warning when unavailable."""
    wheels = cached_wheels(platform)
    if wheels is not None:
        log(f"{platform}: cached wheels {', '.join(w.name for w in wheels)}")
        return wheels
    folder = WHEEL_CACHE / platform
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
               "--only-binary=:all:", "--no-deps", "--python-version", PYTHON_VERSION, "--dest", str(folder)]
    for tag in PLATFORM_TAGS[platform]:
        command += ["--platform", tag]
    command += list(REQUIREMENTS)
    log(f"{platform}: downloading {' '.join(REQUIREMENTS)}")
    result = subprocess.run(command, capture_output=True, text=True)
    wheels = cached_wheels(platform)
    if result.returncode != 0 or wheels is None:
        reason = (result.stderr.strip().splitlines() or ["no matching wheel"])[-1]
        warn(f"{platform}: skipped, its wheels could not be downloaded ({reason})")
        return None
    return wheels


# --- staging ----------------------------------------------------------------------------------------------------

def _ignore_build_junk(folder: str, names: list[str]) -> set[str]:
    return {n for n in names if n == "__pycache__" or n.endswith((".pyc", ".blend1")) or n.startswith(".")}


def copy_addon(stage: Path) -> None:
    shutil.copytree(ADDON_SRC, stage, ignore=_ignore_build_junk)
    for generated in ("vendor", "wheels"):  # never take stale build output from the source folder
        shutil.rmtree(stage / generated, ignore_errors=True)


def import_vendored_core(stage: Path) -> None:
    """Rewrite the staged add-on's `from core.x import y` to `from .vendor.core.x import y` (dots by depth).

    Anything else that names the top-level `core` (`import core`, or core importing itself absolutely) fails the
    build: it would load some other add-on's `core`, or put ours where theirs is looked for.
    """
    problems = []
    for path in sorted(stage.rglob("*.py")):
        relative = path.relative_to(stage)
        text = path.read_text(encoding="utf-8")
        if relative.parts[0] != "vendor":
            dots = "." * len(relative.parts)  # __init__.py: 1 (the package itself); scene/rig.py: 2
            text = CORE_FROM_IMPORT.sub(lambda m: f"{m.group(1)}from {dots}vendor.core{m.group(2)} import ", text)
            path.write_text(text, encoding="utf-8")
        for match in ABSOLUTE_CORE_IMPORT.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            problems.append(f"{relative}:{line} imports the top-level `core`")
    if problems:
        raise BuildError("the add-on must import its vendored core relatively: " + "; ".join(problems))


def vendor_core(stage: Path) -> Path:
    """Copy core/ without core/model into vendor/core and check nothing in it needs torch (or scipy at import)."""
    target = stage / "vendor" / "core"

    def ignore(folder: str, names: list[str]) -> set[str]:
        skipped = _ignore_build_junk(folder, names)
        if Path(folder).resolve() == CORE_SRC.resolve():
            skipped |= {"model", "assets"}  # torch lives in core/model; assets are added below, selectively
        return skipped

    shutil.copytree(CORE_SRC, target, ignore=ignore)
    problems = []
    for path in sorted(target.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if TORCH_IMPORT.search(text):
            problems.append(f"{path.relative_to(stage)} imports torch")
        if TOP_LEVEL_SCIPY_IMPORT.search(text):
            problems.append(f"{path.relative_to(stage)} imports scipy at module level")
    if problems:
        raise BuildError("the vendored core cannot run inside Blender: " + "; ".join(problems))
    return target


def copy_assets(core_dir: Path) -> None:
    """Layouts, the bundled models and their cards, the face model with its licence (core.paths finds core/assets)."""
    assets = core_dir / "assets"
    shutil.copytree(ASSETS_SRC / "layouts", assets / "layouts", ignore=_ignore_build_junk)

    models = ASSETS_SRC / "models"
    bundled = [models / file for file in BUNDLED_MODEL_FILES if (models / file).is_file()]
    if bundled:
        (assets / "models").mkdir(parents=True)
        for model in bundled:
            shutil.copy2(model, assets / "models")
            log(f"bundled model {model.relative_to(ROOT)} ({model.stat().st_size / 2**20:.1f} MB)")
        for card in sorted(models.glob("*")):  # the model cards and their notes travel with the models
            if card.is_file() and card.suffix.lower() in (".md", ".txt", ".json", ".yaml", ".yml"):
                shutil.copy2(card, assets / "models")
    if not (models / BUNDLED_MODEL_FILES[0]).is_file():
        warn(f"{(models / BUNDLED_MODEL_FILES[0]).relative_to(ROOT)} does not exist: the add-on is built without "
             f"its default model (users set one in the preferences)")

    source = next((d for d in FACEKIT_DIRS if (d / FACEKIT_FILES[0]).is_file()), None)
    if source is None:
        raise BuildError(f"the ICT face model {FACEKIT_FILES[0]} was found in none of "
                         f"{', '.join(str(d) for d in FACEKIT_DIRS)}: run `bash scripts/setup.sh` first")
    missing = [name for name in FACEKIT_FILES if not (source / name).is_file()]
    if missing:
        raise BuildError(f"{source} lacks {', '.join(missing)}: the face model may only ship with its licence")
    facekit = assets / "facekit"
    facekit.mkdir(parents=True)
    for name in FACEKIT_FILES:
        shutil.copyfile(source / name, facekit / name)  # copyfile: ../shared is read-only, the copy must not be
    (facekit / "NOTICE.txt").write_text(FACEKIT_NOTICE, encoding="utf-8")


def toml_list(values: list[str]) -> str:
    return "[\n" + "".join(f'  "{v}",\n' for v in values) + "]"


def write_manifest(stage: Path, platforms: list[str], wheels: list[str]) -> None:
    """The source manifest with `platforms` and `wheels` replaced by what this build bundles."""
    path = stage / "blender_manifest.toml"
    text = path.read_text(encoding="utf-8")
    for key, values in (("platforms", platforms), ("wheels", wheels)):
        text, count = re.subn(rf"^{key}\s*=\s*\[.*?\]", f"{key} = {toml_list(values)}", text,
                              flags=re.MULTILINE | re.DOTALL)
        if count != 1:
            raise BuildError(f"blender_manifest.toml must have exactly one top-level `{key} = [...]` list")
    path.write_text(text, encoding="utf-8")


def check_manifest_wheels(manifest: dict, wheels: list[str]) -> None:
    """Warn when the checked-in manifest lists other wheel files than the build downloaded (version bump)."""
    listed = {Path(w).name for w in manifest.get("wheels", [])}
    unexpected = sorted({Path(w).name for w in wheels} - listed)
    if unexpected:
        warn(f"blender_addon/blender_manifest.toml does not list {', '.join(unexpected)}: update its `wheels`")


# --- Blender's extension tool ---------------------------------------------------------------------------------

def extension_tool() -> list[str]:
    """Command prefix of Blender's extension builder/validator: the bpy module's copy, or a blender binary."""
    spec = importlib.util.find_spec("bpy")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            scripts = sorted(Path(location).glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
            if scripts:
                return [sys.executable, str(scripts[-1])]
    blender = shutil.which("blender")
    if blender:
        return [blender, "--background", "--factory-startup", "--command", "extension"]
    raise BuildError("Blender's extension tool was not found: install the bpy module (pip install bpy) or put "
                     "a `blender` binary on PATH")


def run_tool(tool: list[str], *args: str) -> str:
    result = subprocess.run([*tool, *args], capture_output=True, text=True)
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        raise BuildError(f"`{' '.join(args[:1])}` failed:\n{output}")
    return output


# --- the build ----------------------------------------------------------------------------------------------------

def build(platforms: list[str], dist: Path = DIST_DIR) -> list[Path]:
    manifest = read_manifest()
    tool = extension_tool()

    wheels_by_platform = {p: download_wheels(p) for p in platforms}
    available = [p for p in platforms if wheels_by_platform[p] is not None]
    if not available:
        raise BuildError(f"no wheels could be downloaded for {', '.join(platforms)}: nothing to build")

    # A private staging folder: two builds at once (tests, a developer) must not share one.
    BUILD_DIR.mkdir(exist_ok=True)
    staging_root = Path(tempfile.mkdtemp(prefix="extension-", dir=BUILD_DIR))
    try:
        return _build_staged(staging_root / manifest["id"], manifest, tool, available, wheels_by_platform, dist)
    finally:
        shutil.rmtree(staging_root, ignore_errors=True)


def _build_staged(stage: Path, manifest: dict, tool: list[str], available: list[str],
                  wheels_by_platform: dict[str, list[Path] | None], dist: Path) -> list[Path]:
    ext_id, version = manifest["id"], manifest["version"]
    copy_addon(stage)
    copy_assets(vendor_core(stage))
    import_vendored_core(stage)
    wheel_dir = stage / "wheels"
    wheel_dir.mkdir()
    wheel_paths: list[str] = []
    for platform in available:
        for wheel in wheels_by_platform[platform]:
            if not (wheel_dir / wheel.name).exists():  # universal2 wheels serve both macOS platforms
                shutil.copy2(wheel, wheel_dir / wheel.name)
                wheel_paths.append(f"./wheels/{wheel.name}")
    check_manifest_wheels(manifest, wheel_paths)
    write_manifest(stage, available, wheel_paths)

    dist.mkdir(parents=True, exist_ok=True)
    zips = [dist / f"{ext_id}-{version}-{p.replace('-', '_')}.zip" for p in available]
    for path in zips:
        path.unlink(missing_ok=True)
    log(f"building {', '.join(available)} with Blender's extension builder")
    run_tool(tool, "build", "--split-platforms", "--source-dir", str(stage), "--output-dir", str(dist))
    for path in zips:
        if not path.is_file():
            raise BuildError(f"Blender's builder did not write {path}")
        run_tool(tool, "validate", str(path))
        log(f"wrote and validated {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} "
            f"({path.stat().st_size / 2**20:.1f} MB)")
    return zips


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platform", action="append", choices=sorted(PLATFORM_TAGS),
                        help="build for this platform only (repeatable; default: all)")
    parser.add_argument("--dist", type=Path, default=DIST_DIR, help="output folder (default dist/)")
    args = parser.parse_args(argv)
    try:
        build(args.platform or list(PLATFORM_TAGS), args.dist)
    except BuildError as exc:
        print(f"build_addon: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
