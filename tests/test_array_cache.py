"""The on-disk array cache: a disk that cannot take the array is one clear user error."""

from __future__ import annotations

import numpy as np
import pytest

from cifar.array_cache import ArrayCache, release_pages
from cifar.errors import CifarError


def test_an_array_larger_than_the_disk_is_refused_before_writing(tmp_path):
    """200 TB of float16 fits no test machine: the message names the folder, need and free."""
    cache = ArrayCache(tmp_path / "cache", log=lambda _: None)
    with pytest.raises(CifarError, match="cache") as err:
        cache.get_or_build("k", (10**7, 10**7), lambda out: None, label="features")
    message = str(err.value)
    assert str(tmp_path / "cache") in message
    assert "needs 186264.5 GiB" in message and "GiB free" in message
    assert not list((tmp_path / "cache").glob("*.npy"))  # nothing half-written


def test_a_cache_folder_that_cannot_be_created_is_a_user_error(tmp_path):
    """A path under a regular file (what a read-only or wrong --runs-dir looks like to root)."""
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    cache = ArrayCache(blocker / "cache", log=lambda _: None)
    with pytest.raises(CifarError, match="cannot write") as err:
        cache.get_or_build("k", (4, 4), lambda out: out.fill(1), dtype="uint8")
    assert str(blocker / "cache") in str(err.value)
    assert isinstance(err.value.__cause__, OSError)
    np.testing.assert_array_equal(  # a writable folder still works
        ArrayCache(tmp_path / "ok", log=lambda _: None).get_or_build(
            "k", (2,), lambda out: out.fill(3), dtype="uint8"
        ),
        [3, 3],
    )


def _resident_file_mb() -> float | None:
    from pathlib import Path

    status = Path("/proc/self/status")
    if not status.is_file():
        return None
    for line in status.read_text().splitlines():
        if line.startswith("RssFile:"):
            return int(line.split()[1]) / 1024
    return None


def test_released_pages_leave_memory_and_come_back_intact(tmp_path):
    cache = ArrayCache(tmp_path)
    out = cache.new_array("k", (64, 1024, 1024), "uint8")  # 64 MB
    out[:] = np.arange(64, dtype=np.uint8)[:, None, None]
    array = cache.put("k", out)
    view = array[10:20]
    assert int(array.sum(dtype=np.int64)) == sum(i * 1024 * 1024 for i in range(64))  # read all
    before = _resident_file_mb()
    release_pages(view)  # a view releases the whole mapping it shares
    after = _resident_file_mb()
    if before is not None:
        assert before - after > 48
    assert int(array[63, 5, 5]) == 63 and (view[0] == 10).all()  # read back from disk/cache
    release_pages(np.zeros(3), [1, 2])  # not memory-mapped: nothing to do, no error
