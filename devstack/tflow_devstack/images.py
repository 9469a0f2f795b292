"""The project's container images, built on this machine: no Docker daemon, no registry.

Two steps, each cached under the per-user cache (``<cache>/images``), never in the
repository:

1. **The base**: a minimal Debian bookworm made by ``debootstrap --variant=minbase`` with
   Debian's Python 3.11 (plus ``python3-venv``, ``ca-certificates``, ``tzdata``), apt's lists,
   caches, logs and documentation removed. Its root file system is kept as a tarball keyed
   by what defines it (release, variant, package list, this recipe's version), and turned
   into ``localhost/temporal-flow-base:bookworm-<key>`` in buildah's local storage with
   ``buildah from scratch`` + ``buildah add`` of that tarball (buildah unpacks it, owners and
   modes kept) + ``buildah config`` + ``buildah commit``: a one-layer image, no hand-written
   image metadata and no registry.
2. **The images** from the project's Dockerfile with buildah (``--isolation chroot``, so no
   OCI runtime is needed for ``RUN``; ``--network host`` for PyPI; ``--pull=never``, so a
   missing base fails instead of reaching for a registry), one per target: ``production``
   (``localhost/temporal-flow:<tag>``) and ``samples`` (``localhost/temporal-flow-samples:<tag>``).
   The tag is a hash of everything that goes in (the Dockerfile, pyproject.toml, uv.lock,
   the copied source trees, the base, the uv version, the target), so an unchanged tree -- a
   fresh clone of the same commit too -- reuses the cached archive and a changed tree gets
   a new tag. Each image is saved as a docker-archive (``<cache>/images/<name>-<tag>.tar``):
   its manifest carries the full reference, which ``ctr images import``, ``docker load`` and
   ``kind load image-archive`` all keep as the image's name.

``python -m tflow_devstack.images build`` builds (or reuses) and prints the references;
``python -m tflow_devstack.images import --address <containerd socket>`` imports them.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import fnmatch
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from tflow_devstack.tools import REPO_ROOT, cache_dir, versions

REGISTRY: Final = "localhost"
BASE_NAME: Final = "temporal-flow-base"
BASE_SUITE: Final = "bookworm"
BASE_VARIANT: Final = "minbase"
BASE_PACKAGES: Final = ("python3", "python3-venv", "ca-certificates", "tzdata")
# Bumped whenever _clean_rootfs or the base's config changes, so the key changes too.
BASE_RECIPE: Final = "1"

# Dockerfile target -> image name, and the trees the target's stages COPY.
TARGETS: Final[dict[str, str]] = {
    "production": "temporal-flow",
    "samples": "temporal-flow-samples",
}
_COMMON_FILES: Final = (
    "Dockerfile",
    ".dockerignore",
    "pyproject.toml",
    "uv.lock",
    "README.md",
    "hack/uv-requirements.txt",
)
_TREES: Final[dict[str, tuple[str, ...]]] = {
    "production": ("operator", "workers", "listeners", "cli"),
    "samples": ("operator", "workers", "listeners", "cli", "samples"),
}

# Generous bounds: a cold debootstrap takes about a minute, a cold build a few; a step
# that exceeds them is stuck (a dead mirror, a hung download), and is stopped.
DEBOOTSTRAP_TIMEOUT: Final = 20 * 60.0
BUILD_TIMEOUT: Final = 40 * 60.0
IMPORT_TIMEOUT: Final = 10 * 60.0


class ImageBuildError(RuntimeError):
    """A step of making or importing an image failed; the message is one line naming the
    step, the cause (the last line of its log) and the log file."""


@dataclass(frozen=True)
class BuiltImage:
    target: str
    reference: str  # e.g. localhost/temporal-flow:3f2a...
    archive: Path  # a docker-archive whose manifest names `reference`

    @property
    def tag(self) -> str:
        return self.reference.rsplit(":", 1)[1]


def images_dir() -> Path:
    return cache_dir() / "images"


# -- running the tools --------------------------------------------------------------------


def _require(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise ImageBuildError(
            f"{tool} is not installed (Debian package {package}): run `make image-tools`"
        )
    return path


def _failure_cause(log: Path) -> str:
    """The log's last line; for a failed Dockerfile step, the step and the line its command
    printed last (buildah's own last line only says "exit status 1")."""
    try:
        lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines()]
    except OSError:
        return ""
    lines = [ln for ln in lines if ln]
    if not lines:
        return ""
    last = lines[-1]
    if last.startswith("Error: building at STEP"):
        step = last.removeprefix("Error: building at ").rsplit(":", 1)[0]
        step = " ".join(step.split())
        if len(step) > 120:
            step = step[:117] + '..."'
        earlier = [ln for ln in lines[:-1] if not ln.startswith("subprocess exited")]
        if earlier:
            return f"{step}: {earlier[-1][:240]}"
        return step
    return last[:300]


def _run_logged(
    step: str, argv: Sequence[str], log: Path, timeout: float, *, append: bool = False
) -> None:
    """Run one step with its output in `log`; any failure is one ImageBuildError line."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab" if append else "wb") as out:
        out.write(("$ " + " ".join(argv) + "\n").encode())
        out.flush()
        try:
            proc = subprocess.run(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ImageBuildError(
                f"{step} did not finish within {timeout:.0f}s; log: {log}"
            ) from None
    if proc.returncode != 0:
        cause = _failure_cause(log) or f"exit status {proc.returncode}"
        raise ImageBuildError(f"{step} failed: {cause} (log: {log})")


def _capture(argv: Sequence[str], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """One image build at a time per cache (a test and `make image` may race)."""
    images_dir().mkdir(parents=True, exist_ok=True)
    with (images_dir() / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def image_present(reference: str) -> bool:
    """Whether buildah's local storage has `reference`."""
    buildah = _require("buildah", "buildah")
    return _capture([buildah, "inspect", "--type", "image", reference]).returncode == 0


# -- the base -----------------------------------------------------------------------------


def _architecture() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def base_key() -> str:
    """What defines the base: Debian release, variant, packages, architecture, recipe."""
    spec = "\n".join(
        [BASE_SUITE, BASE_VARIANT, ",".join(sorted(BASE_PACKAGES)), _architecture(), BASE_RECIPE]
    )
    return hashlib.sha256(spec.encode()).hexdigest()[:12]


def base_reference() -> str:
    return f"{REGISTRY}/{BASE_NAME}:{BASE_SUITE}-{base_key()}"


def base_rootfs_tarball() -> Path:
    return images_dir() / f"rootfs-{BASE_SUITE}-{base_key()}.tar"


def _clean_rootfs(root: Path) -> None:
    """What an image needs none of: apt's package lists and downloaded .debs, logs, manual
    pages, translations, documentation (the copyright files stay), and the build host's
    name and resolver (a container runtime provides its own)."""

    def empty(directory: Path, keep: tuple[str, ...] = ()) -> None:
        if not directory.is_dir():
            return
        for child in directory.iterdir():
            if child.name in keep:
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()

    empty(root / "var/lib/apt/lists", keep=("partial", "lock"))
    empty(root / "var/cache/apt/archives", keep=("partial", "lock"))
    for binary in (root / "var/cache/apt").glob("*.bin"):
        binary.unlink()
    empty(root / "var/cache/debconf", keep=("config.dat", "templates.dat"))
    for leftover in (root / "var/cache/debconf").glob("*-old"):
        leftover.unlink()
    empty(root / "var/log")
    empty(root / "usr/share/man")
    empty(root / "usr/share/info")
    empty(root / "usr/share/locale")
    empty(root / "tmp")
    doc = root / "usr/share/doc"
    if doc.is_dir():
        for package in doc.iterdir():
            if package.is_dir() and not package.is_symlink():
                for item in package.iterdir():
                    if item.name == "copyright":
                        continue
                    if item.is_dir() and not item.is_symlink():
                        shutil.rmtree(item)
                    else:
                        item.unlink()
    for name in ("etc/hostname", "etc/resolv.conf"):
        target = root / name
        if target.is_symlink() or target.exists():
            target.unlink()
        target.write_text("")


def build_base_rootfs() -> Path:
    """The base's root file system as a tarball in the cache (debootstrap when missing)."""
    tarball = base_rootfs_tarball()
    if tarball.is_file():
        return tarball
    debootstrap = _require("debootstrap", "debootstrap")
    tar = _require("tar", "tar")
    logs = images_dir() / "logs"
    work = Path(tempfile.mkdtemp(prefix="rootfs-", dir=images_dir()))
    try:
        root = work / "root"
        argv = [
            debootstrap,
            f"--variant={BASE_VARIANT}",
            f"--arch={_architecture()}",
            "--include=" + ",".join(BASE_PACKAGES),
            BASE_SUITE,
            str(root),
        ]
        # Debian's own archive unless a mirror is given (debootstrap's default otherwise).
        if mirror := os.environ.get("TFLOW_DEBIAN_MIRROR"):
            argv.append(mirror)
        _run_logged(
            f"debootstrap of the {BASE_SUITE} base",
            argv,
            logs / f"debootstrap-{base_key()}.log",
            DEBOOTSTRAP_TIMEOUT,
        )
        _clean_rootfs(root)
        partial = work / "rootfs.tar"
        _run_logged(
            "packing the base's root file system",
            [tar, "--numeric-owner", "--xattrs", "-C", str(root), "-cf", str(partial), "."],
            logs / f"rootfs-tar-{base_key()}.log",
            DEBOOTSTRAP_TIMEOUT,
        )
        partial.rename(tarball)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return tarball


def ensure_base_image() -> str:
    """The base in buildah's storage (from the cached tarball, made first when missing)."""
    reference = base_reference()
    if image_present(reference):
        return reference
    tarball = build_base_rootfs()
    buildah = _require("buildah", "buildah")
    log = images_dir() / "logs" / f"base-{base_key()}.log"
    made = _capture([buildah, "from", "--pull=never", "scratch"])
    if made.returncode != 0:
        raise ImageBuildError(f"buildah from scratch failed: {made.stderr.strip()[:300]}")
    container = made.stdout.strip().splitlines()[-1]
    try:
        _run_logged(
            "adding the base's root file system",
            [buildah, "add", container, str(tarball), "/"],
            log,
            BUILD_TIMEOUT,
        )
        _run_logged(
            "configuring the base image",
            [
                buildah,
                "config",
                "--env",
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "--env",
                "LANG=C.UTF-8",
                "--cmd",
                "python3",
                "--os",
                "linux",
                "--arch",
                _architecture(),
                "--label",
                f"org.opencontainers.image.description=Debian {BASE_SUITE} {BASE_VARIANT} "
                f"with {' '.join(BASE_PACKAGES)}",
                container,
            ],
            log,
            60.0,
            append=True,
        )
        _run_logged(
            "committing the base image",
            [buildah, "commit", "--rm", container, reference],
            log,
            BUILD_TIMEOUT,
            append=True,
        )
    except BaseException:
        _capture([buildah, "rm", container])
        raise
    return reference


# -- the project's images -----------------------------------------------------------------


def _ignore_patterns(root: Path) -> list[str]:
    lines = (root / ".dockerignore").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def _ignored(relative: str, patterns: Sequence[str]) -> bool:
    """The .dockerignore subset used here: `name` (at the top), `**/name` (anywhere)."""
    parts = relative.split("/")
    for pattern in patterns:
        if pattern.startswith("**/"):
            if any(fnmatch.fnmatchcase(part, pattern[3:]) for part in parts):
                return True
        elif fnmatch.fnmatchcase(parts[0], pattern) and "/" not in pattern:
            return True
    return False


def image_inputs(target: str, root: Path | None = None) -> list[Path]:
    """Every file the target's build reads from the repository, sorted."""
    if target not in TARGETS:
        raise ValueError(f"unknown image target {target!r} (known: {', '.join(TARGETS)})")
    root = root or REPO_ROOT
    patterns = _ignore_patterns(root)
    files = [root / name for name in _COMMON_FILES]
    for tree in _TREES[target]:
        for path in (root / tree).rglob("*"):
            relative = path.relative_to(root).as_posix()
            if (path.is_file() or path.is_symlink()) and not _ignored(relative, patterns):
                files.append(path)
    return sorted(files)


def image_tag(target: str, base: str, root: Path | None = None) -> str:
    """A hash of the target's inputs: file names, contents and executable bits, the base
    reference (itself keyed by the base's definition), the uv version and the target."""
    root = root or REPO_ROOT
    digest = hashlib.sha256()
    for key, value in (("target", target), ("base", base), ("uv", versions()["UV_VERSION"])):
        digest.update(f"{key}={value}\0".encode())
    for path in image_inputs(target, root):
        relative = path.relative_to(root).as_posix()
        executable = os.access(path, os.X_OK)
        digest.update(f"{relative}\0{int(executable)}\0".encode())
        digest.update(os.readlink(path).encode() if path.is_symlink() else path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def image_reference(target: str, base: str | None = None) -> str:
    tag = image_tag(target, base or base_reference())
    return f"{REGISTRY}/{TARGETS[target]}:{tag}"


# Where the build's RUN steps find the host's CA bundle: over the base's own bundle (Debian's
# path, in both bases), so the mount point exists and leaves nothing behind in a layer.
_BUILD_CA_PATH: Final = "/etc/ssl/certs/ca-certificates.crt"


def _host_ca_arguments() -> list[str]:
    """Mount the host's CA bundle for the build's RUN steps and point pip and uv at it, so a
    build behind a TLS-intercepting proxy trusts what the host trusts. A build-time mount and
    build arguments only: the image keeps its own CA bundle."""
    bundle = Path(os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt")
    if not bundle.is_file():
        return []
    return [
        "--volume",
        f"{bundle.resolve()}:{_BUILD_CA_PATH}:ro",
        "--build-arg",
        f"PIP_CERT={_BUILD_CA_PATH}",
        "--build-arg",
        f"SSL_CERT_FILE={_BUILD_CA_PATH}",
    ]


def _archive_for(reference: str) -> Path:
    name, tag = reference.rsplit("/", 1)[1].rsplit(":", 1)
    return images_dir() / f"{name}-{tag}.tar"


def _snapshot(target: str, into: Path) -> None:
    """Copy the target's inputs into `into`, the build's context: the image is built from
    exactly the files its tag hashes, whatever changes in the working tree meanwhile."""
    for path in image_inputs(target):
        copy = into / path.relative_to(REPO_ROOT)
        copy.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink():
            copy.symlink_to(os.readlink(path))
        else:
            shutil.copy2(path, copy)


def build_image(target: str = "production", *, base: str | None = None) -> BuiltImage:
    """Build the Dockerfile's `target` on the project's base (or `base`, a reference that
    must already be in buildah's storage), or reuse the cached archive of the same inputs.

    Returns the reference and its docker-archive. Raises ImageBuildError (one line: the
    step, the cause, the log file) when a prerequisite is missing or a step fails."""
    if target not in TARGETS:
        raise ValueError(f"unknown image target {target!r} (known: {', '.join(TARGETS)})")
    with _locked():
        base_ref = base or base_reference()
        reference = image_reference(target, base_ref)
        archive = _archive_for(reference)
        if archive.is_file():
            return BuiltImage(target=target, reference=reference, archive=archive)
        context = Path(tempfile.mkdtemp(prefix="context-", dir=images_dir()))
        try:
            _snapshot(target, context)
            # The tag of what was copied (the tree may have moved on since `reference`).
            reference = f"{REGISTRY}/{TARGETS[target]}:{image_tag(target, base_ref, context)}"
            archive = _archive_for(reference)
            if not archive.is_file():
                _build(target, base, base_ref, reference, context)
                _save(target, reference, archive)
                _prune(target, keep=archive)
        finally:
            shutil.rmtree(context, ignore_errors=True)
        return BuiltImage(target=target, reference=reference, archive=archive)


def _build(target: str, base: str | None, base_ref: str, reference: str, context: Path) -> None:
    buildah = _require("buildah", "buildah")
    if base is None:
        ensure_base_image()
    elif not image_present(base):
        raise ImageBuildError(f"base image {base} is not in buildah's local storage")
    if image_present(reference):
        return
    tag = reference.rsplit(":", 1)[1]
    _run_logged(
        f"buildah build of {reference} (target {target})",
        [
            buildah,
            "build",
            "--isolation",
            "chroot",
            "--network",
            "host",
            "--pull=never",
            "--layers",
            "--target",
            target,
            "--build-arg",
            f"BASE_IMAGE={base_ref}",
            *_host_ca_arguments(),
            "--tag",
            reference,
            "--file",
            str(context / "Dockerfile"),
            str(context),
        ],
        images_dir() / "logs" / f"build-{target}-{tag}.log",
        BUILD_TIMEOUT,
    )


# Archives (and tagged images) of one target kept: the newest few, so switching between
# branches reuses them while a day of edits does not fill the disk.
KEEP_ARCHIVES: Final = 3


def _prune(target: str, keep: Path) -> None:
    name = TARGETS[target]
    archives = sorted(
        images_dir().glob(f"{name}-*.tar"), key=lambda p: p.stat().st_mtime, reverse=True
    )
    old = [a for a in archives if a != keep and a.stem.removeprefix(f"{name}-").isalnum()]
    buildah = _require("buildah", "buildah")
    for archive in old[KEEP_ARCHIVES - 1 :]:
        tag = archive.stem.removeprefix(f"{name}-")
        _capture([buildah, "rmi", f"{REGISTRY}/{name}:{tag}"])
        archive.unlink(missing_ok=True)


def _save(target: str, reference: str, archive: Path) -> None:
    """The image as a docker-archive, written aside and renamed: a present archive is whole."""
    buildah = _require("buildah", "buildah")
    tag = reference.rsplit(":", 1)[1]
    partial = archive.with_suffix(".tar.partial")
    partial.unlink(missing_ok=True)
    _run_logged(
        f"saving {reference} as a docker-archive",
        [buildah, "push", "--quiet", reference, f"docker-archive:{partial}:{reference}"],
        images_dir() / "logs" / f"save-{target}-{tag}.log",
        BUILD_TIMEOUT,
    )
    partial.rename(archive)


def ensure_in_storage(image: BuiltImage) -> None:
    """Put a built image into buildah's local storage from its archive, if it is not there
    (a cache filled on another run, storage cleaned since)."""
    if image_present(image.reference):
        return
    buildah = _require("buildah", "buildah")
    _run_logged(
        f"loading {image.reference} into buildah's storage",
        [buildah, "pull", "--quiet", f"docker-archive:{image.archive}"],
        images_dir() / "logs" / f"load-{image.tag}.log",
        IMPORT_TIMEOUT,
    )


def import_image(archive: Path, containerd_address: str, namespace: str = "k8s.io") -> None:
    """Import a docker-archive into containerd at `containerd_address` (its socket) in
    `namespace` (the CRI plugin's, so kubelet sees it), unpacked for the default snapshotter.
    The image keeps the full reference from the archive (localhost/<name>:<tag>)."""
    ctr = _require("ctr", "containerd")
    _run_logged(
        f"ctr images import of {archive.name}",
        [ctr, "--address", containerd_address, "-n", namespace, "images", "import", str(archive)],
        images_dir() / "logs" / f"import-{archive.stem}.log",
        IMPORT_TIMEOUT,
    )


# -- command line -------------------------------------------------------------------------


def cached_image(target: str = "production") -> BuiltImage | None:
    """The target's image for the tree as it is, if its archive is already in the cache."""
    reference = image_reference(target)
    archive = _archive_for(reference)
    return BuiltImage(target, reference, archive) if archive.is_file() else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tflow_devstack.images", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build (or reuse) the images, print them")
    build.add_argument("--target", action="append", choices=sorted(TARGETS))
    load = commands.add_parser("import", help="build (or reuse) and import into containerd")
    load.add_argument("--target", action="append", choices=sorted(TARGETS))
    load.add_argument("--address", required=True, help="containerd's socket")
    load.add_argument("--namespace", default="k8s.io")
    cached = commands.add_parser(
        "cached", help="print `<reference> <archive>` if built for this tree, else exit 1"
    )
    cached.add_argument("--target", default="production", choices=sorted(TARGETS))
    args = parser.parse_args(argv)
    try:
        if args.command == "cached":
            found = cached_image(args.target)
            if found is None:
                return 1
            print(found.reference, found.archive)
            return 0
        for target in args.target or ["production", "samples"]:
            image = build_image(target)
            if args.command == "import":
                import_image(image.archive, args.address, args.namespace)
            print(f"{image.target:<11} {image.reference}  {image.archive}")
    except ImageBuildError as exc:
        print(f"image: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
