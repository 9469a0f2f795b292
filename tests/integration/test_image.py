"""The project's images, built here with buildah on the Debian base made by debootstrap
(or reused from the cache when the tree is unchanged), checked as built: the config, the
entry points run inside the image as its user, what is and is not installed, the archive's
name, and an import into a real containerd that keeps that name.

Cold (empty cache) this builds the base and both images, a few minutes; warm it reuses the
cached archives and takes seconds."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tflow_devstack import images

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]

ENTRY_POINTS = ("tflow", "tflow-operator", "tflow-worker", "tflow-listener")


def buildah(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["buildah", *args], capture_output=True, text=True, timeout=300, check=False
    )
    if check:
        assert result.returncode == 0, f"buildah {' '.join(args)}: {result.stderr}"
    return result


class Container:
    """A buildah working container of an image, to run commands in (chroot isolation, as
    the image's user) and to read its file system."""

    def __init__(self, image: images.BuiltImage) -> None:
        images.ensure_in_storage(image)
        self.name = buildah("from", "--pull=never", "--quiet", image.reference).stdout.strip()
        self.root = Path(buildah("mount", self.name).stdout.strip())

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return buildah("run", "--isolation", "chroot", self.name, "--", *argv, check=False)

    def python(self, code: str) -> subprocess.CompletedProcess[str]:
        return self.run("python", "-c", code)

    def remove(self) -> None:
        buildah("umount", self.name, check=False)
        buildah("rm", self.name, check=False)


@pytest.fixture(scope="module")
def production() -> images.BuiltImage:
    return images.build_image("production")


@pytest.fixture(scope="module")
def samples() -> images.BuiltImage:
    return images.build_image("samples")


@pytest.fixture(scope="module")
def production_container(production: images.BuiltImage) -> Iterator[Container]:
    container = Container(production)
    try:
        yield container
    finally:
        container.remove()


@pytest.fixture(scope="module")
def samples_container(samples: images.BuiltImage) -> Iterator[Container]:
    container = Container(samples)
    try:
        yield container
    finally:
        container.remove()


def config(reference: str) -> dict[str, object]:
    inspected = json.loads(buildah("inspect", "--type", "image", reference).stdout)
    result: dict[str, object] = inspected["OCIv1"]["config"]
    return result


def test_reference_tag_and_archive(production: images.BuiltImage) -> None:
    assert production.reference == f"localhost/temporal-flow:{production.tag}"
    assert production.tag == images.image_tag("production", images.base_reference())
    assert production.archive.is_relative_to(images.images_dir())
    # A docker-archive whose manifest names the full reference: ctr, docker and kind keep it.
    with tarfile.open(production.archive) as archive:
        member = archive.extractfile("manifest.json")
        assert member is not None
        manifest = json.load(member)
    assert [entry["RepoTags"] for entry in manifest] == [[production.reference]]
    # Built again with nothing changed: the same archive, not a rebuild.
    started = time.monotonic()
    again = images.build_image("production")
    assert again == production
    assert time.monotonic() - started < 10


def test_base_is_debian_bookworm_with_its_python() -> None:
    reference = images.base_reference()
    assert reference.startswith("localhost/temporal-flow-base:bookworm-")
    assert images.base_rootfs_tarball().is_file()
    with tarfile.open(images.base_rootfs_tarball()) as rootfs:
        names = set(rootfs.getnames())
        version = rootfs.extractfile("./etc/debian_version")
        assert version is not None
        assert version.read().decode().startswith("12.")
    assert "./usr/bin/python3.11" in names
    assert "./usr/lib/python3.11/venv/__init__.py" in names
    assert "./etc/ssl/certs/ca-certificates.crt" in names
    assert "./usr/share/zoneinfo/Europe/Berlin" in names
    # Cleaned: no apt lists, no downloaded packages, no manual pages.
    assert not [n for n in names if n.startswith("./var/lib/apt/lists/") and "Packages" in n]
    assert not [n for n in names if n.endswith(".deb")]
    assert not [n for n in names if n.startswith("./usr/share/man/") and n.endswith(".gz")]


@pytest.mark.parametrize("reference_of", ["production", "samples"])
def test_config_non_root_and_read_only_friendly(
    reference_of: str, request: pytest.FixtureRequest
) -> None:
    image: images.BuiltImage = request.getfixturevalue(reference_of)
    cfg = config(image.reference)
    assert cfg["User"] == "65532:65532"
    assert cfg["WorkingDir"] == "/tmp"
    assert isinstance(cfg["Env"], list)
    env = dict(str(e).partition("=")[::2] for e in cfg["Env"])
    assert env["HOME"] == "/tmp"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PATH"].startswith("/opt/tflow/bin:")


def test_entry_points_run_as_the_image_user(production_container: Container) -> None:
    identity = production_container.run("id", "-u")
    assert identity.stdout.strip() == "65532", identity.stderr
    # One shell for the four, each printing the first line of its help.
    script = " && ".join(f"{command} --help | head -n 1" for command in ENTRY_POINTS)
    result = production_container.run("sh", "-c", script)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(ENTRY_POINTS), result.stdout
    assert all(line.startswith("usage:") for line in lines), result.stdout


def test_production_has_neither_devstack_samples_nor_dev_dependencies(
    production_container: Container,
) -> None:
    for module in ("tflow_devstack", "tflow_samples", "pytest", "moto", "mypy"):
        result = production_container.python(f"import {module}")
        assert result.returncode != 0, module
        assert "ModuleNotFoundError" in result.stderr, (module, result.stderr)
    # psycopg is a main dependency: the workers' built-in SQL functions import it.
    for module in (
        "tflow_operator",
        "tflow_workers",
        "tflow_listeners",
        "tflow_cli",
        "tflow_workers.engine.sql",
    ):
        result = production_container.python(f"import {module}")
        assert result.returncode == 0, (module, result.stderr)
    bin_dir = production_container.root / "opt" / "tflow" / "bin"
    assert not (bin_dir / "tflow-dev").exists()
    for command in ENTRY_POINTS:
        assert os.access(bin_dir / command, os.X_OK), command
    # No source tree, uv or build leftovers in the final image.
    for leftover in ("src", "opt/uv"):
        assert not (production_container.root / leftover).exists(), leftover
    # The host's CA bundle, mounted for the build's downloads, is not what the image keeps.
    with tarfile.open(images.base_rootfs_tarball()) as rootfs:
        member = rootfs.extractfile("./etc/ssl/certs/ca-certificates.crt")
        assert member is not None
        base_bundle = member.read()
    bundle = production_container.root / "etc/ssl/certs/ca-certificates.crt"
    assert bundle.read_bytes() == base_bundle


def test_nothing_is_writable_by_the_image_user_but_tmp(production_container: Container) -> None:
    """With a read-only root file system and an emptyDir on /tmp, nothing else is needed:
    no file belongs to the user, the venv is compiled ahead (PYTHONDONTWRITEBYTECODE)."""
    root = production_container.root
    owned = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if Path(directory, d) not in (root / "proc", root / "sys")]
        for name in (*dirs, *files):
            info = os.lstat(Path(directory, name))
            if info.st_uid == 65532 or info.st_gid == 65532:
                owned.append(Path(directory, name).relative_to(root))
    assert owned == []
    assert stat.S_IMODE((root / "tmp").stat().st_mode) == 0o1777
    compiled = root / "opt/tflow/lib/python3.11/site-packages/tflow_workers/__pycache__"
    assert list(compiled.glob("*.cpython-311.pyc"))


def test_samples_image_has_the_sample_functions(samples_container: Container) -> None:
    result = samples_container.python(
        "import psycopg, tflow_samples.shop, tflow_samples.incidents; print('ok')"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
    worker = samples_container.run("tflow-worker", "--help")
    assert worker.returncode == 0, worker.stderr
    assert samples_container.python("import tflow_devstack").returncode != 0


@pytest.fixture
def containerd() -> Iterator[str]:
    """A containerd of its own (CRI off, temporary root and state), for the import."""
    work = Path(tempfile.mkdtemp(prefix="tflow-ctd-"))
    socket = work / "containerd.sock"
    (work / "config.toml").write_text(
        "\n".join(
            [
                "version = 2",
                f'root = "{work / "root"}"',
                f'state = "{work / "state"}"',
                'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
                "[grpc]",
                f'  address = "{socket}"',
                "[ttrpc]",
                f'  address = "{socket}.ttrpc"',
                "",
            ]
        )
    )
    log = (work / "containerd.log").open("wb")
    process = subprocess.Popen(
        ["containerd", "--config", str(work / "config.toml")], stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            probe = subprocess.run(
                ["ctr", "--address", str(socket), "version"], capture_output=True, check=False
            )
            if probe.returncode == 0:
                break
            assert process.poll() is None, (work / "containerd.log").read_text()
            assert time.monotonic() < deadline, "containerd did not come up"
            time.sleep(0.2)
        yield str(socket)
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
        shutil.rmtree(work, ignore_errors=True)


def test_import_into_containerd_keeps_the_full_name(
    production: images.BuiltImage, containerd: str
) -> None:
    images.import_image(production.archive, containerd)
    listed = subprocess.run(
        ["ctr", "--address", containerd, "-n", "k8s.io", "images", "list", "--quiet"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert production.reference in listed
    # Unpacked for the default snapshotter, so a container can start from it at once.
    check = subprocess.run(
        ["ctr", "--address", containerd, "-n", "k8s.io", "images", "check"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (line,) = [ln for ln in check.splitlines() if ln.startswith(production.reference)]
    assert "complete" in line
    assert "true" in line.split()  # the UNPACKED column


def test_a_missing_base_is_named() -> None:
    with pytest.raises(images.ImageBuildError) as failed:
        images.build_image("production", base="localhost/no-such-base:missing")
    assert "localhost/no-such-base:missing" in str(failed.value)


def test_a_failed_step_is_one_line_naming_it_and_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Dockerfile step that fails stops the build with one line: the step, what its
    command printed last, and the log with the rest."""
    base = images.ensure_base_image()
    tree = tmp_path / "repo"
    for name in images._COMMON_FILES:
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text("")
    for name in images._TREES["production"]:
        (tree / name).mkdir()
    (tree / "Dockerfile").write_text(
        "ARG BASE_IMAGE\n"
        "FROM ${BASE_IMAGE} AS production\n"
        f'RUN echo "the cause, {tmp_path.name}" >&2 && exit 3\n'
    )
    monkeypatch.setattr(images, "REPO_ROOT", tree)
    with pytest.raises(images.ImageBuildError) as failed:
        images.build_image("production", base=base)
    message = str(failed.value)
    assert "\n" not in message
    assert "RUN echo" in message
    assert f"the cause, {tmp_path.name}" in message
    log = Path(message.rsplit("(log: ", 1)[1].rstrip(")"))
    assert log.is_file()
    assert "exit status 3" in log.read_text()
